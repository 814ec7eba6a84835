// File: common/logging.h
// A small structured logging facade: one line per event on stderr, as
// `key=value` pairs. Values are quoted and escaped, so untrusted text (an
// agent_id, a path from an IMA log) can never forge a second log line.
// Under systemd (JOURNAL_STREAM set) each line starts with a `<N>` syslog
// priority prefix that journald understands and the timestamp is left out.
// With log.format = json (SetLogFormat) each line is instead one JSON object
// with the same fields: {"ts":…,"level":…,"component":…,"msg":…,"key":…};
// bytes that are not UTF-8 appear as the text \xHH.
// Thread-safe: each line is written with a single write(2).
//
//   Log(LogLevel::kInfo, "agent registered", {{"agent_id", id}, {"try", 3}});
//   -> ts=2026-11-22T07:00:00.123Z level=info msg="agent registered"
//   agent_id=a1 try=3
#ifndef VOUCH_COMMON_LOGGING_H_
#define VOUCH_COMMON_LOGGING_H_

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vouch {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class LogFormat { kText = 0, kJson = 1 };

// "debug", "info", "warning" (or "warn"), "error"; anything else is
// kInvalidArgument.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);
absl::string_view LogLevelName(LogLevel level);
// "text" or "json"; anything else is kInvalidArgument.
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);

// One `key=value` pair. The value is rendered once, at the call site.
struct LogField {
  LogField(absl::string_view k, absl::string_view v) : key(k), value(v) {}
  LogField(absl::string_view k, const std::string& v) : key(k), value(v) {}
  LogField(absl::string_view k, const char* v) : key(k), value(v) {}
  LogField(absl::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  LogField(absl::string_view k, int v) : key(k), value(std::to_string(v)) {}
  LogField(absl::string_view k, long v)  // NOLINT(runtime/int)
      : key(k), value(std::to_string(v)) {}
  LogField(absl::string_view k, long long v)  // NOLINT(runtime/int)
      : key(k), value(std::to_string(v)) {}
  LogField(absl::string_view k, unsigned v)
      : key(k), value(std::to_string(v)) {}
  LogField(absl::string_view k, unsigned long v)  // NOLINT(runtime/int)
      : key(k), value(std::to_string(v)) {}
  LogField(absl::string_view k, unsigned long long v)  // NOLINT(runtime/int)
      : key(k), value(std::to_string(v)) {}
  LogField(absl::string_view k, double v) : key(k), value(std::to_string(v)) {}
  LogField(absl::string_view k, const absl::Status& s)
      : key(k), value(s.ToString()) {}

  std::string key;
  std::string value;
};

// Process-wide settings. Set once at start-up (before threads), read anywhere.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void SetLogFormat(LogFormat format);
// Adds `component=<name>` to every line (the binary's name).
void SetLogComponent(absl::string_view component);

// Replaces the stderr sink (tests). Pass nullptr to restore stderr. The sink
// receives the full line without the trailing newline.
void SetLogSinkForTesting(std::function<void(absl::string_view)> sink);

// Emits one line if `level` is at or above the configured level.
void Log(LogLevel level, absl::string_view message,
         std::initializer_list<LogField> fields = {});

// Formats a line exactly as Log would, without the timestamp or journald
// prefix. Exposed for tests.
std::string FormatLogLine(LogLevel level, absl::string_view component,
                          absl::string_view message,
                          std::initializer_list<LogField> fields);

// The same line as one JSON object (no timestamp unless `ts` is given).
std::string FormatJsonLogLine(LogLevel level, absl::string_view component,
                              absl::string_view message,
                              std::initializer_list<LogField> fields,
                              absl::string_view ts = "");

// `value` as a JSON string literal, quotes included.
std::string JsonQuote(absl::string_view value);

// Quotes `value` when it is empty or holds a space, quote, '=', backslash or
// a control byte; escapes \n \r \t \" \\ and other control bytes as \xHH.
std::string LogQuote(absl::string_view value);

}  // namespace vouch

#endif  // VOUCH_COMMON_LOGGING_H_
