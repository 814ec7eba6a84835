// File: registrar/registrar_app.h
// What vouch-registrar is configured by, and what it does once configured.
// main() only calls RunApp(RegistrarAppSpec(), ...). Start-up only.
#ifndef VOUCH_REGISTRAR_REGISTRAR_APP_H_
#define VOUCH_REGISTRAR_REGISTRAR_APP_H_

#include "common/app.h"

namespace vouch::registrar {

// Keys of /etc/vouch/registrar.toml (deploy/config/registrar.toml).
AppSpec RegistrarAppSpec();

// Runs the registrar until SIGINT/SIGTERM; returns the process exit code.
int RunRegistrar(AppContext& ctx);

}  // namespace vouch::registrar

#endif  // VOUCH_REGISTRAR_REGISTRAR_APP_H_
