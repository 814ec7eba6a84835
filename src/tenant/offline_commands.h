// File: tenant/offline_commands.h
// vouchctl commands that work on local files through vouch::core, with no
// server: `ima`, `policy` (cmd_ima.cc), `quote` (cmd_quote.cc) and `boot`
// (cmd_boot.cc). Each area adds its subcommands to the CLI, then, after
// parsing, runs the one that was chosen. Exit codes: 0 pass/ok, 1 fail (a
// verdict), 2 could not evaluate (unreadable file, bad input, usage).
#ifndef VOUCH_TENANT_OFFLINE_COMMANDS_H_
#define VOUCH_TENANT_OFFLINE_COMMANDS_H_

#include <optional>

#include "common/app.h"

namespace CLI {
class App;
}

namespace vouch::tenant {

void AddImaCommands(CLI::App& cli);
// The exit code if an `ima` or `policy` subcommand was chosen, else nullopt.
std::optional<int> RunImaCommands(AppContext& ctx);

void AddQuoteCommands(CLI::App& cli);
std::optional<int> RunQuoteCommands(AppContext& ctx);

void AddBootCommands(CLI::App& cli);
std::optional<int> RunBootCommands(AppContext& ctx);

}  // namespace vouch::tenant

#endif  // VOUCH_TENANT_OFFLINE_COMMANDS_H_
