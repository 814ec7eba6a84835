// File: common/app.h
// The shared start-up of every Vouch binary: flags (CLI11), --help,
// --version, --config, --print-config, one flag per config key, layered
// config loading, logging set-up, and for daemons a clean stop on SIGINT or
// SIGTERM. main() only declares its schema and calls RunApp.
// Exit codes: 0 ok; 2 usage or configuration error; otherwise what `run`
// returns.
//
//   int main(int argc, char** argv) {
//     AppSpec spec{"vouch-agent", "Vouch TPM agent", "/etc/vouch/agent.toml"};
//     spec.schema.String("agent", "tcti", "device:/dev/tpmrm0", "TCTI");
//     return RunApp(spec, argc, argv, [](AppContext& ctx) { ...; return 0; });
//   }
#ifndef VOUCH_COMMON_APP_H_
#define VOUCH_COMMON_APP_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "common/config.h"

namespace CLI {
class App;
}  // namespace CLI

namespace vouch {

struct AppSpec {
  std::string name;                 // "vouch-agent"; also the log component.
  std::string description;          // One line for --help.
  std::string default_config_path;  // Read when present; "" for none.
  // The environment variable that names the config file like --config;
  // "" for none (vouchctl, whose VOUCH_CONFIG names its contexts file).
  std::string config_env = "VOUCH_CONFIG";
  ConfigSchema schema;  // [log] level is added by RunApp.
  // A daemon blocks SIGINT/SIGTERM in all threads so WaitForShutdown can
  // take them; a command-line tool keeps the default signal behaviour.
  bool daemon = false;
  // Lets a tool (vouchctl) add subcommands before parsing.
  std::function<void(CLI::App&)> add_subcommands;
};

struct AppContext {
  const Config& config;
  CLI::App& cli;
};

// Runs the binary; see the file comment for exit codes.
int RunApp(AppSpec spec, int argc, char** argv,
           const std::function<int(AppContext&)>& run);

// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts
// later, so WaitForShutdown can take them. Call before creating threads.
// RunApp does this for daemons.
void BlockShutdownSignals();

// Daemons: blocks until SIGINT or SIGTERM arrives; returns the signal number.
int WaitForShutdown();

// Daemons: waits up to `timeout` for SIGINT or SIGTERM; the signal number if
// one arrived, else nullopt. For interruptible back-off sleeps; a zero
// timeout polls (takes a signal already pending).
std::optional<int> WaitForShutdownFor(absl::Duration timeout);

// "vouch-agent 0.1.0 (commit abc1234)".
std::string VersionString(const std::string& name);
// The parts of it: "0.1.0" and "abc1234" (vouch_build_info's labels).
const char* BuildVersion();
const char* BuildCommit();

}  // namespace vouch

#endif  // VOUCH_COMMON_APP_H_
