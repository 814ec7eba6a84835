// [e2e] scripts/demo --detach as a new user meets it: real PostgreSQL,
// swtpm, registrar, two verifiers and an agent. Regression tests for the
// defects a newcomer hit: a private (0700) parent of DIR (PostgreSQL, run
// as another user when we are root, could not enter it); `source
// DIR/vouch.env` then `vouchctl registrar get` reached the verifier and
// printed an empty reason. Also: the demo's context reaches both servers
// by itself, and list/get/describe print every -o format.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "harness/process.h"
#include "harness/temp_dir.h"

namespace vouch {
namespace {

using testing::RunCapture;
using testing::RunResult;
using testing::TempDir;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs a bash script with the demo's environment file sourced or not.
RunResult Bash(const std::string& script,
               std::vector<std::pair<std::string, std::string>> env) {
  for (const char* name :
       {"VOUCH_SERVER", "VOUCH_REGISTRAR", "VOUCH_TLS_DIR", "VOUCH_CONTEXT"}) {
    env.emplace_back(name, "");
  }
  env.emplace_back("VOUCH_OUTPUT", "table");
  env.emplace_back("PATH", std::string(VOUCH_BIN_DIR) + ":/usr/bin:/bin");
  return RunCapture({"bash", "-c", script}, std::move(env),
                    std::chrono::seconds(180));
}

TEST_CASE("demo --detach under a private parent, its context and env work",
          "[e2e][pg][tpm][smoke]") {
  auto parent = TempDir::Create("demo-");
  REQUIRE(parent.ok());
  REQUIRE(chmod(parent->path().c_str(), 0700) == 0);  // As mktemp -d makes.
  const std::string dir = parent->Join("run");
  const std::string config = parent->Join("vouch-config");
  const std::vector<std::pair<std::string, std::string>> env = {
      {"VOUCH_DEMO_BIN", VOUCH_BIN_DIR}, {"VOUCH_CONFIG", config}};
  RunResult up = Bash(
      std::string(VOUCH_SOURCE_DIR) + "/scripts/demo --detach " + dir, env);
  INFO(up.out << up.err);
  // Stop it whatever happens below.
  struct Stop {
    std::string dir;
    std::vector<std::pair<std::string, std::string>> env;
    ~Stop() {
      Bash(std::string(VOUCH_SOURCE_DIR) + "/scripts/demo --stop " + dir, env);
    }
  } stop{dir, env};
  REQUIRE(up.status.Success());
  const std::string env_file = Slurp(dir + "/vouch.env");
  CHECK(absl::StrContains(env_file, "export VOUCH_REGISTRAR='127.0.0.1:"));

  // 1. source DIR/vouch.env: registrar commands reach the registrar.
  RunResult sourced =
      Bash("set -e; source " + dir +
               "/vouch.env; export VOUCH_CONFIG=/nonexistent; "
               "vouchctl -o json registrar get \"$VOUCH_AGENT_ID\"",
           {});
  INFO(sourced.err);
  REQUIRE(sourced.status.Success());
  CHECK(nlohmann::json::parse(sourced.out)["active"] == true);

  // 2. The defect's situation: a verifier's address for registrar
  // commands. The error names the server reached and the one expected.
  RunResult wrong = Bash("source " + dir +
                             "/vouch.env; export VOUCH_CONFIG=/nonexistent; "
                             "vouchctl --registrar \"$VOUCH_SERVER\" "
                             "registrar get \"$VOUCH_AGENT_ID\"",
                         {});
  CHECK(wrong.status.code == 2);
  CHECK(absl::StrContains(wrong.err, "is not a registrar"));
  CHECK(absl::StrContains(wrong.err, "127.0.0.1:"));
  CHECK(!absl::StrContains(wrong.err, "vouchctl registrar: \n"));

  // 3. The context alone (no environment): both servers, every format.
  const std::string agent_id = [&] {
    for (absl::string_view line : absl::StrSplit(env_file, '\n')) {
      if (absl::ConsumePrefix(&line, "export VOUCH_AGENT_ID='")) {
        return std::string(line.substr(0, line.size() - 1));
      }
    }
    return std::string();
  }();
  REQUIRE(!agent_id.empty());
  const std::vector<std::pair<std::string, std::string>> ctx_env = {
      {"VOUCH_CONFIG", config}};
  // The demo waits a while for the first PASS; a loaded machine may need
  // longer.
  RunResult passed =
      Bash("for i in $(seq 1 120); do vouchctl agents get " + agent_id +
               " -o json | grep -q '\"state\": \"pass\"' && exit 0; sleep 0.5; "
               "done; exit 1",
           ctx_env);
  REQUIRE(passed.status.Success());
  RunResult current = Bash("vouchctl config current-context", ctx_env);
  CHECK(current.out == "demo\n");
  RunResult reg = Bash("vouchctl registrar list -o json", ctx_env);
  INFO(reg.err);
  REQUIRE(reg.status.Success());
  CHECK(nlohmann::json::parse(reg.out)["agents"][0]["agent_id"] == agent_id);
  RunResult names = Bash("vouchctl agents list -o name", ctx_env);
  CHECK(names.out == "agent/" + agent_id + "\n");
  RunResult yaml = Bash(
      "vouchctl agents list -o yaml | python3 -c 'import json,sys,yaml; "
      "print(json.dumps(yaml.safe_load(sys.stdin)))'",
      ctx_env);
  INFO(yaml.err);
  REQUIRE(yaml.status.Success());
  RunResult json = Bash("vouchctl agents list -o json", ctx_env);
  REQUIRE(json.status.Success());
  CHECK(nlohmann::json::parse(yaml.out) == nlohmann::json::parse(json.out));
  // The table: the 64-character id does not overrun its column.
  RunResult table = Bash("vouchctl agents list", ctx_env);
  REQUIRE(table.status.Success());
  const std::vector<std::string> rows =
      absl::StrSplit(table.out, '\n', absl::SkipEmpty());
  REQUIRE(rows.size() >= 2);
  CHECK(rows[0].find("STATE") == rows[1].find(" pass") + 1);
  RunResult wide = Bash("vouchctl policies list -o wide", ctx_env);
  CHECK(absl::StrContains(wide.out, "CREATED_BY"));
  CHECK(Bash("vouchctl policies get demo -o name", ctx_env).out ==
        "policy/demo\n");
  RunResult describe = Bash("vouchctl describe agent " + agent_id, ctx_env);
  INFO(describe.err);
  REQUIRE(describe.status.Success());
  CHECK(absl::StrContains(describe.out, "State:            pass"));
  CHECK(absl::StrContains(describe.out, "  Active:         true"));
  CHECK(absl::StrContains(describe.out, "Recent attestations:"));
  RunResult dj = Bash("vouchctl describe agent -o json " + agent_id, ctx_env);
  REQUIRE(dj.status.Success());
  nlohmann::json d = nlohmann::json::parse(dj.out);
  CHECK(d["registration"]["active"] == true);
  CHECK(!d["history"].empty());
}

}  // namespace
}  // namespace vouch
