#include "common/config.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "common/toml.h"  // toml++ without exceptions

extern char** environ;

namespace vouch {
namespace {

// A config file larger than this is refused before parsing.
constexpr size_t kMaxConfigFileBytes = 1 << 20;

const char* TypeName(ConfigType type) {
  switch (type) {
    case ConfigType::kString:
      return "a string";
    case ConfigType::kInt:
      return "an integer";
    case ConfigType::kBool:
      return "a boolean";
    case ConfigType::kDuration:
      return "a duration string like \"30s\" or \"5m\"";
    case ConfigType::kStringList:
      return "an array of strings";
  }
  return "a value";
}

const char* TomlTypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "date/time";
    default:
      return "unknown";
  }
}

std::string DefaultFlag(const ConfigKeySpec& spec) {
  return absl::StrCat("--", absl::StrReplaceAll(spec.section, {{"_", "-"}}),
                      "-", absl::StrReplaceAll(spec.key, {{"_", "-"}}));
}

std::string DefaultEnv(const ConfigKeySpec& spec) {
  return absl::AsciiStrToUpper(
      absl::StrCat("VOUCH_", spec.section, "_", spec.key));
}

absl::Status CheckIntRange(const ConfigKeySpec& spec, int64_t v) {
  if (v < spec.min || v > spec.max) {
    return absl::InvalidArgumentError(
        absl::StrCat("key '", spec.DottedName(), "' must be between ", spec.min,
                     " and ", spec.max, ", got ", v));
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> ParseNonNegativeDuration(
    const ConfigKeySpec& spec, absl::string_view text) {
  absl::Duration d;
  if (!absl::ParseDuration(std::string(text), &d) || d < absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("key '", spec.DottedName(), "' must be ",
                     TypeName(ConfigType::kDuration)));
  }
  return d;
}

// Parses a value given as text (environment or flag).
absl::StatusOr<ConfigValue> ParseText(const ConfigKeySpec& spec,
                                      absl::string_view text) {
  switch (spec.type) {
    case ConfigType::kString:
      return ConfigValue(std::string(text));
    case ConfigType::kInt: {
      int64_t v;
      if (!absl::SimpleAtoi(text, &v)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "key '", spec.DottedName(), "' must be ", TypeName(spec.type)));
      }
      VOUCH_RETURN_IF_ERROR(CheckIntRange(spec, v));
      return ConfigValue(v);
    }
    case ConfigType::kBool: {
      bool v;
      if (!absl::SimpleAtob(text, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("key '", spec.DottedName(),
                         "' must be true or false (also 1/0, yes/no)"));
      }
      return ConfigValue(v);
    }
    case ConfigType::kDuration: {
      VOUCH_ASSIGN_OR_RETURN(absl::Duration d,
                             ParseNonNegativeDuration(spec, text));
      return ConfigValue(d);
    }
    case ConfigType::kStringList: {
      std::vector<std::string> items;
      for (absl::string_view part :
           absl::StrSplit(text, ',', absl::SkipWhitespace())) {
        items.emplace_back(absl::StripAsciiWhitespace(part));
      }
      return ConfigValue(std::move(items));
    }
  }
  return absl::InternalError("unhandled config type");
}

// Converts a TOML node; errors omit the location (the caller adds it).
absl::StatusOr<ConfigValue> FromToml(const ConfigKeySpec& spec,
                                     const toml::node& node) {
  auto type_error = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("key '", spec.DottedName(), "' must be ",
                     TypeName(spec.type), ", got ", TomlTypeName(node)));
  };
  switch (spec.type) {
    case ConfigType::kString:
      if (const auto* s = node.as_string()) return ConfigValue(s->get());
      return type_error();
    case ConfigType::kInt:
      if (const auto* i = node.as_integer()) {
        VOUCH_RETURN_IF_ERROR(CheckIntRange(spec, i->get()));
        return ConfigValue(static_cast<int64_t>(i->get()));
      }
      return type_error();
    case ConfigType::kBool:
      if (const auto* b = node.as_boolean()) return ConfigValue(b->get());
      return type_error();
    case ConfigType::kDuration:
      if (const auto* s = node.as_string()) {
        VOUCH_ASSIGN_OR_RETURN(absl::Duration d,
                               ParseNonNegativeDuration(spec, s->get()));
        return ConfigValue(d);
      }
      return type_error();
    case ConfigType::kStringList:
      if (const auto* arr = node.as_array()) {
        std::vector<std::string> items;
        for (const toml::node& item : *arr) {
          const auto* s = item.as_string();
          if (s == nullptr) return type_error();
          items.push_back(s->get());
        }
        return ConfigValue(std::move(items));
      }
      return type_error();
  }
  return absl::InternalError("unhandled config type");
}

