// Signed attestation results end to end: a real verifier with a results
// key, a real agent on swtpm, and Debian's PyJWT (python3-jwt) as the
// independent relying party checking the tokens against the JWKS the
// verifier publishes ([e2e][pg][tpm]).
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "authz/world.h"
#include "sdk/ca.h"

namespace vouch::authz {
namespace {

constexpr char kTenant[] = "tenant-r";
constexpr char kPython[] = "/usr/bin/python3";  // Debian's, with python3-jwt
const std::string kCheck =
    std::string(VOUCH_SOURCE_DIR) + "/tests/e2e/results/pyjwt_check.py";

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// PyJWT's verdict on the token in `token_file`: the claims, or null with
// `refusal` set.
nlohmann::json PyJwt(const std::string& jwks, const std::string& token_file,
                     std::string* refusal) {
  testing::RunResult r =
      testing::RunCapture({kPython, kCheck, "verify", jwks, token_file});
  INFO(r.out << r.err);
  if (r.status.exited && r.status.code == 3) {
    *refusal = r.out;
    return nullptr;
  }
  REQUIRE(r.status.Success());
  return nlohmann::json::parse(r.out);
}

const nlohmann::json& Appraisal(const nlohmann::json& claims,
                                const std::string& agent) {
  REQUIRE(claims.contains("submods"));
  REQUIRE(claims["submods"].contains(agent));
  return claims["submods"][agent];
}

TEST_CASE(
    "results: PyJWT verifies affirming and contraindicated tokens against "
    "the JWKS and refuses expired and foreign ones",
    "[e2e][pg][tpm][results]") {
  absl::StatusOr<TempDir> keys = TempDir::Create("results-keys");
  REQUIRE(keys.ok());
  const std::string key = keys->Join("results.key");
  REQUIRE(sdk::CreateResultsKey(key, keys->Join("results.pub")).ok());
  const std::string other = keys->Join("other.key");
  REQUIRE(sdk::CreateResultsKey(other, keys->Join("other.pub")).ok());
  const std::string result_file = keys->Join("agent-result.jwt");

  World world(/*tpms=*/1,
              {"--verifier-results-key", key, "--verifier-results-ttl", "6s"});
  world.agent_flags = {"--agent-result-file", result_file};
  const std::string admin = world.Client("r-admin", kTenant, Role::kAdmin);
  const std::string viewer = world.Client("r-viewer", kTenant, Role::kViewer);
  AgentOnTpm& a = world.AddAgent(kTenant, admin, "results-policy");
  REQUIRE(Eventually([&] { return world.State(viewer, a) == "pass"; }));

  // The relying party fetches the JWKS once.
  const std::string jwks = keys->Join("jwks.json");
  testing::RunResult r = world.Ctl(viewer, {"results", "jwks", "-f", jwks});
  INFO(r.err);
  REQUIRE(r.status.Success());
  const nlohmann::json set = nlohmann::json::parse(Slurp(jwks));
  REQUIRE(set["keys"].size() == 1);
  CHECK(set["keys"][0]["crv"] == "P-256");

  auto get = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"results", "get", a.id};
    args.insert(args.end(), extra.begin(), extra.end());
    testing::RunResult got = world.Ctl(viewer, args);
    INFO(got.err);
    REQUIRE(got.status.Success());
    return std::string(absl::StripAsciiWhitespace(got.out));
  };
  std::string refusal;

