#include "common/app.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <iostream>
#include <map>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/version.h"

namespace vouch {
namespace {

std::string TypeHint(const ConfigKeySpec& spec) {
  switch (spec.type) {
    case ConfigType::kString:
      return "TEXT";
    case ConfigType::kInt:
      return "INT";
    case ConfigType::kBool:
      return "BOOL";
    case ConfigType::kDuration:
      return "DURATION";
    case ConfigType::kStringList:
      return "A,B,...";
  }
  return "VALUE";
}

std::string DefaultText(const ConfigValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return v.empty() ? "\"\"" : v;
        } else if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, absl::Duration>) {
          return absl::FormatDuration(v);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          return v.empty() ? "[]" : absl::StrJoin(v, ",");
        } else {
          return std::to_string(v);
        }
      },
      value);
}

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

void PrintError(const std::string& name, absl::string_view message) {
  std::string line = absl::StrCat(name, ": ", message, "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace

std::string VersionString(const std::string& name) {
  return absl::StrCat(name, " ", VOUCH_VERSION, " (commit ", VOUCH_GIT_COMMIT,
                      ")");
}

const char* BuildVersion() { return VOUCH_VERSION; }
const char* BuildCommit() { return VOUCH_GIT_COMMIT; }

int RunApp(AppSpec spec, int argc, char** argv,
           const std::function<int(AppContext&)>& run) {
  if (spec.schema.Find("log", "level") == nullptr) {
    spec.schema.String("log", "level", "info",
                       "Log level: debug, info, warning or error");
  }
  if (spec.schema.Find("log", "format") == nullptr) {
    spec.schema.String("log", "format", "text",
                       "Log line format: text (key=value) or json (one "
                       "object per line)");
  }

  CLI::App cli(spec.description, spec.name);
  cli.set_version_flag("--version", VersionString(spec.name));
  std::string config_path;
  bool print_config = false;
  CLI::Option* config_option = cli.add_option(
      "-c,--config", config_path,
      spec.default_config_path.empty()
          ? std::string("TOML config file")
          : absl::StrCat("TOML config file (default ", spec.default_config_path,
                         ", read when present)"));
  if (!spec.config_env.empty()) config_option->envname(spec.config_env);
  cli.add_flag("--print-config", print_config,
               "Print the effective configuration with the source of each "
               "value, then exit");
  // One flag per config key; values are kept as text and typed by LoadConfig
  // so a bad value gets the same one-line error as in a file.
  struct FlagValue {
    std::string text;
    CLI::Option* option = nullptr;
  };
  std::map<std::string, FlagValue> flags;  // By "section.key".
  for (const ConfigKeySpec& key : spec.schema.keys()) {
    FlagValue& flag = flags[key.DottedName()];
    flag.option =
        cli.add_option(
               key.flag, flag.text,
               absl::StrCat(key.help, " [", key.DottedName(), ", env ", key.env,
                            ", default ", DefaultText(key.default_value), "]"))
            ->type_name(TypeHint(key))
            ->group("Configuration (overrides file and environment)");
    // A boolean flag alone means true (`--print-agent-id`); `=false` works.
    if (key.type == ConfigType::kBool) flag.option->expected(0, 1);
  }
  if (spec.add_subcommands) spec.add_subcommands(cli);

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version arrive here too, with exit code 0.
    const int code = cli.exit(e);
    return code == 0 ? 0 : 2;
  }

  for (const ConfigKeySpec& key : spec.schema.keys()) {
    FlagValue& flag = flags[key.DottedName()];
    if (key.type == ConfigType::kBool && flag.option->count() > 0 &&
        flag.text.empty()) {
      flag.text = "true";
    }
  }

  ConfigSources sources;
  if (!config_path.empty()) {
    sources.file_path = config_path;
    sources.file_required = true;
  } else {
    sources.file_path = spec.default_config_path;
    sources.file_required = false;
  }
  sources.env = VouchEnvironment();
  for (const ConfigKeySpec& key : spec.schema.keys()) {
    const FlagValue& flag = flags[key.DottedName()];
    if (flag.option->count() > 0) {
      sources.flags.emplace_back(key.DottedName(), flag.text);
    }
  }
  absl::StatusOr<Config> config = LoadConfig(spec.schema, sources);
  if (!config.ok()) {
    PrintError(spec.name, config.status().message());
    return 2;
  }
  absl::StatusOr<LogLevel> level =
      ParseLogLevel(config->GetString("log", "level"));
  if (!level.ok()) {
    PrintError(spec.name,
               absl::StrCat("key 'log.level' (", config->Source("log", "level"),
                            "): ", level.status().message()));
    return 2;
  }
  absl::StatusOr<LogFormat> format =
      ParseLogFormat(config->GetString("log", "format"));
  if (!format.ok()) {
    PrintError(spec.name, absl::StrCat("key 'log.format' (",
                                       config->Source("log", "format"),
                                       "): ", format.status().message()));
    return 2;
  }
  if (print_config) {
    std::cout << config->ToToml();
    return 0;
  }
  SetLogLevel(*level);
  SetLogFormat(*format);
  SetLogComponent(spec.name);

  if (spec.daemon) BlockShutdownSignals();
  AppContext ctx{*config, cli};
  return run(ctx);
}

void BlockShutdownSignals() {
  const sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForShutdown() {
  const sigset_t set = ShutdownSignals();
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

std::optional<int> WaitForShutdownFor(absl::Duration timeout) {
  const sigset_t set = ShutdownSignals();
  const absl::Time until = absl::Now() + timeout;
  while (true) {
    // A zero (or spent) timeout still takes a pending signal: sigtimedwait
    // with a zero timespec polls.
    const absl::Duration left =
        std::max(until - absl::Now(), absl::ZeroDuration());
    const timespec ts = absl::ToTimespec(left);
    const int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig > 0) return sig;
    if (errno != EINTR) return std::nullopt;  // EAGAIN: none in time.
    // EINTR: another signal; wait for the rest of the time.
  }
}

}  // namespace vouch