std::string Where(absl::string_view source_name, const toml::source_region& r) {
  return absl::StrCat(source_name, ":", r.begin.line);
}

}  // namespace

// ---- ConfigSchema ----

ConfigSchema& ConfigSchema::Add(std::string section, std::string key,
                                ConfigType type, ConfigValue default_value,
                                std::string help, int64_t min, int64_t max) {
  ConfigKeySpec spec;
  spec.section = std::move(section);
  spec.key = std::move(key);
  spec.type = type;
  spec.default_value = std::move(default_value);
  spec.help = std::move(help);
  spec.min = min;
  spec.max = max;
  spec.flag = DefaultFlag(spec);
  spec.env = DefaultEnv(spec);
  keys_.push_back(std::move(spec));
  return *this;
}

ConfigSchema& ConfigSchema::String(std::string section, std::string key,
                                   std::string default_value,
                                   std::string help) {
  return Add(std::move(section), std::move(key), ConfigType::kString,
             std::move(default_value), std::move(help));
}

ConfigSchema& ConfigSchema::Int(std::string section, std::string key,
                                int64_t default_value, std::string help,
                                int64_t min, int64_t max) {
  return Add(std::move(section), std::move(key), ConfigType::kInt,
             default_value, std::move(help), min, max);
}

ConfigSchema& ConfigSchema::Bool(std::string section, std::string key,
                                 bool default_value, std::string help) {
  return Add(std::move(section), std::move(key), ConfigType::kBool,
             default_value, std::move(help));
}

ConfigSchema& ConfigSchema::Duration(std::string section, std::string key,
                                     absl::Duration default_value,
                                     std::string help) {
  return Add(std::move(section), std::move(key), ConfigType::kDuration,
             default_value, std::move(help));
}

ConfigSchema& ConfigSchema::StringList(std::string section, std::string key,
                                       std::vector<std::string> default_value,
                                       std::string help) {
  return Add(std::move(section), std::move(key), ConfigType::kStringList,
             std::move(default_value), std::move(help));
}

ConfigSchema& ConfigSchema::WithNames(std::string flag, std::string env) {
  if (keys_.empty()) return *this;
  if (!flag.empty()) keys_.back().flag = std::move(flag);
  if (!env.empty()) keys_.back().env = std::move(env);
  return *this;
}

const ConfigKeySpec* ConfigSchema::Find(absl::string_view section,
                                        absl::string_view key) const {
  for (const ConfigKeySpec& spec : keys_) {
    if (spec.section == section && spec.key == key) return &spec;
  }
  return nullptr;
}

bool ConfigSchema::HasSection(absl::string_view section) const {
  for (const ConfigKeySpec& spec : keys_) {
    if (spec.section == section) return true;
  }
  return false;
}

// ---- Config ----

const Config::Entry& Config::Lookup(absl::string_view section,
                                    absl::string_view key,
                                    ConfigType type) const {
  auto it = entries_.find(absl::StrCat(section, ".", key));
  if (it == entries_.end() || it->second.spec->type != type) {
    std::fprintf(stderr, "fatal: config key '%s.%s' %s\n",
                 std::string(section).c_str(), std::string(key).c_str(),
                 it == entries_.end() ? "is not declared in the schema"
                                      : "read with the wrong type");
    std::abort();
  }
  return it->second;
}

const std::string& Config::GetString(absl::string_view section,
                                     absl::string_view key) const {
  return std::get<std::string>(Lookup(section, key, ConfigType::kString).value);
}
int64_t Config::GetInt(absl::string_view section, absl::string_view key) const {
  return std::get<int64_t>(Lookup(section, key, ConfigType::kInt).value);
}
bool Config::GetBool(absl::string_view section, absl::string_view key) const {
  return std::get<bool>(Lookup(section, key, ConfigType::kBool).value);
}
absl::Duration Config::GetDuration(absl::string_view section,
                                   absl::string_view key) const {
  return std::get<absl::Duration>(
      Lookup(section, key, ConfigType::kDuration).value);
}
const std::vector<std::string>& Config::GetStringList(
    absl::string_view section, absl::string_view key) const {
  return std::get<std::vector<std::string>>(
      Lookup(section, key, ConfigType::kStringList).value);
}
const std::string& Config::Source(absl::string_view section,
                                  absl::string_view key) const {
  auto it = entries_.find(absl::StrCat(section, ".", key));
  static const std::string* const kUnknown = new std::string("unknown");
  return it == entries_.end() ? *kUnknown : it->second.source;
}

