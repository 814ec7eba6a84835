// Test fixture for check_layering.cmake: the verifier has no TPM.
#include <libpq-fe.h>

#include "tpm/esys_tpm.h"
