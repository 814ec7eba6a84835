// vouchctl config view|get-contexts|current-context|use-context|
// set-context|delete-context: the effective settings and the contexts file
// (contexts.h). Exit 0 ok, 1 no such context, 2 usage or an unreadable or
// unwritable file.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "tenant/contexts.h"
#include "tenant/offline_commands.h"
#include "tenant/output.h"

namespace vouch::tenant {
namespace {

struct ConfigArgs {
  std::string name;
  std::string verifier;
  std::string registrar;
  std::string tls_dir;
  bool use = false;
};

ConfigArgs& ParsedConfigArgs() {
  static ConfigArgs* args = new ConfigArgs();
  return *args;
}

CLI::App* config_cmd = nullptr;
CLI::App* view_cmd = nullptr;
CLI::App* get_contexts_cmd = nullptr;
CLI::App* current_cmd = nullptr;
CLI::App* use_cmd = nullptr;
CLI::App* config_set_cmd = nullptr;
CLI::App* config_delete_cmd = nullptr;

// Context names: short, no spaces, safe in a file and a shell.
bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

int ConfigFail(const std::string& command, const absl::Status& st) {
  std::cerr << "vouchctl config " << command << ": " << st.message() << "\n";
  return 2;
}

int GetContexts(const ContextsFile& file, OutputFormat format) {
  Output out;
  out.table =
      Table({{"CURRENT"}, {"NAME"}, {"VERIFIER"}, {"REGISTRAR"}, {"TLS_DIR"}});
  out.json["current_context"] = file.current;
  out.json["contexts"] = nlohmann::json::array();
  for (const auto& [name, c] : file.contexts) {
    out.table.AddRow({name == file.current ? "*" : "", name, c.verifier,
                      c.registrar, c.tls_dir});
    out.json["contexts"].push_back({{"name", name},
                                    {"verifier", c.verifier},
                                    {"registrar", c.registrar},
                                    {"tls_dir", c.tls_dir}});
    out.names.push_back("context/" + name);
  }
  return PrintOutput(format, out, std::cout);
}

}  // namespace

void AddConfigCommands(CLI::App& cli) {
  ConfigArgs& a = ParsedConfigArgs();
  config_cmd = cli.add_subcommand(
      "config",
      "vouchctl's settings and contexts (~/.config/vouch/config, or the "
      "file $VOUCH_CONFIG names)");
  config_cmd->require_subcommand(1);
  view_cmd = config_cmd->add_subcommand(
      "view",
      "Print the effective configuration and where each value comes from");
  get_contexts_cmd =
      config_cmd->add_subcommand("get-contexts", "List the contexts");
  current_cmd = config_cmd->add_subcommand("current-context",
                                           "Print the current context's name");
  use_cmd = config_cmd->add_subcommand("use-context",
                                       "Make a context the current one");
  use_cmd->add_option("name", a.name, "The context")->required();
  config_set_cmd = config_cmd->add_subcommand(
      "set-context",
      "Create a context or change its fields (unnamed fields stay)");
  config_set_cmd->add_option("name", a.name, "The context")->required();
  config_set_cmd->add_option("--verifier", a.verifier,
                             "Verifier host:port (several: comma-separated)");
  // These two shadow the global flags of the same name for this command.
  config_set_cmd->add_option("--registrar", a.registrar, "Registrar host:port");
  config_set_cmd->add_option("--tls-dir", a.tls_dir,
                             "TLS directory: ca.pem, client.pem, client.key");
  config_set_cmd->add_flag("--use", a.use, "Also make it the current context");
  config_delete_cmd =
      config_cmd->add_subcommand("delete-context", "Delete a context");
  config_delete_cmd->add_option("name", a.name, "The context")->required();
}

std::optional<int> RunConfigCommands(AppContext& ctx) {
  if (config_cmd == nullptr || !config_cmd->parsed()) return std::nullopt;
  const ConfigArgs& a = ParsedConfigArgs();
  if (view_cmd->parsed()) {
    std::cout << ctx.config.ToToml();
    absl::StatusOr<Endpoints> e = ResolveEndpoints(ctx.config);
    if (e.ok()) {
      std::cout << "# contexts file " << DefaultContextsPath()
                << "; context in use: "
                << (e->context.empty() ? "none" : e->context) << "\n# verifier "
                << e->verifier << ", registrar " << e->registrar << ", tls-dir "
                << e->tls_dir << "\n";
    }
    return 0;
  }
  const std::string path = DefaultContextsPath();
  absl::StatusOr<ContextsFile> file = LoadContexts(path);
  if (!file.ok()) return ConfigFail("", file.status());
  if (get_contexts_cmd->parsed()) {
    return GetContexts(*file, OutputFormatOf(ctx));
  }
  if (current_cmd->parsed()) {
    if (file->current.empty()) {
      std::cerr << "vouchctl config current-context: no current context in "
                << path << " (vouchctl config use-context NAME)\n";
      return 1;
    }
    std::cout << file->current << "\n";
    return 0;
  }
  if (use_cmd->parsed() || config_delete_cmd->parsed()) {
    const char* verb = use_cmd->parsed() ? "use-context" : "delete-context";
    if (file->contexts.count(a.name) == 0) {
      std::cerr << "vouchctl config " << verb << ": no context '" << a.name
                << "' in " << path << " (vouchctl config get-contexts)\n";
      return 1;
    }
    if (use_cmd->parsed()) {
      file->current = a.name;
    } else {
      file->contexts.erase(a.name);
      if (file->current == a.name) file->current.clear();
    }
    if (absl::Status st = SaveContexts(path, *file); !st.ok()) {
      return ConfigFail(verb, st);
    }
    std::cout << "context/" << a.name
              << (use_cmd->parsed() ? " is the current context\n"
                                    : " deleted\n");
    return 0;
  }
  // set-context
  if (!ValidName(a.name)) {
    std::cerr << "vouchctl config set-context: a context name is 1 to 64 "
                 "letters, digits, '-', '_' or '.'\n";
    return 2;
  }
  VouchContext& c = file->contexts[a.name];
  if (!a.verifier.empty()) c.verifier = a.verifier;
  if (!a.registrar.empty()) c.registrar = a.registrar;
  if (!a.tls_dir.empty()) c.tls_dir = a.tls_dir;
  if (a.use || file->current.empty()) file->current = a.name;
  if (absl::Status st = SaveContexts(path, *file); !st.ok()) {
    return ConfigFail("set-context", st);
  }
  std::cout << "context/" << a.name << " set in " << path << "\n";
  return 0;
}

}  // namespace vouch::tenant
