// Test fixture for check_layering.cmake: the shared start-up sits below the
// programs.
#include "registrar/registrar_app.h"
