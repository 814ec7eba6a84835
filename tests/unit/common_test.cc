// Unit tests for src/common: status macros, hex, logging, layered config,
// thread names.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/app.h"
#include "common/bytes.h"
#include "common/config.h"
#include "common/file.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/thread_name.h"

namespace vouch {
namespace {

absl::Status FailIf(bool fail) {
  return fail ? absl::InvalidArgumentError("boom") : absl::OkStatus();
}
absl::StatusOr<int> ValueOr(bool fail, int v) {
  if (fail) return absl::NotFoundError("missing");
  return v;
}
absl::StatusOr<int> AddBoth(bool fail_a, bool fail_b) {
  VOUCH_ASSIGN_OR_RETURN(int a, ValueOr(fail_a, 2));
  VOUCH_ASSIGN_OR_RETURN(const int b, ValueOr(fail_b, 40));
  return a + b;
}
absl::Status Chain(bool fail) {
  VOUCH_RETURN_IF_ERROR(FailIf(false));
  VOUCH_RETURN_IF_ERROR(FailIf(fail));
  return absl::OkStatus();
}

TEST_CASE("status macros propagate the first error", "[core][common]") {
  CHECK(Chain(false).ok());
  CHECK(Chain(true).code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(AddBoth(false, false).ok());
  CHECK(*AddBoth(false, false) == 42);
  CHECK(AddBoth(true, false).status().code() == absl::StatusCode::kNotFound);
  CHECK(AddBoth(false, true).status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("hex round-trips and rejects malformed text", "[core][common]") {
  const Bytes bytes = {0x00, 0x01, 0xab, 0xff};
  CHECK(HexEncode(bytes) == "0001abff");
  auto decoded = HexDecode("0001ABff");
  REQUIRE(decoded.ok());
  CHECK(*decoded == bytes);
  CHECK(HexDecode("0x0001abff").value() == bytes);
  CHECK(HexDecode("").value().empty());
  CHECK(HexDecode("abc").status().code() == absl::StatusCode::kInvalidArgument);
  auto bad = HexDecode("00zz");
  REQUIRE_FALSE(bad.ok());
  CHECK(absl::StrContains(bad.status().message(), "offset 2"));
}

TEST_CASE("constant-time compare", "[core][common]") {
  const Bytes a = {1, 2, 3};
  CHECK(ConstantTimeEquals(a, Bytes{1, 2, 3}));
  CHECK_FALSE(ConstantTimeEquals(a, Bytes{1, 2, 4}));
  CHECK_FALSE(ConstantTimeEquals(a, Bytes{1, 2}));
  CHECK(ConstantTimeEquals(Bytes{}, Bytes{}));
}

TEST_CASE("log lines are key=value and cannot be forged", "[core][common]") {
  CHECK(
      FormatLogLine(LogLevel::kInfo, "vouch-agent", "registered",
                    {{"agent_id", "node-1"}, {"try", 3}}) ==
      "level=info component=vouch-agent msg=registered agent_id=node-1 try=3");
  // A hostile value with a newline and a fake field stays one quoted value.
  const std::string line =
      FormatLogLine(LogLevel::kWarning, "", "bad agent",
                    {{"agent_id", "x\nlevel=error msg=\"forged\""}});
  CHECK(line.find('\n') == std::string::npos);
  CHECK(line ==
        "level=warning msg=\"bad agent\" "
        "agent_id=\"x\\nlevel=error msg=\\\"forged\\\"\"");
  CHECK(LogQuote("") == "\"\"");
  CHECK(LogQuote(std::string("a\x01", 2)) == "\"a\\x01\"");
  CHECK(FormatLogLine(LogLevel::kError, "", "m", {{"bad key!", "v"}}) ==
        "level=error msg=m bad_key_=v");
}

TEST_CASE("log level filters and the test sink", "[core][common]") {
  std::vector<std::string> lines;
  SetLogSinkForTesting([&](absl::string_view l) { lines.emplace_back(l); });
  const LogLevel saved = GetLogLevel();
  SetLogLevel(LogLevel::kWarning);
  Log(LogLevel::kInfo, "hidden");
  Log(LogLevel::kError, "shown", {{"ok", false}});
  SetLogLevel(saved);
  SetLogSinkForTesting(nullptr);
  REQUIRE(lines.size() == 1);
  CHECK(absl::StrContains(lines[0], "msg=shown ok=false"));
  CHECK(ParseLogLevel("WARN").value() == LogLevel::kWarning);
  CHECK_FALSE(ParseLogLevel("loud").ok());
}

TEST_CASE("files are read up to a bound", "[core][common]") {
  char name[] = "/tmp/vouch-file-test-XXXXXX";
  const int fd = mkstemp(name);
  REQUIRE(fd >= 0);
  close(fd);
  const std::string path = name;
  {
    std::ofstream out(path);
    out << "0123456789";
  }
  CHECK(ReadFileUpTo(path, 10).value() == "0123456789");
  CHECK(ReadFileUpTo(path, 9).status().code() == absl::StatusCode::kOutOfRange);
  std::remove(path.c_str());
  CHECK(ReadFileUpTo(path, 10).status().code() == absl::StatusCode::kNotFound);
}

ConfigSchema TestSchema() {
  ConfigSchema schema;
  schema.String("agent", "tcti", "device:/dev/tpmrm0", "TCTI")
      .Int("agent", "retries", 5, "retries", 0, 10)
      .Bool("agent", "strict", true, "strict")
      .Duration("agent", "interval", absl::Seconds(30), "interval")
      .StringList("agent", "verifiers", {"a:1"}, "verifiers")
      .String("log", "level", "info", "level")
      .String("client", "server", "", "server")
      .WithNames("--server", "VOUCH_SERVER");
  return schema;
}

TEST_CASE("config defaults, file, env and flags layer in order",
          "[core][common]") {
  const ConfigSchema schema = TestSchema();
  auto cfg = ParseConfigText(schema,
                             "[agent]\n"
                             "tcti = \"swtpm:host=127.0.0.1,port=1\"\n"
                             "retries = 7\n"
                             "interval = \"1m30s\"\n"
                             "verifiers = [\"v1:1\", \"v2:2\"]\n",
                             "agent.toml");
  REQUIRE(cfg.ok());
  CHECK(cfg->GetString("agent", "tcti") == "swtpm:host=127.0.0.1,port=1");
  CHECK(cfg->Source("agent", "tcti") == "agent.toml:2");
  CHECK(cfg->GetInt("agent", "retries") == 7);
  CHECK(cfg->GetBool("agent", "strict"));
  CHECK(cfg->Source("agent", "strict") == "default");
  CHECK(cfg->GetDuration("agent", "interval") == absl::Seconds(90));
  CHECK(cfg->GetStringList("agent", "verifiers") ==
        std::vector<std::string>{"v1:1", "v2:2"});

  ConfigSources sources;
  sources.env = {{"VOUCH_AGENT_RETRIES", "9"},
                 {"VOUCH_AGENT_STRICT", "no"},
                 {"VOUCH_SERVER", "h:1"},
                 {"VOUCH_UNRELATED_THING", "ignored"}};
  sources.flags = {{"agent.retries", "3"}, {"agent.verifiers", "x:1, y:2"}};
  auto layered = LoadConfig(schema, sources);
  REQUIRE(layered.ok());
  CHECK(layered->GetInt("agent", "retries") == 3);
  CHECK(layered->Source("agent", "retries") == "flag --agent-retries");
  CHECK_FALSE(layered->GetBool("agent", "strict"));
  CHECK(layered->Source("agent", "strict") == "env VOUCH_AGENT_STRICT");
  CHECK(layered->GetString("client", "server") == "h:1");
  CHECK(layered->GetStringList("agent", "verifiers") ==
        std::vector<std::string>{"x:1", "y:2"});
}

TEST_CASE("config errors are one line naming file, line and key",
          "[core][common]") {
  const ConfigSchema schema = TestSchema();
  struct Case {
    std::string toml;
    const char* expected;
  };
  using namespace std::string_literals;  // "..."s keeps embedded NULs.
  const Case cases[] = {
      {"[agent]\n\ntcti = 5\n",
       "agent.toml:3: key 'agent.tcti' must be a string, got integer"},
      {"[agent]\ntctii = \"x\"\n", "agent.toml:2: unknown key 'agent.tctii'"},
      {"[agnet]\ntcti = \"x\"\n", "agent.toml:1: unknown section [agnet]"},
      {"[agent]\nretries = 11\n",
       "agent.toml:2: key 'agent.retries' must be between 0 and 10, got 11"},
      {"[agent]\ninterval = \"soon\"\n",
       "agent.toml:2: key 'agent.interval' must be a duration"},
      {"[agent]\nverifiers = [\"a\", 1]\n",
       "agent.toml:2: key 'agent.verifiers' must be an array of strings"},
      {"tcti = \"x\"\n", "agent.toml:1: key 'tcti' must be inside a [section]"},
      {"[agent]\ntcti = \"unterminated\n", "agent.toml:2:"},
      // Found by fuzz/fuzz_config: toml++ asserts on a NUL in a header.
      {"[\0\0\0\0\0\0\0\x0fi = 5\n"s,
       "agent.toml:1:2: invalid TOML: control character 0x00"},
      // Found by fuzz/fuzz_config: toml++ asserts on "[=" in a header.
      {"[= \"x\"\n",
       "agent.toml:1:2: invalid TOML: Error while parsing key: expected bare "
       "key"},
      // Found by fuzz/fuzz_config: toml++ reaches __builtin_unreachable.
      {"\xc5\xa4"
       "a][\n",
       "agent.toml:1:1: invalid TOML: non-ASCII byte"},
      {"[agent]\nretries = 1-\"s\xef\xbb\xb7\"\n",
       "agent.toml:2:15: invalid TOML: non-ASCII byte"},
      {"t=\"\"\"/\n\n#\xef\xbb\xbfr\\\n\"\"\"\n",
       "agent.toml:3:2: invalid TOML: non-ASCII byte"},
      {"[agent]\ntcti = \"a\x7f\"\n",
       "agent.toml:2:10: invalid TOML: control character 0x7f"},
  };
  for (const Case& c : cases) {
    INFO(c.toml);
    auto cfg = ParseConfigText(schema, c.toml, "agent.toml");
    REQUIRE_FALSE(cfg.ok());
    CHECK(cfg.status().code() == absl::StatusCode::kInvalidArgument);
    const std::string message(cfg.status().message());
    CHECK(absl::StartsWith(message, c.expected));
    CHECK(message.find('\n') == std::string::npos);
  }

  ConfigSources bad_env;
  bad_env.env = {{"VOUCH_AGENT_RETRIES", "many"}};
  auto env_error = LoadConfig(schema, bad_env);
  REQUIRE_FALSE(env_error.ok());
  CHECK(absl::StartsWith(env_error.status().message(),
                         "environment variable VOUCH_AGENT_RETRIES: key "
                         "'agent.retries' must be an integer"));

  ConfigSources missing;
  missing.file_path = "/nonexistent/vouch.toml";
  CHECK(LoadConfig(schema, missing).ok());  // Default path: optional.
  missing.file_required = true;
  CHECK(LoadConfig(schema, missing).status().message() ==
        "/nonexistent/vouch.toml: cannot open config file");
}

TEST_CASE("config files are ASCII, other characters are escapes",
          "[core][common]") {
  // The schema must outlive the Config (config.h).
  const ConfigSchema schema = TestSchema();
  auto cfg = ParseConfigText(
      schema, "# comment\n[agent]\ntcti = \"caf\\u00e9\"\n", "agent.toml");
  REQUIRE(cfg.ok());
  CHECK(cfg->GetString("agent", "tcti") == "caf\xc3\xa9");
  auto comment = ParseConfigText(schema, "# caf\xc3\xa9\n", "c.toml");
  CHECK(comment.status().message() ==
        "c.toml:1:6: invalid TOML: non-ASCII byte (write \\uXXXX escapes in "
        "strings; config files are ASCII)");
}

TEST_CASE("printed config parses back to the same values", "[core][common]") {
  const ConfigSchema schema = TestSchema();
  ConfigSources sources;
  sources.flags = {{"agent.tcti", "quote\" and \\ back caf\xc3\xa9"},
                   {"agent.interval", "2h3m"}};
  auto cfg = LoadConfig(schema, sources);
  REQUIRE(cfg.ok());
  const std::string toml = cfg->ToToml();
  auto again = ParseConfigText(schema, toml, "printed.toml");
  REQUIRE(again.ok());
  CHECK(again->GetString("agent", "tcti") == "quote\" and \\ back caf\xc3\xa9");
  CHECK(again->GetDuration("agent", "interval") ==
        absl::Hours(2) + absl::Minutes(3));
  CHECK(again->GetStringList("agent", "verifiers") ==
        std::vector<std::string>{"a:1"});
}

TEST_CASE("printed config strings load again whatever they hold",
          "[core][common]") {
  // Found by fuzz_config: a value holding a newline and ''' was printed as
  // a multi-line literal string that ended at the '''.
  const ConfigSchema schema = TestSchema();
  const std::vector<std::string> values = {
      "a'''b\nc",       "line\nbreak",         "tab\tand\r",
      "'''\n'''",       "ctl\x01\x1f\x7f end", "'single' \\\\ \"double\"",
      "\"\"\"\n\"\"\"",
  };
  for (const std::string& v : values) {
    CAPTURE(v);
    ConfigSources sources;
    sources.flags = {{"agent.tcti", v}};
    auto cfg = LoadConfig(schema, sources);
    REQUIRE(cfg.ok());
    const std::string toml = cfg->ToToml();
    CAPTURE(toml);
    auto again = ParseConfigText(schema, toml, "printed.toml");
    REQUIRE(again.ok());
    CHECK(again->GetString("agent", "tcti") == v);
  }
}

TEST_CASE("a pending stop signal is taken even by a zero-timeout poll",
          "[core][common]") {
  // The agent's attestation loop polls with a zero timeout between
  // messages; a SIGTERM that arrived meanwhile must end it.
  sigset_t old;
  sigemptyset(&old);
  pthread_sigmask(SIG_SETMASK, nullptr, &old);
  BlockShutdownSignals();
  CHECK_FALSE(WaitForShutdownFor(absl::ZeroDuration()).has_value());
  CHECK_FALSE(WaitForShutdownFor(absl::Milliseconds(5)).has_value());
  REQUIRE(raise(SIGTERM) == 0);  // Blocked: stays pending for this thread.
  CHECK(WaitForShutdownFor(absl::ZeroDuration()) == SIGTERM);
  CHECK_FALSE(WaitForShutdownFor(absl::ZeroDuration()).has_value());
  REQUIRE(raise(SIGINT) == 0);
  CHECK(WaitForShutdownFor(absl::Seconds(5)) == SIGINT);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

TEST_CASE("SetThreadName names the calling thread, cut to 15 characters",
          "[common]") {
  auto name_of = [](const char* name) {
    std::string seen;
    std::thread t([&] {
      SetThreadName(name);
      std::ifstream f(absl::StrCat("/proc/self/task/", gettid(), "/comm"));
      std::getline(f, seen);
    });
    t.join();
    return seen;
  };
  CHECK(name_of("vouch-commit") == "vouch-commit");
  CHECK(name_of("vouch-a-very-long-thread-name") == "vouch-a-very-lo");
}

}  // namespace
}  // namespace vouch
