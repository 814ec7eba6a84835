// vouchctl ima / policy as a process: exit codes 0 pass, 1 fail, 2 could not
// evaluate; --json shape; -o FILE on policy subcommands.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/match.h"
#include "harness/process.h"
#include "harness/temp_dir.h"
#include "ima_test_util.h"

namespace vouch::core::ima {
namespace {

using ::vouch::testing::ChildProcess;
using ::vouch::testing::ProcessOptions;
using ::vouch::testing::TempDir;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void Spit(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

Result Vouchctl(const TempDir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), VOUCHCTL_BIN);
  ProcessOptions options;
  options.stdout_path = dir.Join("stdout");
  options.stderr_path = dir.Join("stderr");
  std::remove(options.stdout_path.c_str());
  std::remove(options.stderr_path.c_str());
  options.env.emplace_back("HOME", dir.path());
  options.env.emplace_back("XDG_CONFIG_HOME", dir.Join("xdg"));
  auto child = ChildProcess::Start(args, options);
  REQUIRE(child.ok());
  auto status = child->WaitFor(std::chrono::seconds(60));
  REQUIRE(status.ok());
  REQUIRE(status->exited);
  return {status->code, Slurp(options.stdout_path), Slurp(options.stderr_path)};
}

std::string Data(const std::string& name) {
  return std::string(VOUCH_TEST_DATA_DIR) + "/keylime/" + name;
}

TEST_CASE("ima: vouchctl policy create learns a policy the log then passes",
          "[e2e]") {
  auto dir = TempDir::Create("ima-");
  REQUIRE(dir.ok());
  const std::string policy = dir->Join("policy.json");
  Result c = Vouchctl(
      *dir, {"policy-file", "create", "--from-ima-log", Data("ima-log-sha256"),
             "--exclude", "/tmp/.*", "-f", policy});
  INFO(c.err);
  REQUIRE(c.code == 0);
  auto j = nlohmann::json::parse(Slurp(policy));
  CHECK(j["meta"]["version"] == 1);
  CHECK(j["digests"]["/data"][0] ==
        "96d7fae8adb7286a419a88f78c13d35fb782d63df654b7db56f154765698b754");
  CHECK(j["excludes"][0] == "/tmp/.*");

  Result ok = Vouchctl(*dir, {"ima", "check", "--log", Data("ima-log-sha256"),
                              "--policy", policy, "--json"});
  INFO(ok.out << ok.err);
  CHECK(ok.code == 0);
  auto out = nlohmann::json::parse(ok.out);
  CHECK(out["verdict"] == "pass");
  CHECK(out["entries"] == 2);
  CHECK(out["pcr10"]["sha1"] == "8adcb4304b78ee782bbba3733b191591e75dc83d");
  CHECK(out["failures"].empty());

  // Quoted PCR 10 that matches after entry 1 (sha1 bank), then a wrong one.
  Result q = Vouchctl(
      *dir, {"ima", "check", "--log", Data("ima-log-sha256"), "--policy",
             policy, "--pcr10", "8adcb4304b78ee782bbba3733b191591e75dc83d",
             "--bank", "sha1"});
  CHECK(q.code == 0);
  Result bad = Vouchctl(
      *dir, {"ima", "check", "--log", Data("ima-log-sha256"), "--policy",
             policy, "--json", "--pcr10", std::string(40, '1')});
  CHECK(bad.code == 1);
  auto b = nlohmann::json::parse(bad.out);
  CHECK(b["verdict"] == "fail");
  CHECK(b["failures"][0]["reason"] == "pcr_mismatch");
}

TEST_CASE("ima: vouchctl ima check reports the reject list as 'rejected'",
          "[e2e]") {
  auto dir = TempDir::Create("ima-");
  REQUIRE(dir.ok());
  const std::string policy = dir->Join("policy.json");
  REQUIRE(Vouchctl(*dir, {"policy-file", "create", "--from-ima-log",
                          Data("ima-log-sha256"), "-f", policy})
              .code == 0);
  // /data stays allowed by digest and is excluded too; the reject list wins.
  auto j = nlohmann::json::parse(Slurp(policy));
  j["excludes"] = {"/data"};
  j["reject"] = {{"digests", {j["digests"]["/data"][0]}},
                 {"paths", nlohmann::json::array()}};
  Spit(policy, j.dump());
  Result r = Vouchctl(*dir, {"ima", "check", "--log", Data("ima-log-sha256"),
                             "--policy", policy, "--json"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  auto out = nlohmann::json::parse(r.out);
  CHECK(out["verdict"] == "fail");
  REQUIRE(out["failures"].size() == 1);
  CHECK(out["failures"][0]["index"] == 1);
  CHECK(out["failures"][0]["path"] == "/data");
  CHECK(out["failures"][0]["reason"] == "rejected");
  // By path, in the text output.
  j["reject"] = {{"paths", {"/data"}}};
  Spit(policy, j.dump());
  Result p = Vouchctl(*dir, {"ima", "check", "--log", Data("ima-log-sha256"),
                             "--policy", policy});
  CHECK(p.code == 1);
  CHECK(absl::StrContains(p.out,
                          "entry 1 rejected /data: path is on the "
                          "policy's reject list"));
}

TEST_CASE("ima: vouchctl ima check: fail lists entries, errors exit 2",
          "[e2e]") {
  auto dir = TempDir::Create("ima-");
  REQUIRE(dir.ok());
  Result fail = Vouchctl(*dir, {"ima", "check", "--log", Data("ima-log-sha256"),
                                "--policy", Data("policy-sha256")});
  CHECK(fail.code == 1);
  CHECK(absl::StrContains(fail.out, "FAIL"));
  CHECK(absl::StrContains(fail.out, "entry 1 not_in_policy /data"));

  Result missing = Vouchctl(*dir, {"ima", "check", "--log", "/no/such/log",
                                   "--policy", Data("policy-sha256")});
  CHECK(missing.code == 2);
  Spit(dir->Join("bad.json"), R"({"meta": {"version": 1}, "excludes": ["("]})");
  Result badpolicy =
      Vouchctl(*dir, {"ima", "check", "--log", Data("ima-log-sha256"),
                      "--policy", dir->Join("bad.json")});
  CHECK(badpolicy.code == 2);
  CHECK(absl::StrContains(badpolicy.err, "excludes[0]"));
  Spit(dir->Join("bad.log"), "10 zz ima-ng x y\n");
  Result badlog = Vouchctl(*dir, {"ima", "check", "--log", dir->Join("bad.log"),
                                  "--policy", Data("policy-sha256")});
  CHECK(badlog.code == 2);
  CHECK(absl::StrContains(badlog.err, "entry 0"));
  Result usage = Vouchctl(*dir, {"ima", "check", "--log", "x"});
  CHECK(usage.code == 2);

  // A signed policy needs its key, and a bad signature is refused.
  Result unsigned_key =
      Vouchctl(*dir, {"ima", "check", "--log", Data("ima-log-sha256"),
                      "--policy", Data("runtime-policy-test-signed.json")});
  CHECK(unsigned_key.code == 2);
  Result signed_ok =
      Vouchctl(*dir, {"ima", "check", "--log", Data("ima-log-sha256"),
                      "--policy", Data("runtime-policy-test-signed.json"),
                      "--policy-key", Data("runtime-policy-pubkey.pub")});
  CHECK(signed_ok.code == 1);  // Evaluated: /data is not in that policy.
  Result signed_bad =
      Vouchctl(*dir, {"ima", "check", "--log", Data("ima-log-sha256"),
                      "--policy", Data("runtime-policy-test-signed-bad.json"),
                      "--policy-key", Data("runtime-policy-pubkey.pub")});
  CHECK(signed_bad.code == 2);
  // With --policy-key, a policy that is not signed is refused, not loaded.
  Result bare_with_key =
      Vouchctl(*dir, {"ima", "check", "--log", Data("ima-log-sha256"),
                      "--policy", Data("runtime-policy-test.json"),
                      "--policy-key", Data("runtime-policy-pubkey.pub")});
  CHECK(bare_with_key.code == 2);
  CHECK(absl::StrContains(bare_with_key.err, "not a signed (DSSE) policy"));
}

TEST_CASE("ima: vouchctl ima replay prints PCR 10 and the entry count",
          "[e2e]") {
  auto dir = TempDir::Create("ima-");
  REQUIRE(dir.ok());
  Result r = Vouchctl(*dir, {"ima", "replay", "--log", Data("ima-log-sha256"),
                             "--json", "--bank", "sha256"});
  CHECK(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["entries"] == 2);
  CHECK(j["pcr10"]["sha256"] ==
        "8dcd5e7eb63e363377ec19b0d358601ccc19f25a30486f35784c5288dbb91d9d");
  CHECK_FALSE(j["pcr10"].contains("sha1"));
  // A binary log of the same entries replays the same.
  std::vector<ImaRecord> records = {testing::Ng("/a", testing::FileDigest(1)),
                                    testing::Ng("/b", testing::FileDigest(2))};
  Spit(dir->Join("a.log"), testing::WriteLog(records, LogFormat::kAscii));
  Spit(dir->Join("b.log"), testing::WriteLog(records, LogFormat::kBinary));
  Result a = Vouchctl(*dir, {"ima", "replay", "--log", dir->Join("a.log")});
  Result b = Vouchctl(*dir, {"ima", "replay", "--log", dir->Join("b.log")});
  CHECK(a.code == 0);
  CHECK(a.out == b.out);
  CHECK(absl::StrContains(a.out, "entries: 2"));
}

TEST_CASE("ima: vouchctl policy convert and verify-signature", "[e2e]") {
  auto dir = TempDir::Create("ima-");
  REQUIRE(dir.ok());
  Spit(dir->Join("excludes"), "/tmp/.*\n");
  const std::string out = dir->Join("converted.json");
  Result c = Vouchctl(
      *dir, {"policy-file", "convert", "--allowlist", Data("allowlist-sha256"),
             "--excludelist", dir->Join("excludes"), "-f", out});
  INFO(c.err);
  REQUIRE(c.code == 0);
  auto j = nlohmann::json::parse(Slurp(out));
  CHECK(j["digests"]["data"][0] ==
        "96d7fae8adb7286a419a88f78c13d35fb782d63df654b7db56f154765698b754");
  CHECK(j["excludes"][0] == "/tmp/.*");
  // The global -o (output format) still works elsewhere.
  CHECK(Vouchctl(*dir, {"-o", "json", "version"}).code == 0);

  CHECK(Vouchctl(*dir, {"policy-file", "verify-signature", "--policy",
                        Data("runtime-policy-test-signed.json"), "--key",
                        Data("runtime-policy-pubkey.pub")})
            .code == 0);
  CHECK(Vouchctl(*dir, {"policy-file", "verify-signature", "--policy",
                        Data("runtime-policy-test-signed-bad.json"), "--key",
                        Data("runtime-policy-pubkey.pub")})
            .code == 1);
  CHECK(Vouchctl(*dir, {"policy-file", "verify-signature", "--policy",
                        Data("runtime-policy-test-signed.json"), "--key",
                        Data("rsa2048pub.pem")})
            .code == 1);
  CHECK(Vouchctl(*dir, {"policy-file", "verify-signature", "--policy",
                        Data("runtime-policy-test.json"), "--key",
                        Data("runtime-policy-pubkey.pub")})
            .code == 2);
}

}  // namespace
}  // namespace vouch::core::ima
