#include "common/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vouch {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};

// The length of the valid UTF-8 sequence starting at s[i], or 0.
size_t Utf8Length(absl::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = 0;
  uint32_t cp = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff)) {
    return 0;
  }
  return n;
}

// Appends the ASCII byte `c` to a quoted string: " \\ \\n \\r \\t escaped
// with a backslash, other control bytes in `control_format` (\\xHH for text
// lines, \\u00HH for JSON).
void AppendEscaped(unsigned char c,
                   const absl::FormatSpec<unsigned char>& control_format,
                   std::string* out) {
  switch (c) {
    case '"':
      *out += "\\\"";
      break;
    case '\\':
      *out += "\\\\";
      break;
    case '\n':
      *out += "\\n";
      break;
    case '\r':
      *out += "\\r";
      break;
    case '\t':
      *out += "\\t";
      break;
    default:
      if (c < 0x20 || c == 0x7f) {
        absl::StrAppendFormat(out, control_format, c);
      } else {
        *out += static_cast<char>(c);
      }
  }
}

// A key reduced to one safe token (keys come from our own code).
std::string SafeKey(absl::string_view k) {
  std::string key(k);
  for (char& c : key) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' &&
        c != '.' && c != '-') {
      c = '_';
    }
  }
  return key;
}

struct SinkState {
  std::mutex mu;
  std::string component;
  std::function<void(absl::string_view)> sink;
};

SinkState& State() {
  static SinkState* state =
      new SinkState();  // Never destroyed: usable at exit.
  return *state;
}

// journald's "syslog level prefix": <3> err, <4> warning, <6> info, <7> debug.
int SyslogPriority(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return 7;
    case LogLevel::kInfo:
      return 6;
    case LogLevel::kWarning:
      return 4;
    case LogLevel::kError:
      return 3;
  }
  return 3;
}

bool UnderJournald() {
  static const bool under = std::getenv("JOURNAL_STREAM") != nullptr;
  return under;
}

void WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n <= 0) return;  // Nowhere to report a failing stderr.
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warning" || lower == "warn") return LogLevel::kWarning;
  if (lower == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      "log level must be one of debug, info, warning, error");
}

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "error";
}

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "text") return LogFormat::kText;
  if (lower == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError("log format must be text or json");
}

void SetLogFormat(LogFormat format) {
  g_format.store(static_cast<int>(format));
}

std::string JsonQuote(absl::string_view value) {
  std::string out = "\"";
  for (size_t i = 0; i < value.size();) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c >= 0x80) {
      const size_t n = Utf8Length(value, i);
      if (n == 0) {
        absl::StrAppendFormat(&out, "\\\\x%02x", c);  // The text \xHH.
        ++i;
      } else {
        out.append(value.data() + i, n);
        i += n;
      }
      continue;
    }
    AppendEscaped(c, "\\u%04x", &out);
    ++i;
  }
  out += '"';
  return out;
}

std::string FormatJsonLogLine(LogLevel level, absl::string_view component,
                              absl::string_view message,
                              std::initializer_list<LogField> fields,
                              absl::string_view ts) {
  std::string line = "{";
  if (!ts.empty()) absl::StrAppend(&line, "\"ts\":", JsonQuote(ts), ",");
  absl::StrAppend(&line, "\"level\":\"", LogLevelName(level), "\"");
  if (!component.empty()) {
    absl::StrAppend(&line, ",\"component\":", JsonQuote(component));
  }
  absl::StrAppend(&line, ",\"msg\":", JsonQuote(message));
  for (const LogField& field : fields) {
    absl::StrAppend(&line, ",", JsonQuote(SafeKey(field.key)), ":",
                    JsonQuote(field.value));
  }
  line += '}';
  return line;
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

void SetLogComponent(absl::string_view component) {
  std::lock_guard<std::mutex> lock(State().mu);
  State().component = std::string(component);
}

void SetLogSinkForTesting(std::function<void(absl::string_view)> sink) {
  std::lock_guard<std::mutex> lock(State().mu);
  State().sink = std::move(sink);
}

std::string LogQuote(absl::string_view value) {
  bool needs_quotes = value.empty();
  for (unsigned char c : value) {
    if (c <= 0x20 || c == '"' || c == '=' || c == '\\' || c == 0x7f) {
      needs_quotes = true;
      break;
    }
  }
  if (!needs_quotes) return std::string(value);
  std::string out = "\"";
  for (unsigned char c : value) {
    AppendEscaped(c, "\\x%02x", &out);
  }
  out += '"';
  return out;
}

std::string FormatLogLine(LogLevel level, absl::string_view component,
                          absl::string_view message,
                          std::initializer_list<LogField> fields) {
  std::string line = absl::StrCat("level=", LogLevelName(level));
  if (!component.empty()) absl::StrAppend(&line, " component=", component);
  absl::StrAppend(&line, " msg=", LogQuote(message));
  for (const LogField& field : fields) {
    absl::StrAppend(&line, " ", SafeKey(field.key), "=", LogQuote(field.value));
  }
  return line;
}

void Log(LogLevel level, absl::string_view message,
         std::initializer_list<LogField> fields) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) {
    return;
  }
  SinkState& state = State();
  std::string component;
  std::function<void(absl::string_view)> sink;
  {
    std::lock_guard<std::mutex> lock(state.mu);
    component = state.component;
    sink = state.sink;
  }
  if (g_format.load(std::memory_order_relaxed) ==
      static_cast<int>(LogFormat::kJson)) {
    const std::string ts =
        UnderJournald() ? std::string()
                        : absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                           absl::UTCTimeZone());
    std::string body = FormatJsonLogLine(level, component, message, fields, ts);
    if (sink) {
      sink(body);
      return;
    }
    WriteAll(STDERR_FILENO,
             UnderJournald()
                 ? absl::StrCat("<", SyslogPriority(level), ">", body, "\n")
                 : absl::StrCat(body, "\n"));
    return;
  }
  std::string body = FormatLogLine(level, component, message, fields);
  if (sink) {
    sink(body);
    return;
  }
  std::string line;
  if (UnderJournald()) {
    line = absl::StrCat("<", SyslogPriority(level), ">", body, "\n");
  } else {
    line = absl::StrCat("ts=",
                        absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                         absl::UTCTimeZone()),
                        " ", body, "\n");
  }
  WriteAll(STDERR_FILENO, line);
}

}  // namespace vouch
