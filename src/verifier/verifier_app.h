// File: verifier/verifier_app.h
// What vouch-verifier is configured by, and what it does once configured.
// main() only calls RunApp(VerifierAppSpec(), ...). Start-up only.
#ifndef VOUCH_VERIFIER_VERIFIER_APP_H_
#define VOUCH_VERIFIER_VERIFIER_APP_H_

#include "common/app.h"

namespace vouch::verifier {

// Keys of /etc/vouch/verifier.toml (deploy/config/verifier.toml).
AppSpec VerifierAppSpec();

// Runs the verifier until SIGINT/SIGTERM; returns the process exit code.
int RunVerifier(AppContext& ctx);

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_VERIFIER_APP_H_
