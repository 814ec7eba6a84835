// [e2e] The four binaries as a user meets them: --help, --version, config
// files (good and bad), environment and flag overrides, clean shutdown.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "harness/process.h"
#include "harness/temp_dir.h"

namespace vouch {
namespace {

using testing::ChildProcess;
using testing::ProcessOptions;
using testing::TempDir;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Result Run(const std::vector<std::string>& argv,
           std::vector<std::pair<std::string, std::string>> env = {}) {
  testing::RunResult run =
      testing::RunCapture(argv, std::move(env), std::chrono::seconds(60));
  INFO(run.status.ToString() << "\n" << run.err);
  REQUIRE(run.status.exited);
  return Result{run.status.code, run.out, run.err};
}

struct Binary {
  const char* path;
  const char* name;
  const char* section;  // A section its config has.
};

const Binary kDaemons[] = {
    {VOUCH_AGENT_BIN, "vouch-agent", "agent"},
    {VOUCH_VERIFIER_BIN, "vouch-verifier", "verifier"},
    {VOUCH_REGISTRAR_BIN, "vouch-registrar", "registrar"},
};

TEST_CASE("every binary answers --help and --version", "[e2e]") {
  std::vector<Binary> all(std::begin(kDaemons), std::end(kDaemons));
  all.push_back({VOUCHCTL_BIN, "vouchctl", "client"});
  for (const Binary& b : all) {
    INFO(b.name);
    Result help = Run({b.path, "--help"});
    CHECK(help.code == 0);
    CHECK(absl::StrContains(help.out, "--config"));
    CHECK(absl::StrContains(help.out, "--version"));
    CHECK(absl::StrContains(help.out, "--log-level"));
    Result version = Run({b.path, "--version"});
    CHECK(version.code == 0);
    CHECK(absl::StartsWith(version.out, std::string(b.name) + " 0.1.0"));
    Result bad_flag = Run({b.path, "--no-such-flag"});
    CHECK(bad_flag.code == 2);
  }
}

TEST_CASE("the sample configs in deploy/config load", "[e2e]") {
  for (const Binary& b : kDaemons) {
    INFO(b.name);
    const std::string sample = std::string(VOUCH_SOURCE_DIR) +
                               "/deploy/config/" +
                               std::string(b.name).substr(6) + ".toml";
    Result r = Run({b.path, "--config", sample, "--print-config"});
    CHECK(r.err == "");
    CHECK(r.code == 0);
    CHECK(absl::StrContains(r.out, "[" + std::string(b.section) + "]"));
    CHECK(absl::StrContains(r.out, "# " + sample + ":"));
  }
  Result ctl =
      Run({VOUCHCTL_BIN, "--config",
           std::string(VOUCH_SOURCE_DIR) + "/deploy/config/vouchctl.toml",
           "config", "view"});
  CHECK(ctl.code == 0);
  CHECK(absl::StrContains(ctl.out, "[client]"));
}

TEST_CASE("a bad config file is one line naming file, line and key, exit 2",
          "[e2e]") {
  auto dir = TempDir::Create();
  REQUIRE(dir.ok());
  const std::string path = dir->Join("agent.toml");
  {
    std::ofstream f(path);
    f << "# test\n[agent]\nstate_dir = \"/tmp\"\ntcti = 5\n";
  }
  Result r = Run({VOUCH_AGENT_BIN, "--config", path});
  CHECK(r.code == 2);
  CHECK(r.out == "");
  CHECK(r.err == "vouch-agent: " + path +
                     ":4: key 'agent.tcti' must be a string, got integer\n");

  {
    std::ofstream f(path);
    f << "[verifier]\nlisten = \"127.0.0.1:0\"\nintervall = \"3s\"\n";
  }
  Result typo = Run({VOUCH_VERIFIER_BIN, "--config", path});
  CHECK(typo.code == 2);
  CHECK(absl::StartsWith(typo.err, "vouch-verifier: " + path +
                                       ":3: unknown key 'verifier.intervall'"));
  CHECK(std::count(typo.err.begin(), typo.err.end(), '\n') == 1);

  Result missing = Run({VOUCH_REGISTRAR_BIN, "--config", dir->Join("nope")});
  CHECK(missing.code == 2);
  CHECK(missing.err == "vouch-registrar: " + dir->Join("nope") +
                           ": cannot open config file\n");

  Result bad_env = Run({VOUCH_REGISTRAR_BIN, "--print-config"},
                       {{"VOUCH_REGISTRAR_REQUIRE_EK_CERT", "maybe"}});
  CHECK(bad_env.code == 2);
  CHECK(absl::StrContains(bad_env.err,
                          "VOUCH_REGISTRAR_REQUIRE_EK_CERT: key "
                          "'registrar.require_ek_cert'"));
}

TEST_CASE("flags override environment, environment overrides the file",
          "[e2e]") {
  auto dir = TempDir::Create();
  REQUIRE(dir.ok());
  const std::string path = dir->Join("agent.toml");
  {
    std::ofstream f(path);
    f << "[agent]\ntcti = \"from-file\"\nstate_dir = \"/from/file\"\n"
         "id = \"file-id\"\n";
  }
  Result r =
      Run({VOUCH_AGENT_BIN, "--config", path, "--agent-id", "flag-id",
           "--print-config"},
          {{"VOUCH_AGENT_ID", "env-id"}, {"VOUCH_AGENT_TCTI", "env-tcti"}});
  REQUIRE(r.code == 0);
  CHECK(absl::StrContains(r.out, "id = 'flag-id'  # flag --agent-id"));
  CHECK(absl::StrContains(r.out, "tcti = 'env-tcti'  # env VOUCH_AGENT_TCTI"));
  CHECK(absl::StrContains(r.out, "state_dir = '/from/file'  # " + path + ":3"));
}

TEST_CASE("vouchctl global flags go before or after the subcommand", "[e2e]") {
  Result after = Run({VOUCHCTL_BIN, "config", "view", "--server", "h:1"});
  CHECK(after.code == 0);
  CHECK(absl::StrContains(after.out, "server = 'h:1'  # flag --server"));
  Result before = Run({VOUCHCTL_BIN, "--tls-dir", "/t", "config", "view"});
  CHECK(before.code == 0);
  CHECK(absl::StrContains(before.out, "tls_dir = '/t'  # flag --tls-dir"));
  Result env = Run({VOUCHCTL_BIN, "config", "view"}, {{"VOUCH_SERVER", "e:2"}});
  CHECK(absl::StrContains(env.out, "server = 'e:2'  # env VOUCH_SERVER"));
  Result version = Run({VOUCHCTL_BIN, "version"});
  CHECK(version.code == 0);
  CHECK(absl::StartsWith(version.out, "vouchctl 0.1.0"));
  Result none = Run({VOUCHCTL_BIN});
  CHECK(none.code == 2);
  Result json = Run({VOUCHCTL_BIN, "config", "view", "-o", "json"});
  CHECK(json.code == 0);
  CHECK(absl::StrContains(json.out, "output = 'json'  # flag --output"));
  Result xml = Run({VOUCHCTL_BIN, "-o", "xml", "config", "view"});
  CHECK(xml.code == 2);
  CHECK(xml.err ==
        "vouchctl: output format 'xml' (flag --output) is not one of table, "
        "wide, json, yaml, name\n");
}

TEST_CASE("daemons start, wait for what they need and exit 0 on SIGTERM",
          "[e2e]") {
  for (const Binary& b : kDaemons) {
    INFO(b.name);
    auto dir = TempDir::Create();
    REQUIRE(dir.ok());
    ProcessOptions options;
    options.stderr_path = dir->Join("err");
    options.stdout_path = dir->Join("out");
    // No file: defaults plus an override, as a container would run it.
    options.env = {{"VOUCH_CONFIG", dir->Join("absent.toml")},
                   {"VOUCH_LOG_LEVEL", "debug"}};
    auto child = ChildProcess::Start({b.path}, options);
    // VOUCH_CONFIG names a file explicitly, so its absence is an error...
    REQUIRE(child.ok());
    auto status = child->WaitFor(std::chrono::seconds(30));
    REQUIRE(status.ok());
    CHECK(status->code == 2);

    options.env = {{"VOUCH_LOG_LEVEL", "debug"}};
    auto daemon =
        ChildProcess::Start({b.path, "--config", dir->Join("none-needed.toml"),
                             "--log-level", "info"},
                            options);
    REQUIRE(daemon.ok());
    auto failed = daemon->WaitFor(std::chrono::seconds(30));
    REQUIRE(failed.ok());
    CHECK(failed->code == 2);  // ...and so is an explicit --config.

    // With defaults only: the registrar and the verifier have no database
    // and say so; the agent has no TPM at /dev/tpmrm0 and waits for one,
    // and stops cleanly on SIGTERM.
    auto running = ChildProcess::Start({b.path}, options);
    REQUIRE(running.ok());
    if (std::string(b.name) != "vouch-agent") {
      auto exited = running->WaitFor(std::chrono::seconds(30));
      REQUIRE(exited.ok());
      CHECK(exited->code == 2);
      CHECK(absl::StrContains(ReadFile(options.stderr_path),
                              "database.url is not set"));
      continue;
    }
    const std::string waiting = "TPM not usable";
    std::string err;
    for (int i = 0; i < 300 && !absl::StrContains(err, waiting); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      err = ReadFile(options.stderr_path);
    }
    REQUIRE(
        absl::StrContains(err, "level=info component=" + std::string(b.name)));
    REQUIRE(absl::StrContains(err, waiting));
    // SIGTERM first; SIGKILL only if it has not exited 20 s later.
    const testing::ExitStatus stopped =
        running->Terminate(std::chrono::seconds(20));
    CHECK(stopped.Success());
    CHECK(absl::StrContains(ReadFile(options.stderr_path), "stopping"));
  }
}

}  // namespace
}  // namespace vouch
