#include "tenant/vouchctl_app.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "tenant/offline_commands.h"

namespace vouch::tenant {

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
  spec.schema
      .String("client", "server", "", "Verifier or registrar address host:port")
      .WithNames("--server", "VOUCH_SERVER")
      .String("client", "tls_dir", "",
              "Directory with ca.pem, client.pem, client.key")
      .WithNames("--tls-dir", "VOUCH_TLS_DIR")
      .String("client", "output", "table", "Output format: table, json, yaml")
      .WithNames("-o,--output", "VOUCH_OUTPUT")
      .String("log", "level", "warning",
              "Log level: debug, info, warning or error");
  spec.add_subcommands = [](CLI::App& cli) {
    cli.fallthrough();  // Global flags also after the subcommand.
    cli.add_subcommand("version", "Print the vouchctl version");
    CLI::App* config =
        cli.add_subcommand("config", "Inspect vouchctl's config");
    config->add_subcommand(
        "view",
        "Print the effective configuration and where each value "
        "comes from");
    config->require_subcommand(1);
    AddImaCommands(cli);
    AddQuoteCommands(cli);
    AddBootCommands(cli);
    AddCaCommands(cli);
    AddRegistrarCommands(cli);
    AddTokenCommands(cli);
    AddAdminCommands(cli);
    AddRuleCommands(cli);
    AddResultsCommands(cli);
    AddDevCommands(cli);
  };
  return spec;
}

int RunVouchctl(AppContext& ctx) {
  CLI::App& cli = ctx.cli;
  const std::string& output = ctx.config.GetString("client", "output");
  if (output != "table" && output != "json" && output != "yaml") {
    std::cerr << "vouchctl: output format '" << output << "' ("
              << ctx.config.Source("client", "output")
              << ") is not one of table, json, yaml\n";
    return 2;
  }
  if (cli.got_subcommand("version")) {
    std::cout << VersionString("vouchctl") << "\n";
    return 0;
  }
  if (cli.got_subcommand("config")) {
    std::cout << ctx.config.ToToml();
    return 0;
  }
  for (auto* run :
       {&RunImaCommands, &RunQuoteCommands, &RunBootCommands, &RunCaCommands,
        &RunRegistrarCommands, &RunTokenCommands, &RunRuleCommands,
        &RunAdminCommands, &RunResultsCommands, &RunDevCommands}) {
    if (std::optional<int> code = (*run)(ctx)) return *code;
  }
  std::cerr << cli.help();
  return 2;
}

}  // namespace vouch::tenant