std::string Config::ToToml() const {
  std::ostringstream out;
  std::string current_section;
  for (const std::string& name : order_) {
    const Entry& entry = entries_.find(name)->second;
    const ConfigKeySpec& spec = *entry.spec;
    if (spec.section != current_section) {
      if (!current_section.empty()) out << "\n";
      out << "[" << spec.section << "]\n";
      current_section = spec.section;
    }
    // Let toml++ render the value so quoting and escaping are always right.
    toml::table one;
    // Whether every string is printable ASCII without a single quote.
    bool plain = true;
    auto note = [&plain](const std::string& s) {
      plain = plain && std::all_of(s.begin(), s.end(), [](char c) {
                return c >= 0x20 && c <= 0x7e && c != '\'';
              });
    };
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, absl::Duration>) {
            one.insert(spec.key, absl::FormatDuration(v));
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            toml::array arr;
            for (const std::string& s : v) {
              note(s);
              arr.push_back(s);
            }
            one.insert(spec.key, std::move(arr));
          } else {
            if constexpr (std::is_same_v<T, std::string>) note(v);
            one.insert(spec.key, v);
          }
        },
        entry.value);
    // Never multi-line strings, and literal ones ('...') only for plain
    // text: toml++ 3.3 prints a value holding a newline and ''' as a
    // multi-line literal string that ends at that ''', and without
    // multi-line strings a newline inside a single-line literal one; neither
    // loads again. Anything else is a basic string ("...") with escapes,
    // non-ASCII as \uXXXX so the output loads again (see ScreenTomlText).
    toml::format_flags flags = toml::toml_formatter::default_flags &
                               ~(toml::format_flags::allow_unicode_strings |
                                 toml::format_flags::allow_multi_line_strings);
    if (!plain) flags = flags & ~toml::format_flags::allow_literal_strings;
    std::ostringstream line;
    line << toml::toml_formatter(one, flags);
    out << line.str() << "  # " << entry.source << "\n";
  }
  return out.str();
}

// ---- Loading ----

class ConfigBuilder {
 public:
  explicit ConfigBuilder(const ConfigSchema& schema) {
    for (const ConfigKeySpec& spec : schema.keys()) {
      config_.order_.push_back(spec.DottedName());
      config_.entries_.emplace(
          spec.DottedName(),
          Config::Entry{&spec, spec.default_value, "default"});
    }
  }

  void Set(const ConfigKeySpec& spec, ConfigValue value, std::string source) {
    Config::Entry& entry = config_.entries_.find(spec.DottedName())->second;
    entry.value = std::move(value);
    entry.source = std::move(source);
  }

  Config Finish() { return std::move(config_); }

 private:
  Config config_;
};

