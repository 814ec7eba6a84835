// File: tenant/vouchctl_app.h
// vouchctl, the operator's command line, in the style of kubectl: global
// flags (--server, --registrar, --tls-dir, --context, -o/--output) are
// accepted before or after the subcommand; where the servers are comes
// from contexts (contexts.h), defaults from ~/.config/vouch/vouchctl.toml.
// Exit codes: 0 ok, 1 not found or refused, 2 usage or connection problem.
// Start-up only.
#ifndef VOUCH_TENANT_VOUCHCTL_APP_H_
#define VOUCH_TENANT_VOUCHCTL_APP_H_

#include <string>

#include "common/app.h"

namespace vouch::tenant {

// $XDG_CONFIG_HOME/vouch/vouchctl.toml, else $HOME/.config/vouch/vouchctl.toml.
std::string DefaultVouchctlConfigPath();

AppSpec VouchctlAppSpec();
int RunVouchctl(AppContext& ctx);

}  // namespace vouch::tenant

#endif  // VOUCH_TENANT_VOUCHCTL_APP_H_
