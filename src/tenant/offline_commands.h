// File: tenant/offline_commands.h
// vouchctl's command groups. Offline ones work on local files through
// vouch::core, with no server: `ima`, `policy-file` (cmd_ima.cc), `quote`
// (cmd_quote.cc), `boot` (cmd_boot.cc) and `ca` (cmd_ca.cc, local files
// only). `registrar` (cmd_registrar.cc) talks to a registrar through the SDK.
// Each area adds its subcommands to the CLI, then, after parsing, runs the one
// that was chosen. Exit codes: 0 pass/ok, 1 fail (a verdict), 2 could not
// evaluate (unreadable file, bad input, usage).
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

// `policy sign` (cmd_policy_sign.cc), added under the `policy` command.
void AddPolicySignCommand(CLI::App& policy);
std::optional<int> RunPolicySignCommand();

void AddQuoteCommands(CLI::App& cli);
std::optional<int> RunQuoteCommands(AppContext& ctx);

void AddBootCommands(CLI::App& cli);
std::optional<int> RunBootCommands(AppContext& ctx);

void AddCaCommands(CLI::App& cli);
std::optional<int> RunCaCommands(AppContext& ctx);

void AddRegistrarCommands(CLI::App& cli);
std::optional<int> RunRegistrarCommands(AppContext& ctx);
// tokens create|list|delete: join tokens (cmd_tokens.cc).
void AddTokenCommands(CLI::App& cli);
std::optional<int> RunTokenCommands(AppContext& ctx);
// rules add|list|delete, agents label (cmd_rules.cc); after
// AddAdminCommands, which makes the `agents` group.
void AddRuleCommands(CLI::App& cli);
std::optional<int> RunRuleCommands(AppContext& ctx);

// vouchctl version (cmd_version.cc): vouchctl's and the servers' versions.
void AddVersionCommand(CLI::App& cli);
std::optional<int> RunVersionCommand(AppContext& ctx);

// Fleet operations (cmd_fleet.cc): `agents update ID|--selector`, `prune`;
// after AddAdminCommands, which makes the `agents` group. `agents delete
// --selector` runs DeleteAgentsBySelector.
void AddFleetCommands(CLI::App& cli);
std::optional<int> RunFleetCommands(AppContext& ctx);

// `dev ima-append` (cmd_dev.cc): models the kernel's IMA with a TPM.
void AddDevCommands(CLI::App& cli);
std::optional<int> RunDevCommands(AppContext& ctx);

// `agents` and `policies` (cmd_agents.cc): the verifier's Admin service.
void AddResultsCommands(CLI::App& cli);
std::optional<int> RunResultsCommands(AppContext& ctx);
// `tenants get|set` (cmd_tenants.cc): a tenant's settings.
void AddTenantCommands(CLI::App& cli);
std::optional<int> RunTenantCommands(AppContext& ctx);

// `audit log-key|tree-head|prove|consistency` (cmd_translog.cc): the
// transparency log, every answer verified client-side.
void AddAuditLogCommands(CLI::App& cli);
std::optional<int> RunAuditLogCommands(AppContext& ctx);

// `webhooks add|get|list|delete` (cmd_webhooks.cc): webhook subscriptions.
void AddWebhookCommands(CLI::App& cli);
std::optional<int> RunWebhookCommands(AppContext& ctx);
// `audit export`, `audit verify` (cmd_audit.cc): durable attestation.
void AddAuditCommands(CLI::App& cli);
std::optional<int> RunAuditCommands(AppContext& ctx);

void AddAdminCommands(CLI::App& cli);
std::optional<int> RunAdminCommands(AppContext& ctx);

// `policies shadow|window|rollouts|end-rollout|shadow-report|promote`
// (cmd_rollouts.cc): added to the `policies` group above.
void AddRolloutCommands(CLI::App& cli);
std::optional<int> RunRolloutCommands(AppContext& ctx);

// `agents reverify` (cmd_reverify.cc): added to the `agents` group.
void AddReverifyCommands(CLI::App& cli);
std::optional<int> RunReverifyCommands(AppContext& ctx);

// vouchctl policy-keys (cmd_policy_keys.cc).
void AddPolicyKeyCommands(CLI::App& cli);
std::optional<int> RunPolicyKeyCommands(AppContext& ctx);

// `config` (cmd_config.cc): settings and contexts.
void AddConfigCommands(CLI::App& cli);
std::optional<int> RunConfigCommands(AppContext& ctx);

// `describe agent` (cmd_describe.cc): verifier, registrar and history.
void AddDescribeCommands(CLI::App& cli);
std::optional<int> RunDescribeCommands(AppContext& ctx);

// `completion bash|zsh` and the hidden `man DIR` (cmd_completion.cc), from
// the command tree; added last so they see every command.
void AddCompletionCommands(CLI::App& cli);
std::optional<int> RunCompletionCommands(AppContext& ctx);

}  // namespace vouch::tenant

#endif  // VOUCH_TENANT_OFFLINE_COMMANDS_H_