namespace {

// Screens the text before toml++ sees it: printable ASCII, tab, LF and CR
// only. TOML 1.0 forbids the other control characters anyway. Non-ASCII is
// refused because toml++ 3.3 (Debian 12) reaches __builtin_unreachable when
// it classifies some non-ASCII characters - between tokens, in a malformed
// value, after a line-ending backslash in a multi-line string (all found by
// fuzz/fuzz_config). Vouch keys are ASCII; other characters in string values
// are written as \uXXXX escapes (docs/configuration.md).
absl::Status ScreenTomlText(absl::string_view text,
                            absl::string_view source_name) {
  size_t line = 1;
  size_t column = 0;
  for (unsigned char c : text) {
    ++column;
    const bool control =
        (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f;
    if (control || c >= 0x80) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_name, ":", line, ":", column, ": invalid TOML: ",
          control ? absl::StrFormat("control character 0x%02x", c)
                  : std::string("non-ASCII byte (write \\uXXXX escapes in "
                                "strings; config files are ASCII)")));
    }
    if (c == '\n') {
      ++line;
      column = 0;
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyToml(const ConfigSchema& schema, absl::string_view text,
                       absl::string_view source_name, ConfigBuilder& builder) {
  VOUCH_RETURN_IF_ERROR(ScreenTomlText(text, source_name));
  toml::parse_result parsed =
      toml::parse(std::string_view(text.data(), text.size()),
                  std::string_view(source_name.data(), source_name.size()));
  if (!parsed) {
    const toml::parse_error& err = parsed.error();
    std::string desc(err.description());
    // One line, whatever the parser said.
    for (char& c : desc) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ":", err.source().begin.line, ":",
                     err.source().begin.column, ": invalid TOML: ", desc));
  }
  const toml::table& root = parsed.table();
  for (const auto& [section_key, section_node] : root) {
    const std::string section(section_key.str());
    const std::string where = Where(source_name, section_node.source());
    const toml::table* table = section_node.as_table();
    if (table == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": key '", section,
          "' must be inside a [section]; known sections hold keys like ",
          schema.keys().empty() ? "" : schema.keys().front().DottedName()));
    }
    if (!schema.HasSection(section)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": unknown section [", section, "]"));
    }
    for (const auto& [key, node] : *table) {
      const std::string key_str(key.str());
      const std::string key_where = Where(source_name, node.source());
      const ConfigKeySpec* spec = schema.Find(section, key_str);
      if (spec == nullptr) {
        std::vector<std::string> known;
        for (const ConfigKeySpec& s : schema.keys()) {
          if (s.section == section) known.push_back(s.key);
        }
        return absl::InvalidArgumentError(absl::StrCat(
            key_where, ": unknown key '", section, ".", key_str,
            "' (known in [", section, "]: ", absl::StrJoin(known, ", "), ")"));
      }
      absl::StatusOr<ConfigValue> value = FromToml(*spec, node);
      if (!value.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(key_where, ": ", value.status().message()));
      }
      builder.Set(*spec, *std::move(value), key_where);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Config> ParseConfigText(const ConfigSchema& schema,
                                       absl::string_view toml,
                                       absl::string_view source_name) {
  ConfigBuilder builder(schema);
  VOUCH_RETURN_IF_ERROR(ApplyToml(schema, toml, source_name, builder));
  return builder.Finish();
}

absl::StatusOr<Config> LoadConfig(const ConfigSchema& schema,
                                  const ConfigSources& sources) {
  ConfigBuilder builder(schema);
  if (!sources.file_path.empty()) {
    absl::StatusOr<std::string> text =
        ReadFileUpTo(sources.file_path, kMaxConfigFileBytes);
    if (absl::IsNotFound(text.status())) {
      if (sources.file_required) {
        return absl::InvalidArgumentError(
            absl::StrCat(sources.file_path, ": cannot open config file"));
      }
    } else if (absl::IsOutOfRange(text.status())) {
      return absl::InvalidArgumentError(
          absl::StrCat(sources.file_path, ": config file is larger than ",
                       kMaxConfigFileBytes, " bytes"));
    } else if (!text.ok()) {
      return absl::InvalidArgumentError(text.status().message());
    } else {
      VOUCH_RETURN_IF_ERROR(
          ApplyToml(schema, *text, sources.file_path, builder));
    }
  }
  for (const ConfigKeySpec& spec : schema.keys()) {
    auto it = sources.env.find(spec.env);
    if (it == sources.env.end()) continue;
    absl::StatusOr<ConfigValue> value = ParseText(spec, it->second);
    if (!value.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "environment variable ", spec.env, ": ", value.status().message()));
    }
    builder.Set(spec, *std::move(value), absl::StrCat("env ", spec.env));
  }
  for (const auto& [name, text] : sources.flags) {
    const size_t dot = name.find('.');
    const ConfigKeySpec* spec =
        dot == std::string::npos
            ? nullptr
            : schema.Find(absl::string_view(name).substr(0, dot),
                          absl::string_view(name).substr(dot + 1));
    if (spec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown config key '", name, "'"));
    }
    absl::StatusOr<ConfigValue> value = ParseText(*spec, text);
    if (!value.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "flag ", spec->FlagName(), ": ", value.status().message()));
    }
    builder.Set(*spec, *std::move(value),
                absl::StrCat("flag ", spec->FlagName()));
  }
  return builder.Finish();
}

std::map<std::string, std::string> VouchEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    absl::string_view entry(*e);
    if (!absl::StartsWith(entry, "VOUCH_")) continue;
    const size_t eq = entry.find('=');
    if (eq == absl::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)),
                std::string(entry.substr(eq + 1)));
  }
  return env;
}

}  // namespace vouch
