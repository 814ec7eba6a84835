#include "tenant/vouchctl_app.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tenant/offline_commands.h"
#include "tenant/output.h"

namespace vouch::tenant {
namespace {

// Help without aliases: the old spellings kept for one release (`policy`,
// `remove`) work but are not advertised.
class NoAliasFormatter : public CLI::Formatter {
 public:
  std::string make_subcommand(const CLI::App* sub) const override {
    std::stringstream out;
    CLI::detail::format_help(out, sub->get_display_name(false),
                             sub->get_description(), column_width_);
    return out.str();
  }
};

}  // namespace

std::string DefaultVouchctlConfigPath() {
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) {
    return absl::StrCat(xdg, "/vouch/vouchctl.toml");
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return absl::StrCat(home, "/.config/vouch/vouchctl.toml");
  }
  return "";
}

AppSpec VouchctlAppSpec() {
  AppSpec spec;
  spec.name = "vouchctl";
  spec.description = "Vouch operator command line.";
  spec.default_config_path = DefaultVouchctlConfigPath();
  spec.daemon = false;
  // VOUCH_CONFIG names the contexts file (contexts.h), not vouchctl.toml.
  spec.config_env = "";
  spec.schema.String("client", "server", "", "Verifier address host:port")
      .WithNames("--server", "VOUCH_SERVER")
      .String("client", "registrar", "", "Registrar address host:port")
      .WithNames("--registrar", "VOUCH_REGISTRAR")
      .String("client", "tls_dir", "",
              "Directory with ca.pem, client.pem, client.key")
      .WithNames("--tls-dir", "VOUCH_TLS_DIR")
      .String("client", "context", "",
              "Context of the contexts file to use (default: its current "
              "context)")
      .WithNames("--context", "VOUCH_CONTEXT")
      .String("client", "output", "table",
              "Output format: table, wide, json, yaml, name")
      .WithNames("-o,--output", "VOUCH_OUTPUT")
      .String("log", "level", "warning",
              "Log level: debug, info, warning or error");
  spec.add_subcommands = [](CLI::App& cli) {
    cli.formatter(std::make_shared<NoAliasFormatter>());
    cli.fallthrough();  // Global flags also after the subcommand.
    AddVersionCommand(cli);
    AddConfigCommands(cli);
    AddDescribeCommands(cli);
    AddImaCommands(cli);
    AddQuoteCommands(cli);
    AddBootCommands(cli);
    AddCaCommands(cli);
    AddRegistrarCommands(cli);
    AddTokenCommands(cli);
    AddAdminCommands(cli);
    AddRolloutCommands(cli);   // Adds to `policies` above.
    AddReverifyCommands(cli);  // Adds to `agents` above.
    AddPolicyKeyCommands(cli);
    AddRuleCommands(cli);
    AddFleetCommands(cli);  // Adds `agents update` to the group above.
    AddResultsCommands(cli);
    AddTenantCommands(cli);
    AddWebhookCommands(cli);
    AddAuditCommands(cli);
    AddAuditLogCommands(cli);  // Adds to `audit` above.
    AddDevCommands(cli);
    AddCompletionCommands(cli);  // Last: it walks every command.
  };
  return spec;
}

int RunVouchctl(AppContext& ctx) {
  CLI::App& cli = ctx.cli;
  const std::string& output = ctx.config.GetString("client", "output");
  if (!ParseOutputFormat(output).ok()) {
    std::cerr << "vouchctl: output format '" << output << "' ("
              << ctx.config.Source("client", "output") << ") is not one of "
              << kOutputFormats << "\n";
    return 2;
  }
  for (auto* run :
       {&RunVersionCommand,    &RunConfigCommands,    &RunDescribeCommands,
        &RunImaCommands,       &RunQuoteCommands,     &RunBootCommands,
        &RunCaCommands,        &RunRegistrarCommands, &RunTokenCommands,
        &RunRuleCommands,      &RunFleetCommands,     &RunRolloutCommands,
        &RunReverifyCommands,  &RunAdminCommands,     &RunPolicyKeyCommands,
        &RunResultsCommands,   &RunTenantCommands,    &RunWebhookCommands,
        &RunAuditLogCommands,  &RunAuditCommands,     &RunDevCommands,
        &RunCompletionCommands}) {
    if (std::optional<int> code = (*run)(ctx)) return *code;
  }
  std::cerr << cli.help();
  return 2;
}

}  // namespace vouch::tenant
