// File: common/config.h
// Typed, schema-checked configuration. Each binary declares its keys once
// (section, key, type, default, help); values are layered
//     defaults < TOML file < VOUCH_<SECTION>_<KEY> environment < flags
// and every value remembers where it came from. Errors are one line naming
// the file and line (or variable, or flag) and the key, e.g.
//     /etc/vouch/agent.toml:7: key 'agent.tcti' must be a string, got integer
// Config files are operator input, checked strictly (unknown keys are errors).
// A loaded Config is immutable and safe to read from any thread.
//
//   ConfigSchema schema;
//   schema.String("agent", "tcti", "device:/dev/tpmrm0", "TPM TCTI");
//   VOUCH_ASSIGN_OR_RETURN(Config cfg, LoadConfig(schema, sources));
//   std::string tcti = cfg.GetString("agent", "tcti");
#ifndef VOUCH_COMMON_CONFIG_H_
#define VOUCH_COMMON_CONFIG_H_

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vouch {

enum class ConfigType { kString, kInt, kBool, kDuration, kStringList };

using ConfigValue = std::variant<std::string, int64_t, bool, absl::Duration,
                                 std::vector<std::string>>;

struct ConfigKeySpec {
  std::string section;
  std::string key;
  ConfigType type = ConfigType::kString;
  ConfigValue default_value;
  std::string help;
  int64_t min = std::numeric_limits<int64_t>::min();  // kInt only.
  int64_t max = std::numeric_limits<int64_t>::max();  // kInt only.
  // Command-line flag, "--<section>-<key>" with '_' as '-' unless set.
  std::string flag;
  // Environment variable, "VOUCH_<SECTION>_<KEY>" upper-cased unless set.
  std::string env;

  std::string DottedName() const { return section + "." + key; }
  // The flag as shown to people: the last name of `flag` ("--output" for
  // "-o,--output").
  std::string FlagName() const { return flag.substr(flag.rfind(',') + 1); }
};

class ConfigSchema {
 public:
  ConfigSchema& String(std::string section, std::string key,
                       std::string default_value, std::string help);
  ConfigSchema& Int(std::string section, std::string key, int64_t default_value,
                    std::string help,
                    int64_t min = std::numeric_limits<int64_t>::min(),
                    int64_t max = std::numeric_limits<int64_t>::max());
  ConfigSchema& Bool(std::string section, std::string key, bool default_value,
                     std::string help);
  // Written as a string in TOML, env and flags: "30s", "5m", "1h30m".
  ConfigSchema& Duration(std::string section, std::string key,
                         absl::Duration default_value, std::string help);
  // A TOML array of strings; comma-separated in env and flags.
  ConfigSchema& StringList(std::string section, std::string key,
                           std::vector<std::string> default_value,
                           std::string help);
  // Overrides the flag and/or environment name of the last key added
  // (vouchctl's --server / VOUCH_SERVER). Empty keeps the default.
  ConfigSchema& WithNames(std::string flag, std::string env);

  const std::vector<ConfigKeySpec>& keys() const { return keys_; }
  const ConfigKeySpec* Find(absl::string_view section,
                            absl::string_view key) const;
  bool HasSection(absl::string_view section) const;

 private:
  ConfigSchema& Add(std::string section, std::string key, ConfigType type,
                    ConfigValue default_value, std::string help,
                    int64_t min = std::numeric_limits<int64_t>::min(),
                    int64_t max = std::numeric_limits<int64_t>::max());
  std::vector<ConfigKeySpec> keys_;
};

// Where the layers come from. LoadConfig reads only what is named here, so
// tests can pass an environment without touching the process's.
struct ConfigSources {
  // TOML file; empty means none. When `file_required` is false a missing file
  // is skipped (a default path); when true it is an error (--config PATH).
  std::string file_path;
  bool file_required = false;
  // Environment variables to consult (name -> value).
  std::map<std::string, std::string> env;
  // Command-line values, keyed by "section.key", in the order given.
  std::vector<std::pair<std::string, std::string>> flags;
};

class Config {
 public:
  // Accessors. Asking for a key the schema does not declare, or with the
  // wrong type, is a programming error and aborts with a message.
  const std::string& GetString(absl::string_view section,
                               absl::string_view key) const;
  int64_t GetInt(absl::string_view section, absl::string_view key) const;
  bool GetBool(absl::string_view section, absl::string_view key) const;
  absl::Duration GetDuration(absl::string_view section,
                             absl::string_view key) const;
  const std::vector<std::string>& GetStringList(absl::string_view section,
                                                absl::string_view key) const;
  // "default", "<file>:<line>", "env VOUCH_X_Y" or "flag --x-y".
  const std::string& Source(absl::string_view section,
                            absl::string_view key) const;

  // The effective configuration as TOML, one `# from <source>` comment per
  // key; loading the output again yields the same values.
  std::string ToToml() const;

 private:
  friend class ConfigBuilder;
  struct Entry {
    const ConfigKeySpec* spec;
    ConfigValue value;
    std::string source;
  };
  const Entry& Lookup(absl::string_view section, absl::string_view key,
                      ConfigType type) const;

  std::vector<std::string> order_;  // "section.key" in schema order.
  std::map<std::string, Entry, std::less<>> entries_;
};

// Builds the layered configuration. The schema must outlive the Config.
absl::StatusOr<Config> LoadConfig(const ConfigSchema& schema,
                                  const ConfigSources& sources);

// Parses TOML text as if it were the file `source_name` (tests, fuzzing).
absl::StatusOr<Config> ParseConfigText(const ConfigSchema& schema,
                                       absl::string_view toml,
                                       absl::string_view source_name);

// Collects the VOUCH_* variables of this process's environment.
std::map<std::string, std::string> VouchEnvironment();

}  // namespace vouch

#endif  // VOUCH_COMMON_CONFIG_H_