  {  // Affirming while the agent passes; the agent's file verifies.
    const std::string token_file = keys->Join("pass.jwt");
    WriteText(token_file, get({"--nonce", "rp-nonce-0001"}));
    nlohmann::json claims = PyJwt(jwks, token_file, &refusal);
    INFO(refusal);
    REQUIRE(claims.is_object());
    CHECK(claims["eat_profile"] == "tag:github.com,2023:veraison/ear");
    CHECK(claims["sub"] == a.id);
    CHECK(claims["eat_nonce"] == "rp-nonce-0001");
    CHECK(claims["exp"].get<int64_t>() - claims["iat"].get<int64_t>() == 6);
    const nlohmann::json& ap = Appraisal(claims, a.id);
    CHECK(ap["ear.status"] == "affirming");
    CHECK(ap["ear.trustworthiness-vector"]["instance-identity"] == 2);
    CHECK(ap["ear.trustworthiness-vector"]["executables"] == 2);
    // vouchctl's own offline check agrees, and checks the nonce.
    r = world.Ctl(viewer, {"results", "verify", "@" + token_file, "--jwks",
                           jwks, "--nonce", "rp-nonce-0001"});
    INFO(r.err);
    CHECK(r.status.Success());
    r = world.Ctl(viewer, {"results", "verify", "@" + token_file, "--jwks",
                           jwks, "--nonce", "another-nonce"});
    CHECK(r.status.code == 1);

    // The agent writes the token of each verdict: wait for the next one,
    // then check it while it is fresh.
    REQUIRE(Eventually([&] { return !Slurp(result_file).empty(); }));
    const std::string before = Slurp(result_file);
    REQUIRE(Eventually([&] {
      const std::string now = Slurp(result_file);
      return !now.empty() && now != before;
    }));
    claims = PyJwt(jwks, result_file, &refusal);
    INFO(refusal);
    REQUIRE(claims.is_object());
    CHECK(claims["sub"] == a.id);
    CHECK(Appraisal(claims, a.id)["ear.status"] == "affirming");
    struct stat st;
    REQUIRE(stat(result_file.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);
  }

  {  // An expired token and one signed by another key are refused.
    const std::string token_file = keys->Join("old.jwt");
    WriteText(token_file, get({}));
    // Signed with another P-256 key under the pool key's kid.
    testing::RunResult forged =
        testing::RunCapture({kPython, kCheck, "forge", other, token_file});
    INFO(forged.err);
    REQUIRE(forged.status.Success());
    const std::string forged_file = keys->Join("forged.jwt");
    WriteText(forged_file, forged.out);
    CHECK(PyJwt(jwks, forged_file, &refusal).is_null());
    CHECK(absl::StrContains(refusal, "InvalidSignatureError"));
    r = world.Ctl(viewer,
                  {"results", "verify", "@" + forged_file, "--jwks", jwks});
    CHECK(r.status.code == 1);

    std::this_thread::sleep_for(std::chrono::seconds(7));  // ttl is 6 s
    CHECK(PyJwt(jwks, token_file, &refusal).is_null());
    CHECK(absl::StrContains(refusal, "ExpiredSignatureError"));
    r = world.Ctl(viewer,
                  {"results", "verify", "@" + token_file, "--jwks", jwks});
    CHECK(r.status.code == 1);
  }

  {  // Contraindicated after a tampered file.
    const std::string evil = a.dir + "/evil";
    WriteText(evil, "not in the policy");
    r = testing::RunCapture({VOUCHCTL_BIN, "dev", "ima-append", "--tcti",
                             a.tpm->tcti(), "--log", a.ima_log, evil});
    INFO(r.err);
    REQUIRE(r.status.Success());
    REQUIRE(Eventually([&] { return world.State(viewer, a) == "fail"; }));
    const std::string token_file = keys->Join("fail.jwt");
    WriteText(token_file, get({}));
    nlohmann::json claims = PyJwt(jwks, token_file, &refusal);
    INFO(refusal);
    REQUIRE(claims.is_object());
    const nlohmann::json& ap = Appraisal(claims, a.id);
    CHECK(ap["ear.status"] == "contraindicated");
    CHECK(ap["ear.trustworthiness-vector"]["executables"] == 96);
    CHECK(ap["vouch.state"] == "fail");
    // The agent's file follows: the failing verdict's token.
    REQUIRE(Eventually([&] {
      return absl::StrContains(Slurp(result_file), ".") &&
             PyJwt(jwks, result_file, &refusal).is_object() &&
             Appraisal(PyJwt(jwks, result_file, &refusal),
                       a.id)["ear.status"] == "contraindicated";
    }));
  }
}

}  // namespace
}  // namespace vouch::authz
