// The registrar's store on a real PostgreSQL: the registration lifecycle
// (an EK reserved only by an activated registration, pending registrations
// that block nobody and expire, another TPM under an activated agent_id,
// no delete while enrolled), the transparency-log leaves of activations and
// deletes, and migration 0005 on a database with data.
#include "store/registrar_store.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/translog/tree_head.h"
#include "harness/pg_cluster.h"
#include "store/migrate.h"
#include "store/pg_pool.h"
#include "store/pg_verifier_store.h"

namespace vouch {
namespace {

using store::ActivateOutcome;
using testing::PgCluster;

store::Registration Reg(const std::string& id, const std::string& tenant,
                        char ek) {
  store::Registration r;
  r.agent_id = id;
  r.tenant = tenant;
  r.ek_public = std::string(1, ek);
  r.ek_sha256 = std::string(32, ek);
  r.ek_certificate = "cert";
  r.agent_version = "test";
  return r;
}

store::PendingChallenge Challenge(const std::string& secret,
                                  const std::string& aik_name) {
  return {secret, "aik-public-" + aik_name, aik_name, absl::Minutes(2)};
}

// Activate with the proof of `secret`.
absl::StatusOr<ActivateOutcome> Activate(store::PgRegistrarStore& s,
                                         const std::string& tenant,
                                         const std::string& id,
                                         const std::string& secret) {
  return s.Activate(tenant, id,
                    [&](const std::string& got, const std::string&) {
                      return got == secret;
                    });
}

struct Db {
  std::unique_ptr<PgCluster> pg;
  std::unique_ptr<store::PgPool> pool;
  Db() {
    absl::StatusOr<std::unique_ptr<PgCluster>> started = PgCluster::Start();
    REQUIRE(started.ok());
    pg = *std::move(started);
    pool = std::make_unique<store::PgPool>(pg->conninfo(), 4);
  }
  void Exec(const std::string& sql, std::vector<store::PgParam> params = {}) {
    absl::StatusOr<store::PgPool::Lease> db = pool->Acquire();
    REQUIRE(db.ok());
    absl::StatusOr<int64_t> n = (*db)->Exec(sql, params);
    INFO(n.status().message());
    REQUIRE(n.ok());
  }
};

store::Enrollment Enrollment(const std::string& tenant, const std::string& id) {
  store::Enrollment e;
  e.tenant = tenant;
  e.agent_id = id;
  e.interval = absl::Seconds(5);
  return e;
}

TEST_CASE("registrar store: an EK is reserved at Activate, not at Register",
          "[pg][registrar][store]") {
  Db db;
  REQUIRE(store::PrepareDatabase(*db.pool, absl::Seconds(30)).ok());
  store::PgRegistrarStore s(db.pool.get(), absl::Minutes(10));
  store::PgVerifierStore verifier(db.pool.get(), 3);

  // A squatter in tenant B registers tenant A's machine's EK (public key
  // and certificate are public) under its own agent_id and never activates.
  REQUIRE(s.Register(Reg("squat", "B", 'e'), Challenge("s0", "q")).ok());
  // The real machine registers and activates in tenant A all the same.
  REQUIRE(s.Register(Reg("node", "A", 'e'), Challenge("s1", "k1")).ok());
  CHECK(s.Get("A", "node")->pending_aik_name == "k1");
  CHECK(Activate(s, "A", "node", "wrong").value() ==
        ActivateOutcome::kBadProof);
  CHECK(Activate(s, "A", "node", "s1").value() ==
        ActivateOutcome::kNoChallenge);  // One attempt per challenge.
  REQUIRE(s.Register(Reg("node", "A", 'e'), Challenge("s2", "k1")).ok());
  REQUIRE(Activate(s, "A", "node", "s2").value() ==
          ActivateOutcome::kActivated);
  absl::StatusOr<store::Registration> node = s.Get("A", "node");
  REQUIRE(node.ok());
  CHECK(node->aik_name == "k1");
  CHECK(node->activated_at.has_value());
  // The squatter's registration can never activate now: it is gone.
  CHECK(absl::IsNotFound(s.Get("B", "squat").status()));
  // Now the EK is reserved: no other agent_id, in any tenant, may take it.
  CHECK(absl::IsAlreadyExists(
      s.Register(Reg("squat", "B", 'e'), Challenge("s3", "q")).status()));
  CHECK(absl::IsAlreadyExists(
      s.Register(Reg("other", "A", 'e'), Challenge("s3", "q")).status()));
  // Nor the activated agent_id from another tenant.
  CHECK(absl::IsAlreadyExists(
      s.Register(Reg("node", "B", 'f'), Challenge("s3", "q")).status()));

  // A second TPM registering the same agent_id starts pending: the
  // activated registration is untouched and the other TPM's Activate is
  // refused.
  REQUIRE(s.Register(Reg("node", "A", 'f'), Challenge("s4", "k2")).ok());
  node = s.Get("A", "node");
  REQUIRE(node.ok());
  CHECK(node->ek_sha256 == std::string(32, 'e'));
  CHECK(node->aik_name == "k1");
  CHECK(node->pending_aik_name == "k2");
  CHECK(Activate(s, "A", "node", "s4").value() == ActivateOutcome::kOtherTpm);
  node = s.Get("A", "node");
  CHECK(node->aik_name == "k1");
  CHECK(node->pending_aik_name.empty());

  // The same TPM again (a new AIK): activated, it replaces the old AIK.
  REQUIRE(s.Register(Reg("node", "A", 'e'), Challenge("s5", "k3")).ok());
  CHECK(s.Get("A", "node")->aik_name == "k1");  // Until Activate.
  REQUIRE(Activate(s, "A", "node", "s5").value() ==
          ActivateOutcome::kActivated);
  CHECK(s.Get("A", "node")->aik_name == "k3");

  // No delete while enrolled; after unenrolling, the delete goes through.
  REQUIRE(verifier.Enroll(Enrollment("A", "node")).ok());
  absl::Status refused = s.Delete("A", "node");
  CHECK(absl::IsFailedPrecondition(refused));
  CHECK(refused.message().find("unenroll") != absl::string_view::npos);
  CHECK(s.Get("A", "node").ok());
  CHECK(absl::IsNotFound(s.Delete("B", "node")));
  REQUIRE(verifier.Unenroll("A", "node").ok());
  REQUIRE(s.Delete("A", "node").ok());
  CHECK(absl::IsNotFound(s.Get("A", "node").status()));
  // The EK is free again.
  CHECK(s.Register(Reg("other", "A", 'e'), Challenge("s6", "k4")).ok());

  // The database refuses the delete as well (the foreign key), whatever
  // checked before.
  REQUIRE(Activate(s, "A", "other", "s6").value() ==
          ActivateOutcome::kActivated);
  REQUIRE(verifier.Enroll(Enrollment("A", "other")).ok());
  absl::StatusOr<store::PgPool::Lease> conn = db.pool->Acquire();
  REQUIRE(conn.ok());
  CHECK(absl::IsFailedPrecondition(
      (*conn)
          ->Exec("DELETE FROM registrations WHERE agent_id = 'other'")
          .status()));
}

TEST_CASE("registrar store: unactivated registrations expire",
          "[pg][registrar][store]") {
  Db db;
  REQUIRE(store::PrepareDatabase(*db.pool, absl::Seconds(30)).ok());
  store::PgRegistrarStore s(db.pool.get(), absl::Minutes(10));
  REQUIRE(s.Register(Reg("late", "A", 'a'), Challenge("s1", "k1")).ok());
  REQUIRE(s.Register(Reg("live", "A", 'b'), Challenge("s2", "k2")).ok());
  REQUIRE(s.Register(Reg("done", "A", 'c'), Challenge("s3", "k3")).ok());
  REQUIRE(Activate(s, "A", "done", "s3").value() ==
          ActivateOutcome::kActivated);
  CHECK(s.List("A", "", std::nullopt, 10)->size() == 3);
  CHECK(s.DeleteExpired().value() == 0);
  // Eleven minutes later for "late" and "done" (the database's clock).
  db.Exec(
      "UPDATE registrations SET registered_at = now() - interval '11 "
      "minutes' WHERE agent_id IN ('late', 'done')");
  // Expired reads as gone at once, and its challenge no longer activates.
  CHECK(absl::IsNotFound(s.Get("A", "late").status()));
  CHECK(s.List("A", "", std::nullopt, 10)->size() == 2);
  CHECK(s.List("A", "", false, 10)->size() == 1);
  CHECK(Activate(s, "A", "late", "s1").value() == ActivateOutcome::kExpired);
  // The cleanup deletes only the expired pending one.
  CHECK(s.DeleteExpired().value() == 1);
  CHECK(s.DeleteExpired().value() == 0);
  CHECK(s.Get("A", "live").ok());
  CHECK(s.Get("A", "done").ok());
  // Registering again starts a fresh pending registration.
  REQUIRE(s.Register(Reg("late", "A", 'a'), Challenge("s4", "k1")).ok());
  CHECK(Activate(s, "A", "late", "s4").value() == ActivateOutcome::kActivated);
}

TEST_CASE(
    "registrar store: activations and deletes of activated registrations "
    "queue transparency-log leaves in their transaction",
    "[pg][registrar][store][translog]") {
  namespace tl = core::translog;
  Db db;
  REQUIRE(store::PrepareDatabase(*db.pool, absl::Seconds(30)).ok());
  store::PgRegistrarStore s(db.pool.get(), absl::Minutes(10));
  auto queued = [&] {
    absl::StatusOr<store::PgPool::Lease> c = db.pool->Acquire();
    REQUIRE(c.ok());
    absl::StatusOr<store::PgRows> rows = (*c)->Query(
        "SELECT kind, agent_id, leaf FROM translog_queue ORDER BY seq");
    REQUIRE(rows.ok());
    std::vector<std::pair<int, std::string>> out;
    for (const auto& r : rows->rows) {
      absl::StatusOr<std::string> leaf = store::FromBytea(r[2].value_or(""));
      REQUIRE(leaf.ok());
      CHECK(r[1].value_or("") == "node");
      out.emplace_back(std::stoi(r[0].value_or("0")), *leaf);
    }
    return out;
  };
  // Register alone logs nothing; a refused proof logs nothing.
  REQUIRE(s.Register(Reg("node", "A", 'e'), Challenge("s1", "k1")).ok());
  CHECK(Activate(s, "A", "node", "wrong").value() ==
        ActivateOutcome::kBadProof);
  CHECK(queued().empty());
  REQUIRE(s.Register(Reg("node", "A", 'e'), Challenge("s2", "k1")).ok());
  REQUIRE(Activate(s, "A", "node", "s2").value() ==
          ActivateOutcome::kActivated);
  std::vector<std::pair<int, std::string>> leaves = queued();
  REQUIRE(leaves.size() == 1);
  CHECK(leaves[0].first == static_cast<int>(tl::LeafKind::kBinding));
  const std::string bind =
      tl::BindingLeafPrefix(tl::LeafKind::kBinding, "node", "A",
                            std::string(32, 'e'), tl::BindingAikDigest("k1"));
  CHECK(tl::LeafWithoutTime(leaves[0].second).value() == bind);
  // Deleted: the removal of the same binding; re-registered with a new
  // AIK: a new binding.
  REQUIRE(s.Delete("A", "node").ok());
  REQUIRE(s.Register(Reg("node", "A", 'e'), Challenge("s3", "k2")).ok());
  REQUIRE(Activate(s, "A", "node", "s3").value() ==
          ActivateOutcome::kActivated);
  leaves = queued();
  REQUIRE(leaves.size() == 3);
  CHECK(leaves[1].first == static_cast<int>(tl::LeafKind::kRemoval));
  CHECK(tl::LeafWithoutTime(leaves[1].second).value() ==
        tl::BindingLeafPrefix(tl::LeafKind::kRemoval, "node", "A",
                              std::string(32, 'e'),
                              tl::BindingAikDigest("k1")));
  CHECK(leaves[2].first == static_cast<int>(tl::LeafKind::kBinding));
  CHECK(tl::LeafWithoutTime(leaves[2].second).value() ==
        tl::BindingLeafPrefix(tl::LeafKind::kBinding, "node", "A",
                              std::string(32, 'e'),
                              tl::BindingAikDigest("k2")));
  // Deleted again: the removal of k2's binding. A pending registration
  // that never activated had no binding: its delete logs nothing.
  REQUIRE(s.Delete("A", "node").ok());
  CHECK(queued().size() == 4);
  REQUIRE(s.Register(Reg("node", "A", 'e'), Challenge("s4", "k3")).ok());
  REQUIRE(s.Delete("A", "node").ok());
  CHECK(queued().size() == 4);
}

TEST_CASE(
    "registrar store: the prune rule removes agents not seen for long, "
    "unenrolling them and logging the removal, and keeps the rest",
    "[pg][registrar][store]") {
  Db db;
  REQUIRE(store::PrepareDatabase(*db.pool, absl::Seconds(30)).ok());
  store::PgRegistrarStore s(db.pool.get(), absl::Minutes(10));
  store::PgVerifierStore verifier(db.pool.get(), 3);
  auto count = [&](const std::string& sql) {
    absl::StatusOr<store::PgPool::Lease> c = db.pool->Acquire();
    REQUIRE(c.ok());
    absl::StatusOr<store::PgRows> rows = (*c)->Query(sql);
    REQUIRE(rows.ok());
    return std::stoi(rows->rows.at(0).at(0).value_or("-1"));
  };
  char ek = 'a';
  for (const std::string id :
       {"gone-enrolled", "gone-idle", "seen-verdict", "seen-new"}) {
    REQUIRE(s.Register(Reg(id, "A", ek), Challenge("s-" + id, id)).ok());
    REQUIRE(Activate(s, "A", id, "s-" + id).value() ==
            ActivateOutcome::kActivated);
    ++ek;
  }
  REQUIRE(verifier.Enroll(Enrollment("A", "gone-enrolled")).ok());
  REQUIRE(verifier.Enroll(Enrollment("A", "seen-verdict")).ok());
  REQUIRE(s.Register(Reg("pending", "A", 'z'), Challenge("s-p", "p")).ok());
  // Forty days ago by the database's clock; one of them got a verdict an
  // hour ago, another one 35 days ago.
  db.Exec(
      "UPDATE registrations SET registered_at = now() - interval '40 days', "
      "activated_at = CASE WHEN activated_at IS NULL THEN NULL ELSE now() - "
      "interval '40 days' END WHERE agent_id <> 'seen-new'");
  db.Exec(
      "UPDATE agent_state SET last_verdict_at = now() - interval '35 days' "
      "WHERE agent_id = 'gone-enrolled'");
  db.Exec(
      "UPDATE agent_state SET last_verdict_at = now() - interval '1 hour' "
      "WHERE agent_id = 'seen-verdict'");
  const int leaves_before = count("SELECT count(*) FROM translog_queue");

  // Off by a day: nothing goes.
  CHECK(s.PruneUnseen(absl::Hours(24 * 41), 100).value().empty());
  // At most `limit` per call, in agent_id order.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> first =
      s.PruneUnseen(absl::Hours(24 * 30), 1);
  REQUIRE(first.ok());
  REQUIRE(first->size() == 1);
  CHECK(first->front() ==
        std::make_pair(std::string("A"), std::string("gone-enrolled")));
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> rest =
      s.PruneUnseen(absl::Hours(24 * 30), 100);
  REQUIRE(rest.ok());
  REQUIRE(rest->size() == 1);
  CHECK(rest->front().second == "gone-idle");
  CHECK(s.PruneUnseen(absl::Hours(24 * 30), 100).value().empty());

  CHECK(absl::IsNotFound(s.Get("A", "gone-enrolled").status()));
  CHECK(absl::IsNotFound(s.Get("A", "gone-idle").status()));
  CHECK(absl::IsNotFound(verifier.GetAgent("A", "gone-enrolled").status()));
  CHECK(count("SELECT count(*) FROM agent_events WHERE agent_id = "
              "'gone-enrolled' AND state = 'unenrolled'") == 1);
  // Each removal logged, as a delete logs it.
  CHECK(count("SELECT count(*) FROM translog_queue") == leaves_before + 2);
  // What was seen lately, and a pending registration (pending_ttl's), stay.
  CHECK(s.Get("A", "seen-verdict").ok());
  CHECK(verifier.GetAgent("A", "seen-verdict").ok());
  CHECK(s.Get("A", "seen-new").ok());
  CHECK(count("SELECT count(*) FROM registrations WHERE agent_id = "
              "'pending'") == 1);
}

TEST_CASE("migration 0005 keeps the data it finds", "[pg][registrar][store]") {
  Db db;
  // Schema version 4 with data, as an older release left it.
  db.Exec(
      "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name "
      "text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
  {
    absl::StatusOr<store::PgPool::Lease> conn = db.pool->Acquire();
    REQUIRE(conn.ok());
    for (const store::Migration& m : store::Migrations()) {
      if (m.version >= 5) break;
      REQUIRE((*conn)->ExecScript(m.sql).ok());
      db.Exec("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
              {absl::StrCat(m.version), std::string(m.name)});
    }
  }
  const std::string insert =
      "INSERT INTO registrations (agent_id, tenant, ek_public, ek_sha256, "
      "ek_certificate, aik_public, aik_name, activated_at) VALUES ($1, 'A', "
      "'\\x00', $2, '\\x00', $3, $4, $5)";
  db.Exec(insert, {"active", store::ToBytea(std::string(32, 'a')),
                   store::ToBytea("pub"), store::ToBytea("k1"), "2024-01-01"});
  db.Exec(insert, {"pending", store::ToBytea(std::string(32, 'p')),
                   std::nullopt, std::nullopt, std::nullopt});
  db.Exec(
      "INSERT INTO registration_challenges (agent_id, secret, aik_public, "
      "aik_name, expires_at) VALUES ('pending', '\\x73', '\\x01', "
      "'\\x6b32', now() + interval '2 minutes')");
  for (const char* id : {"active", "orphan"}) {
    db.Exec(
        "INSERT INTO agent_state (agent_id, tenant, interval_ms, hash_alg) "
        "VALUES ($1, 'A', 5000, 11)",
        {id});
  }
  {
    absl::StatusOr<store::PgPool::Lease> conn = db.pool->Acquire();
    REQUIRE(conn.ok());
    absl::StatusOr<int> applied = store::Migrate(**conn);
    INFO(applied.status().message());
    REQUIRE(applied.ok());
    CHECK(*applied >= 1);
  }
  store::PgRegistrarStore s(db.pool.get(), absl::Hours(24 * 365 * 100));
  store::PgVerifierStore verifier(db.pool.get(), 3);
  CHECK(s.Get("A", "active")->aik_name == "k1");
  // The enrollment whose registration an older version deleted stays
  // readable and can be unenrolled.
  CHECK(verifier.GetAgent("A", "orphan").ok());
  CHECK(absl::IsFailedPrecondition(s.Delete("A", "active")));
  // The pending registration's challenge from before the migration still
  // activates it.
  CHECK(Activate(s, "A", "pending", "s").value() ==
        ActivateOutcome::kActivated);
  // The old uniqueness is gone: a pending registration of an EK that is
  // only pending elsewhere is fine; an activated one is reserved.
  REQUIRE(s.Register(Reg("q1", "A", 'z'), Challenge("x", "k")).ok());
  CHECK(s.Register(Reg("q2", "B", 'z'), Challenge("y", "k")).ok());
  CHECK(absl::IsAlreadyExists(
      s.Register(Reg("q3", "A", 'a'), Challenge("z", "k")).status()));
  REQUIRE(verifier.Unenroll("A", "orphan").ok());
}

}  // namespace
}  // namespace vouch
