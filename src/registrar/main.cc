// vouch-registrar: flags and wiring only; see registrar_app.h.
#include "registrar/registrar_app.h"

int main(int argc, char** argv) {
  return vouch::RunApp(vouch::registrar::RegistrarAppSpec(), argc, argv,
                       vouch::registrar::RunRegistrar);
}
