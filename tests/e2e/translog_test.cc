// The transparency log end to end ([e2e][pg][tpm][translog]): a real
// verifier with a pool log key, a real agent on swtpm, and vouchctl audit
// checking every answer client-side: an attestation's leaf has a valid
// inclusion proof against a fetched signed tree head, two tree heads 1,000
// appends apart are proven consistent, a record whose leaf the database
// loses is reported by the verifier that committed it, and a tree head
// signed over a different history (a fork) is refused by the client and
// raised by the verifier's watchdog. [e2e][audit]: a rebind (delete and
// re-register with a new AIK) is logged bind, unbind, bind, and audit bundles
// from before and after it verify offline with their own binding's proof.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "authz/world.h"
#include "core/translog/merkle.h"
#include "core/translog/tree_head.h"
#include "store/pg_connection.h"

namespace vouch::authz {
namespace {

namespace tl = core::translog;

constexpr char kTenant[] = "tenant-log";

std::unique_ptr<store::PgConnection> Connect(PgCluster& pg) {
  auto db = store::PgConnection::Connect(pg.conninfo());
  REQUIRE(db.ok());
  return *std::move(db);
}

std::string One(store::PgConnection& db, const std::string& sql) {
  auto rows = db.Query(sql, {});
  INFO(rows.status().message());
  REQUIRE(rows.ok());
  REQUIRE(!rows->rows.empty());
  REQUIRE(rows->rows[0][0].has_value());
  return *rows->rows[0][0];
}

uint64_t Size(store::PgConnection& db) {
  return std::stoull(One(db, "SELECT tree_size FROM translog_sequencer"));
}

TEST_CASE(
    "translog: attestations are logged, proven, a record lost on its way to "
    "the log and a fork are caught",
    "[e2e][pg][tpm][translog]") {
  // A short bound: a committed record must reach the tree within 3 s.
  World world(/*tpms=*/1, {"--translog-bound", "3s"});
  const std::string admin = world.Client("l-admin", kTenant, Role::kAdmin);
  const std::string viewer = world.Client("l-viewer", kTenant, Role::kViewer);
  AgentOnTpm& a = world.AddAgent(kTenant, admin, "log-policy", "5s");
  REQUIRE(Eventually([&] { return world.State(viewer, a) == "pass"; }));
  auto db = Connect(world.pg());

  // The log key, written by vouchctl, is the verifier's.
  const std::string pem = world.dir().Join("pool-log.pem");
  testing::RunResult r = world.Ctl(viewer, {"audit", "log-key", "-f", pem});
  INFO(r.out << r.err);
  REQUIRE(r.status.Success());
  auto priv = tl::LogKey::FromPrivatePem(Slurp(world.dir().Join("log.key")));
  REQUIRE(priv.ok());
  auto pub = tl::LogKey::FromPublicPem(Slurp(pem));
  REQUIRE(pub.ok());
  CHECK(pub->log_id() == priv->log_id());

  // An attestation record of the agent is in the log: prove its leaf.
  std::string leaf_hex;
  REQUIRE(Eventually([&] {
    auto rows = db->Query(
        "SELECT encode(leaf_hash, 'hex') FROM translog_leaves WHERE "
        "agent_id = $1 AND kind = 3 ORDER BY leaf_index LIMIT 1",
        {a.id});
    if (!rows.ok() || rows->rows.empty()) return false;
    leaf_hex = *rows->rows[0][0];
    return true;
  }));
  r = world.Ctl(viewer, {"-o", "json", "audit", "prove", "--leaf", leaf_hex,
                         "--log-key", pem});
  INFO(r.out << r.err);
  REQUIRE(r.status.Success());
  nlohmann::json proved = nlohmann::json::parse(r.out);
  CHECK(proved["included"] == true);
  CHECK(proved["leaf_hash"] == leaf_hex);
  // The record's leaf is its canonical encoding: kind 3, this agent.
  const std::string leaf =
      One(*db, absl::StrCat("SELECT encode(leaf, 'hex') FROM translog_leaves "
                            "WHERE leaf_hash = decode('",
                            leaf_hex, "', 'hex')"));
  CHECK(leaf.substr(0, 2) == "03");
  CHECK(absl::StrContains(absl::HexStringToBytes(leaf), a.id));

  // Two tree heads 1,000 appends apart are consistent.
  const uint64_t before = Size(*db);
  REQUIRE(before > 0);
  REQUIRE(db->Exec("INSERT INTO translog_queue (kind, agent_id, leaf) "
                   "SELECT 3, 'bulk', convert_to('bulk-' || i, 'UTF8') "
                   "FROM generate_series(1, 1000) AS i",
                   {})
              .ok());
  REQUIRE(Eventually([&] { return Size(*db) >= before + 1000; }));
  const uint64_t after = Size(*db);
  r = world.Ctl(viewer, {"-o", "json", "audit", "consistency", "--from",
                         absl::StrCat(before), "--to", absl::StrCat(after),
                         "--log-key", pem});
  INFO(r.out << r.err);
  REQUIRE(r.status.Success());
  CHECK(nlohmann::json::parse(r.out)["consistent"] == true);
  r = world.Ctl(viewer, {"audit", "tree-head", "--log-key", pem});
  CHECK(r.status.Success());

  // The verifier has found every record it committed in the tree: no
  // alarm so far (its records are older than the bound by now).
  CHECK_FALSE(absl::StrContains(Slurp(world.verifier().log()), "translog: "));
  // A record lost on its way to the log: the database drops the agent's
  // queued leaves (the verdicts still commit). The queue stays empty, so
  // only the verifier's check of its own records can see it.
  REQUIRE(db->Exec("CREATE FUNCTION lose_leaf() RETURNS trigger LANGUAGE "
                   "plpgsql AS 'BEGIN RETURN NULL; END'",
                   {})
              .ok());
  REQUIRE(db->Exec("CREATE TRIGGER lose_leaf BEFORE INSERT ON translog_queue "
                   "FOR EACH ROW WHEN (NEW.kind = 3) EXECUTE FUNCTION "
                   "lose_leaf()",
                   {})
              .ok());
  REQUIRE(Eventually([&] {
    return absl::StrContains(
        Slurp(world.verifier().log()),
        "a record this verifier committed is missing from the log");
  }));
  REQUIRE(db->Exec("DROP TRIGGER lose_leaf ON translog_queue", {}).ok());

  // A fork: the newest head re-signed (with the pool key itself) over a
  // different history. Stop the agent first, so the forged head stays the
  // newest until the watchdog reads it.
  a.process.reset();
  REQUIRE(Eventually(
      [&] { return One(*db, "SELECT count(*) FROM translog_queue") == "0"; }));
  const uint64_t size = Size(*db);
  tl::TreeHead forged;
  forged.tree_size = size;
  forged.timestamp_ms = 1;
  forged.root = tl::LeafHash("another history");
  auto signed_forged = priv->Sign(forged);
  REQUIRE(signed_forged.ok());
  REQUIRE(db->Exec("UPDATE translog_heads SET root = $1::bytea, signed = "
                   "$2::bytea WHERE tree_size = $3::bigint",
                   {store::ToBytea(tl::HashBytes(forged.root)),
                    store::ToBytea(*signed_forged), absl::StrCat(size)})
              .ok());
  // The client: the forged head's signature verifies, the proof does not.
  r = world.Ctl(viewer, {"audit", "consistency", "--from", absl::StrCat(before),
                         "--to", absl::StrCat(size), "--log-key", pem});
  INFO(r.out << r.err);
  CHECK(r.status.code == 1);
  CHECK(absl::StrContains(r.err, "refused: consistency proof"));
  // The verifier's watchdog says so loudly.
  REQUIRE(Eventually([&] {
    return absl::StrContains(Slurp(world.verifier().log()),
                             "inconsistent with an earlier one");
  }));
}

// The registrar's binding leaves of the agent, kinds in log order.
std::string BindingKinds(store::PgConnection& db, const std::string& agent) {
  auto rows = db.Query(
      "SELECT string_agg(kind::text, ',' ORDER BY leaf_index) FROM "
      "translog_leaves WHERE agent_id = $1 AND kind IN (1, 2)",
      {agent});
  if (!rows.ok() || rows->rows.empty() || !rows->rows[0][0]) return "";
  return *rows->rows[0][0];
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

TEST_CASE(
    "audit: a rebind is logged as bind then unbind then bind and bundles "
    "from before and after it verify offline against their own binding "
    "(a swapped binding fails)",
    "[e2e][pg][tpm][audit]") {
  World world(/*tpms=*/1);
  const std::string admin = world.Client("r-admin", kTenant, Role::kAdmin);
  const std::string viewer = world.Client("r-viewer", kTenant, Role::kViewer);
  AgentOnTpm& a = world.AddAgent(kTenant, admin, "rebind-policy", "5s");
  REQUIRE(Eventually([&] { return world.State(viewer, a) == "pass"; }));
  auto db = Connect(world.pg());
  const std::string pem = world.dir().Join("pool-log.pem");
  REQUIRE(world.Ctl(viewer, {"audit", "log-key", "-f", pem}).status.Success());

  auto export_at = [&](absl::Time at, const std::string& file) {
    testing::RunResult r = world.Ctl(
        viewer,
        {"audit", "export", "--agent", a.id, "--at", Rfc3339(at), "-f", file});
    INFO(r.out << r.err);
    REQUIRE(r.status.Success());
    return nlohmann::json::parse(Slurp(file));
  };
  auto verify = [&](const std::string& file) {
    return world.Ctl(viewer,
                     {"-o", "json", "audit", "verify", file, "--log-key", pem});
  };

  // 1. Before the rebind: a passing record of the first AIK.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const absl::Time t1 = absl::Now();
  const std::string b0 = world.dir().Join("before-rebind.bundle");
  const nlohmann::json at_the_time = export_at(t1, b0);
  REQUIRE(at_the_time.contains("log"));

  // 2. The registrar lifecycle: unenroll, delete the registration, and the
  //    agent registers again with a new AIK (a fresh state directory).
  a.process.reset();
  testing::RunResult r = world.Ctl(admin, {"agents", "delete", a.id});
  INFO(r.err);
  REQUIRE(r.status.Success());
  r = testing::RunCapture({VOUCHCTL_BIN, "--registrar",
                           world.registrar().address(), "--tls-dir", admin,
                           "registrar", "delete", a.id});
  INFO(r.out << r.err);
  REQUIRE(r.status.Success());
  std::filesystem::remove_all(a.dir + "/state");
  std::filesystem::create_directory(a.dir + "/state");
  world.StartAgent(a);
  REQUIRE(Eventually([&] {
    return world
        .Ctl(admin, {"agents", "enroll", a.id, "--runtime-policy",
                     "rebind-policy", "--interval", "5s"})
        .status.Success();
  }));
  REQUIRE(Eventually([&] { return world.State(viewer, a) == "pass"; }));

  // 3. The log shows bind, unbind, bind, in that order.
  REQUIRE(Eventually([&] { return BindingKinds(*db, a.id) == "1,2,1"; }));

  // 4. After the rebind: a passing record of the new AIK.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const absl::Time t2 = absl::Now();
  const std::string b2 = world.dir().Join("after.bundle");
  const nlohmann::json after = export_at(t2, b2);
  REQUIRE(after.contains("log"));
  // The moment before the rebind, exported now: the old AIK and its
  // binding, as when it was exported at the time.
  const std::string b1 = world.dir().Join("before.bundle");
  const nlohmann::json before = export_at(t1, b1);
  REQUIRE(before.contains("log"));
  CHECK(before["registration"] == at_the_time["registration"]);
  CHECK(before["log"]["registration_leaf"] ==
        at_the_time["log"]["registration_leaf"]);
  CHECK(before["registration"]["aik_name"] !=
        after["registration"]["aik_name"]);
  // proto3 JSON: uint64 as a string, omitted when 0 (the first leaf).
  auto binding_index = [](const nlohmann::json& b) {
    return std::stoull(
        b["log"].value("registration_leaf_index", std::string("0")));
  };
  CHECK(binding_index(before) < binding_index(after));

  // 5. Both verify offline, each with its own binding's proof.
  for (const std::string& file : {b0, b1, b2}) {
    r = verify(file);
    INFO(file << ": " << r.out << r.err);
    CHECK(r.status.code == 0);
    nlohmann::json j = nlohmann::json::parse(r.out);
    CHECK(j["state"] == "pass");
    CHECK(j["log"] == "checked");
  }
  // The binding leaves are provable with `audit prove` too.
  std::string binding_leaf;
  REQUIRE(absl::Base64Unescape(
      after["log"]["registration_leaf"].get<std::string>(), &binding_leaf));
  const std::string binding_hash = absl::BytesToHexString(
      core::translog::HashBytes(core::translog::LeafHash(binding_leaf)));
  r = world.Ctl(viewer, {"-o", "json", "audit", "prove", "--leaf", binding_hash,
                         "--log-key", pem});
  INFO(r.out << r.err);
  REQUIRE(r.status.Success());
  CHECK(nlohmann::json::parse(r.out)["included"] == true);

  // 6. The pre-rebind bundle with the new binding's leaf and proof (all
  //    valid in the log, but the binding of another AIK) does not verify.
  nlohmann::json swapped = before;
  for (const char* field :
       {"registration_leaf_index", "registration_leaf", "registration_path"}) {
    swapped["log"].erase(field);
    if (after["log"].contains(field))
      swapped["log"][field] = after["log"][field];
  }
  const std::string bad = world.dir().Join("swapped.bundle");
  std::ofstream(bad) << swapped.dump();
  r = verify(bad);
  INFO(r.out << r.err);
  CHECK(r.status.code == 2);
  nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["state"] == "invalid");
  CHECK(j["part"] == "log.registration_leaf");
  // Without the log key the same bundle still passes: only the log ties
  // the AIK to the EK offline.
  r = world.Ctl(viewer, {"audit", "verify", bad});
  CHECK(r.status.code == 0);
}

}  // namespace
}  // namespace vouch::authz
