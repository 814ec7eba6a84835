// The transparency log end to end ([e2e][pg][tpm][translog]): a real
// verifier with a pool log key, a real agent on swtpm, and vouchctl audit
// checking every answer client-side: an attestation's leaf has a valid
// inclusion proof against a fetched signed tree head, two tree heads 1,000
// appends apart are proven consistent, and a tree head signed over a
// different history (a fork) is refused by the client and raised by the
// verifier's watchdog.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
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

TEST_CASE("translog: attestations are logged, proven, and a fork is caught",
          "[e2e][pg][tpm][translog]") {
  World world(/*tpms=*/1);
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

}  // namespace
}  // namespace vouch::authz
