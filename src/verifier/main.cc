// vouch-verifier: flags and wiring only; see verifier_app.h.
#include "verifier/verifier_app.h"

int main(int argc, char** argv) {
  return vouch::RunApp(vouch::verifier::VerifierAppSpec(), argc, argv,
                       vouch::verifier::RunVerifier);
}
