// Test fixture for check_layering.cmake: every include here breaks a rule.
#include <thread>

#include "store/pg_connection.h"
#include "vouch/v1/attestation.grpc.pb.h"
