// Actions on the agent end to end ([e2e][pg][tpm][actions]): a real
// verifier with a results key, real agents on swtpm with an actions
// directory each. An agent's own failure (a tampered file) runs its action
// with the signed event; in a tenant with peer notices on, the other agents
// of the tenant run theirs, an agent of another tenant does not, and an
// agent configured with another key refuses the notice and runs nothing.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "authz/world.h"
#include "common/file.h"
#include "core/ear/ear.h"
#include "sdk/ca.h"

namespace vouch::authz {
namespace {

constexpr char kTenantA[] = "tenant-act-a";
constexpr char kTenantB[] = "tenant-act-b";

// An actions directory whose one action appends its stdin, one line per
// event, to `out`.
std::string ActionsDir(const TempDir& root, const std::string& name,
                       const std::string& out) {
  const std::string dir = root.Join(name);
  REQUIRE(mkdir(dir.c_str(), 0700) == 0);
  const std::string script = dir + "/10-record";
  std::ofstream(script) << "#!/bin/sh\ncat >> " << out << "\necho >> " << out
                        << "\n";
  REQUIRE(chmod(script.c_str(), 0700) == 0);
  return dir;
}

// The events an action recorded, one JSON object a line.
std::vector<nlohmann::json> Events(const std::string& out) {
  std::vector<nlohmann::json> events;
  for (absl::string_view line : absl::StrSplit(Slurp(out), '\n')) {
    if (line.empty()) continue;
    events.push_back(nlohmann::json::parse(line, nullptr, false));
  }
  return events;
}

// The first event of `kind` about `subject` the action recorded, or null.
nlohmann::json FindEvent(const std::string& out, const std::string& kind,
                         const std::string& subject) {
  for (const nlohmann::json& e : Events(out)) {
    if (e.is_object() && e.value("vouch.kind", "") == kind &&
        e.value("sub", "") == subject) {
      return e;
    }
  }
  return nullptr;
}

TEST_CASE(
    "actions: own and peer failures run the agents' actions, but not "
    "another tenant's agent's or one under a foreign key",
    "[e2e][pg][tpm][actions]") {
  absl::StatusOr<TempDir> root = TempDir::Create("actions-e2e");
  REQUIRE(root.ok());
  const std::string key = root->Join("results.key");
  REQUIRE(sdk::CreateResultsKey(key, root->Join("results.pub")).ok());
  const std::string other = root->Join("other.key");
  REQUIRE(sdk::CreateResultsKey(other, root->Join("other.pub")).ok());

  World world(/*tpms=*/4, {"--verifier-results-key", key,
                           "--admission-watch-poll", "100ms"});
  const std::string admin_a =
      world.Client("act-admin-a", kTenantA, Role::kAdmin);
  const std::string admin_b =
      world.Client("act-admin-b", kTenantB, Role::kAdmin);
  const std::string viewer_a =
      world.Client("act-viewer-a", kTenantA, Role::kViewer);

  // The pool's JWKS, and one of a key the pool does not use.
  const std::string jwks = root->Join("jwks.json");
  testing::RunResult r = world.Ctl(admin_a, {"results", "jwks", "-f", jwks});
  INFO(r.err);
  REQUIRE(r.status.Success());
  // The foreign JWKS: the other key's public half.
  const std::string foreign_jwks = root->Join("foreign.json");
  {
    absl::StatusOr<std::string> pub =
        ReadFileUpTo(root->Join("other.pub"), 1 << 16);
    REQUIRE(pub.ok());
    absl::StatusOr<core::ear::PublicKey> k = core::ear::PublicKeyFromPem(*pub);
    REQUIRE(k.ok());
    std::ofstream(foreign_jwks) << core::ear::KeySet({*k}).ToJwks();
  }

  // Tenant A opts in to peer notices; B keeps the default (off).
  r = world.Ctl(admin_a, {"tenants", "set", "--peer-notices", "on"});
  INFO(r.out << r.err);
  REQUIRE(r.status.Success());
  CHECK(absl::StrContains(r.out, "peer-notices  on"));
  r = world.Ctl(admin_b, {"-o", "json", "tenants", "get"});
  INFO(r.out << r.err);
  REQUIRE(r.status.Success());
  CHECK(nlohmann::json::parse(r.out)["peer_notices"] == false);
  // A viewer may read the settings but not change them.
  r = world.Ctl(viewer_a, {"tenants", "set", "--peer-notices", "off"});
  CHECK_FALSE(r.status.Success());

  auto add = [&](const char* tenant, const std::string& admin,
                 const std::string& name, const std::string& keys) {
    const std::string out = root->Join(name + ".events");
    world.agent_flags = {
        "--agent-results-jwks",   keys,
        "--agent-actions-dir",    ActionsDir(*root, name + ".d", out),
        "--agent-action-timeout", "10s"};
    AgentOnTpm& a = world.AddAgent(tenant, admin, name + "-policy");
    return std::make_pair(&a, out);
  };
  auto [failing, failing_out] = add(kTenantA, admin_a, "failing", jwks);
  auto [peer, peer_out] = add(kTenantA, admin_a, "peer", jwks);
  auto [foreign, foreign_out] = add(kTenantA, admin_a, "foreign", foreign_jwks);
  auto [other_tenant, other_out] = add(kTenantB, admin_b, "other", jwks);
  for (AgentOnTpm* a : {failing, peer, foreign}) {
    REQUIRE(Eventually([&] { return world.State(admin_a, *a) == "pass"; }));
  }
  REQUIRE(Eventually(
      [&] { return world.State(admin_b, *other_tenant) == "pass"; }));
  // A tampered file: the failing agent's own failure.
  const std::string evil = failing->dir + "/evil";
  std::ofstream(evil) << "not in the policy";
  r = testing::RunCapture({VOUCHCTL_BIN, "dev", "ima-append", "--tcti",
                           failing->tpm->tcti(), "--log", failing->ima_log,
                           evil});
  INFO(r.err);
  REQUIRE(r.status.Success());
  REQUIRE(Eventually([&] { return world.State(admin_a, *failing) == "fail"; }));

  // Its own action ran with the signed event. (Only events about it are
  // looked at: on a loaded machine an agent may time out once while the
  // others start, which is told too.)
  nlohmann::json own;
  REQUIRE(Eventually([&] {
    own = FindEvent(failing_out, "own-failure", failing->id);
    return !own.is_null();
  }));
  CHECK(own["aud"] == failing->id);
  CHECK(own["vouch.tenant"] == kTenantA);
  CHECK(own["vouch.state"] == "fail");
  CHECK(own["vouch.previous-state"] == "pass");
  CHECK(own["exp"].get<int64_t>() > own["iat"].get<int64_t>());
  CHECK_FALSE(own.value("jti", "").empty());
  // The peer of the same tenant was told, addressed to it.
  nlohmann::json told;
  REQUIRE(Eventually([&] {
    told = FindEvent(peer_out, "peer-failure", failing->id);
    return !told.is_null();
  }));
  CHECK(told["aud"] == peer->id);
  CHECK(told["vouch.state"] == "fail");
  CHECK(told["jti"] == own["jti"]);
  // The agent holding another key refused the notice and ran nothing.
  REQUIRE(Eventually([&] {
    return absl::StrContains(Slurp(foreign->log()), "action notice refused");
  }));
  CHECK(Events(foreign_out).empty());
  // Another tenant's agent was not told; a verdict of its own later, still
  // nothing about the failed agent.
  const int seen = other_tenant->Verdicts();
  REQUIRE(Eventually([&] { return other_tenant->Verdicts() >= seen + 1; }));
  CHECK(FindEvent(other_out, "peer-failure", failing->id).is_null());
  CHECK(FindEvent(other_out, "own-failure", failing->id).is_null());
}

}  // namespace
}  // namespace vouch::authz
