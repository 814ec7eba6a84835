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
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(&out, "\\x%02x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
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
    // Keys come from our own code; still keep them to one safe token.
    std::string key = field.key;
    for (char& c : key) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' &&
          c != '.' && c != '-') {
        c = '_';
      }
    }
    absl::StrAppend(&line, " ", key, "=", LogQuote(field.value));
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
