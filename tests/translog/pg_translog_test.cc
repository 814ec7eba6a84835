// The transparency log in PostgreSQL ([pg][store][translog]): appends from
// several writers all integrated once, two sequencers racing keep one order,
// a sequencer whose lease was taken is fenced, the served proofs verify
// against the signed tree heads, and FindLeaf (audit exports) finds an
// agent's newest leaf by prefix and tells queued from absent, and the
// verifier's watchdog (verifier/translog_runner.h) proves the records its
// verifier committed and catches a dropped record and a tampered leaf.
#include "store/pg_translog.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/openssl_handle.h"
#include "harness/pg_cluster.h"
#include "store/migrate.h"
#include "store/pg_pool.h"
#include "verifier/translog_runner.h"

namespace vouch {
namespace {

using core::translog::Hash;
using core::translog::LeafHash;
using core::translog::LeafKind;
using core::translog::LogKey;
using testing::PgCluster;

struct Db {
  std::unique_ptr<PgCluster> pg;
  std::unique_ptr<store::PgPool> pool;
  Db() {
    absl::StatusOr<std::unique_ptr<PgCluster>> started = PgCluster::Start();
    REQUIRE(started.ok());
    pg = *std::move(started);
    pool = std::make_unique<store::PgPool>(pg->conninfo(), 8);
    REQUIRE(store::PrepareDatabase(*pool, absl::Seconds(30)).ok());
  }
  // One writer transaction: the leaf is queued in it. No Catch2 assertion
  // here: writers run on their own threads.
  bool Append(const std::string& agent, const std::string& leaf) {
    auto db = pool->Acquire();
    if (!db.ok()) return false;
    absl::StatusOr<bool> done = store::InTransaction(
        **db, [&](store::PgConnection& c) -> absl::StatusOr<bool> {
          absl::Status s =
              store::TranslogAppend(c, LeafKind::kAttestation, agent, leaf);
          if (!s.ok()) return s;
          return true;
        });
    return done.ok();
  }
  void Exec(const std::string& sql) {
    auto db = pool->Acquire();
    REQUIRE(db.ok());
    REQUIRE((*db)->Exec(sql, {}).ok());
  }
  std::vector<std::string> LeavesInOrder() {
    auto db = pool->Acquire();
    REQUIRE(db.ok());
    auto rows = (*db)->Query(
        "SELECT leaf_index, encode(leaf, 'hex') FROM translog_leaves "
        "ORDER BY leaf_index",
        {});
    REQUIRE(rows.ok());
    std::vector<std::string> out;
    for (size_t i = 0; i < rows->rows.size(); ++i) {
      REQUIRE(*rows->rows[i][0] == absl::StrCat(i));  // no gap, no repeat
      out.push_back(*rows->rows[i][1]);
    }
    return out;
  }
};

LogKey NewKey() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  BioPtr bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0,
                                   nullptr, nullptr) == 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  auto k = LogKey::FromPrivatePem(std::string(data, len));
  REQUIRE(k.ok());
  return *std::move(k);
}

// Every head the log signed verifies, and each is consistent with the last.
void CheckHeads(store::PgTranslog& log, const LogKey& key) {
  auto latest = log.LatestHead();
  REQUIRE(latest.ok());
  auto head = key.Verify(latest->signed_head);
  REQUIRE(head.ok());
  for (uint64_t m :
       {uint64_t{0}, uint64_t{1}, head->tree_size / 3, head->tree_size - 1}) {
    auto earlier = log.HeadAt(m);
    if (!earlier.ok()) continue;  // not every size gets a head
    auto proof = log.Consistency(m, head->tree_size);
    REQUIRE(proof.ok());
    CHECK(core::translog::VerifyConsistency(m, head->tree_size, earlier->root,
                                            head->root, *proof)
              .ok());
  }
}

TEST_CASE("translog store: appends from several writers are all integrated",
          "[pg][store][translog]") {
  Db db;
  LogKey key = NewKey();
  store::PgTranslog log(db.pool.get());
  constexpr int kWriters = 4, kEach = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kEach; ++i) {
        if (!db.Append(absl::StrCat("agent-", w),
                       absl::StrCat("w", w, "-", i))) {
          ++failures;
        }
      }
    });
  }
  // The sequencer integrates while the writers write, in small batches.
  auto epoch = log.TryAcquire("seq-a", absl::Minutes(1));
  REQUIRE(epoch.ok());
  REQUIRE(epoch->has_value());
  std::atomic<bool> writing{true};
  std::thread sequencer([&] {
    while (true) {
      const bool last = !writing.load();
      auto r = log.Integrate("seq-a", **epoch, key, 7, absl::Now());
      if (!r.ok()) {
        ++failures;
        return;
      }
      if (last && r->integrated == 0) break;
    }
  });
  for (auto& t : writers) t.join();
  writing = false;
  sequencer.join();
  REQUIRE(failures == 0);

  std::vector<std::string> leaves = db.LeavesInOrder();
  REQUIRE(leaves.size() == kWriters * kEach);
  std::set<std::string> distinct(leaves.begin(), leaves.end());
  CHECK(distinct.size() == leaves.size());
  auto queued = log.QueueLength();
  REQUIRE(queued.ok());
  CHECK(*queued == 0);

  // The signed root is the RFC 9162 root of the leaves in index order.
  core::translog::InMemoryTree tree;
  for (const std::string& hex : leaves) {
    std::string raw;
    for (size_t i = 0; i < hex.size(); i += 2) {
      raw.push_back(
          static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    tree.Append(LeafHash(raw));
  }
  auto latest = log.LatestHead();
  REQUIRE(latest.ok());
  auto head = key.Verify(latest->signed_head);
  REQUIRE(head.ok());
  CHECK(head->tree_size == leaves.size());
  auto root = core::translog::RootHash(tree.size(), tree);
  REQUIRE(root.ok());
  CHECK(head->root == *root);
  // Inclusion proofs by index and by hash verify against the head.
  for (uint64_t i : {uint64_t{0}, uint64_t{17}, uint64_t{leaves.size() - 1}}) {
    auto p = log.InclusionByIndex(i, head->tree_size);
    REQUIRE(p.ok());
    CHECK(core::translog::VerifyInclusion(i, head->tree_size, p->leaf_hash,
                                          p->proof, head->root)
              .ok());
    auto by_hash = log.InclusionByHash(p->leaf_hash, head->tree_size);
    REQUIRE(by_hash.ok());
    CHECK(by_hash->leaf_index == i);
  }
  // In a tree of one leaf the path is empty: the leaf is still read.
  auto alone = log.InclusionByIndex(0, 1);
  REQUIRE(alone.ok());
  CHECK(alone->proof.empty());
  auto first = tree.Get({core::translog::NodeId{0, 0}});
  REQUIRE(first.ok());
  CHECK(alone->leaf_hash == (*first)[0]);
  CHECK(log.InclusionByHash(LeafHash("never logged"), head->tree_size)
            .status()
            .code() == absl::StatusCode::kNotFound);
  CHECK(log.InclusionByIndex(0, head->tree_size + 1).status().code() ==
        absl::StatusCode::kInvalidArgument);
  // Sizes past the integrated tree: its nodes are not there, and the
  // answer says why.
  CHECK(log.Consistency(1, head->tree_size + 1).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(log.InclusionByIndex(head->tree_size, head->tree_size + 1)
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
  CheckHeads(log, key);
}

TEST_CASE("translog store: two sequencers racing keep one order",
          "[pg][store][translog]") {
  Db db;
  LogKey key = NewKey();
  store::PgTranslog log_a(db.pool.get()), log_b(db.pool.get());
  constexpr int kLeaves = 120;
  std::atomic<int> written{0};
  std::atomic<int> failures{0};
  std::thread writer([&] {
    for (int i = 0; i < kLeaves; ++i) {
      if (!db.Append("agent", absl::StrCat("leaf-", i))) ++failures;
      ++written;
    }
  });
  // Each sequencer takes the lease when it can (a short one, so they trade
  // it), integrates, and gives way; a fenced integration changes nothing.
  std::atomic<int> fenced{0};
  auto run = [&](store::PgTranslog& log, const std::string& me) {
    for (int round = 0; round < 400; ++round) {
      auto epoch = log.TryAcquire(me, absl::Milliseconds(1));
      if (!epoch.ok()) {
        ++failures;
        return;
      }
      if (!epoch->has_value()) continue;
      auto r = log.Integrate(me, **epoch, key, 5, absl::Now());
      if (!r.ok()) {
        // Losing the lease mid-way is the only acceptable failure.
        if (r.status().code() != absl::StatusCode::kAborted) ++failures;
        ++fenced;
      }
      if (written.load() == kLeaves && r.ok() && r->tree_size == kLeaves) {
        return;
      }
    }
  };
  std::thread a([&] { run(log_a, "seq-a"); });
  std::thread b([&] { run(log_b, "seq-b"); });
  writer.join();
  a.join();
  b.join();
  REQUIRE(failures == 0);
  // Whatever is left, one of them finishes.
  auto epoch = log_a.TryAcquire("seq-a", absl::Minutes(1));
  REQUIRE(epoch.ok());
  if (epoch->has_value()) {
    REQUIRE(log_a.Integrate("seq-a", **epoch, key, 1000, absl::Now()).ok());
  }
  std::vector<std::string> leaves = db.LeavesInOrder();
  REQUIRE(leaves.size() == kLeaves);
  // One writer, one order: the log holds its leaves in the order written.
  for (int i = 0; i < kLeaves; ++i) {
    std::string expect;
    for (char ch : absl::StrCat("leaf-", i)) {
      expect +=
          absl::StrCat(absl::Hex(static_cast<uint8_t>(ch), absl::kZeroPad2));
    }
    REQUIRE(leaves[i] == expect);
  }
  CheckHeads(log_a, key);
}

TEST_CASE("translog store: a sequencer whose lease was taken is fenced",
          "[pg][store][translog]") {
  Db db;
  LogKey key = NewKey();
  store::PgTranslog log(db.pool.get());
  auto a = log.TryAcquire("seq-a", absl::Minutes(1));
  REQUIRE(a.ok());
  REQUIRE(a->has_value());
  // Held: another holder waits.
  auto b = log.TryAcquire("seq-b", absl::Minutes(1));
  REQUIRE(b.ok());
  CHECK_FALSE(b->has_value());
  REQUIRE(db.Append("agent", "one"));
  REQUIRE(log.Integrate("seq-a", **a, key, 10, absl::Now()).ok());
  // The lease runs out (made so here, not waited for); b takes it.
  db.Exec("UPDATE translog_sequencer SET lease_until = now() - interval '1s'");
  b = log.TryAcquire("seq-b", absl::Minutes(1));
  REQUIRE(b.ok());
  REQUIRE(b->has_value());
  CHECK(**b == **a + 1);
  REQUIRE(db.Append("agent", "two"));
  auto stale = log.Integrate("seq-a", **a, key, 10, absl::Now());
  CHECK(stale.status().code() == absl::StatusCode::kAborted);
  auto r = log.Integrate("seq-b", **b, key, 10, absl::Now());
  REQUIRE(r.ok());
  CHECK(r->tree_size == 2);
  CHECK(db.LeavesInOrder().size() == 2);
}

}  // namespace
}  // namespace vouch

namespace vouch {
namespace {

TEST_CASE(
    "translog store: FindLeaf finds an agent's newest leaf by prefix below a "
    "bound, and tells queued from absent",
    "[pg][store][translog]") {
  using Where = store::FoundLeaf::Where;
  Db db;
  store::PgTranslog log(db.pool.get());
  const LogKey key = NewKey();
  auto epoch = log.TryAcquire("seq", absl::Minutes(1));
  REQUIRE(epoch.ok());
  REQUIRE(epoch->has_value());
  auto integrate = [&] {
    REQUIRE(log.Integrate("seq", **epoch, key, 100, absl::Now()).ok());
  };
  // Leaves 0..3: a1's "p-1", b's "p-1", a1's "p-2", a1's "p-1" again.
  for (const auto& [agent, leaf] :
       std::vector<std::pair<std::string, std::string>>{{"a1", "p-1 first"},
                                                        {"b", "p-1 of b"},
                                                        {"a1", "p-2"},
                                                        {"a1", "p-1 second"}}) {
    REQUIRE(db.Append(agent, leaf));
  }
  integrate();
  auto find = [&](const std::string& agent, const std::string& prefix,
                  uint64_t below, uint64_t size) {
    auto found =
        log.FindLeaf(LeafKind::kAttestation, agent, prefix, below, size);
    REQUIRE(found.ok());
    return *found;
  };
  store::FoundLeaf f = find("a1", "p-1", 4, 4);
  CHECK(f.where == Where::kIntegrated);
  CHECK(f.index == 3);  // The newest.
  CHECK(f.leaf == "p-1 second");
  f = find("a1", "p-1", 3, 4);  // Below index 3: the first.
  CHECK(f.where == Where::kIntegrated);
  CHECK(f.index == 0);
  CHECK(find("b", "p-1", 4, 4).index == 1);
  // Another kind, agent or prefix: absent.
  CHECK(log.FindLeaf(LeafKind::kBinding, "a1", "p-1", 4, 4)->where ==
        Where::kAbsent);
  CHECK(find("a2", "p-1", 4, 4).where == Where::kAbsent);
  CHECK(find("a1", "p-3", 4, 4).where == Where::kAbsent);
  // Only past `below` but inside the caller's head: absent (not lag).
  CHECK(find("a1", "p-2", 2, 4).where == Where::kAbsent);
  // Integrated after the caller's head (size 2), or still queued: queued.
  CHECK(find("a1", "p-2", 2, 2).where == Where::kQueued);
  REQUIRE(db.Append("a1", "p-4"));
  CHECK(find("a1", "p-4", 4, 4).where == Where::kQueued);
  integrate();
  f = find("a1", "p-4", 5, 5);
  CHECK(f.where == Where::kIntegrated);
  CHECK(f.index == 4);
}

}  // namespace
}  // namespace vouch

namespace vouch {
namespace {

TEST_CASE(
    "translog store: QueuedBefore counts entries queued before a moment, to "
    "the microsecond",
    "[pg][store][translog]") {
  Db db;
  store::PgTranslog log(db.pool.get());
  const absl::Time before = absl::Now();
  REQUIRE(db.Append("agent", "queued"));
  const absl::Time after = absl::Now();
  CHECK(log.QueuedBefore(before - absl::Minutes(1)).value_or(9) == 0);
  CHECK(log.QueuedBefore(before - absl::Milliseconds(1)).value_or(9) == 0);
  CHECK(log.QueuedBefore(after + absl::Milliseconds(1)).value_or(9) == 1);
  CHECK(log.QueuedBefore(after + absl::Minutes(1)).value_or(9) == 1);
}

TEST_CASE("translog committed leaves: bounded, taken oldest first",
          "[pg][store][translog]") {
  store::CommittedLeaves committed(3);
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 5; ++i) {
    committed.Add(LeafHash(absl::StrCat("leaf ", i)), t0 + absl::Seconds(i));
  }
  std::vector<store::CommittedLeaves::Leaf> taken = committed.Take();
  REQUIRE(taken.size() == 3);
  CHECK(taken[0].hash == LeafHash("leaf 0"));
  CHECK(taken[2].committed == t0 + absl::Seconds(2));
  CHECK(committed.TakeDropped() == 2);
  CHECK(committed.TakeDropped() == 0);
  CHECK(committed.Take().empty());
}

TEST_CASE(
    "translog watchdog: it proves the records its verifier committed, "
    "reports one the sequencer dropped, and catches leaves that do not make "
    "up the signed head",
    "[pg][store][translog]") {
  Db db;
  store::PgTranslog log(db.pool.get());
  const LogKey key = NewKey();
  store::CommittedLeaves committed(100);
  verifier::TranslogOptions options;
  options.bound = absl::Minutes(1);
  options.monitor_chunk = 3;  // Several reads per round.
  verifier::TranslogRunner runner(&log, &key, "v1", options, nullptr,
                                  &committed);
  const absl::Time now = absl::Now();
  const absl::Time late = now + absl::Minutes(2);
  // What the verdict path does: queue the leaf, and once committed hand
  // its hash over.
  auto commit = [&](const std::string& leaf) {
    REQUIRE(db.Append("agent", leaf));
    committed.Add(LeafHash(leaf), now);
  };

  // 1. Integrated before the watchdog's first tree head: not among the
  //    leaves it monitors, so proven by lookup once overdue.
  for (int i = 0; i < 5; ++i) commit(absl::StrCat("before ", i));
  runner.RunOnce(now);
  CHECK(runner.alarms() == 0);
  CHECK(runner.records_waiting() == 5);
  runner.RunOnce(late);
  CHECK(runner.alarms() == 0);
  CHECK(runner.records_proven() == 5);
  CHECK(runner.records_waiting() == 0);

  // 2. Integrated after it: proven by rebuilding the head from the leaves
  //    (7 leaves, read 3 at a time), with other writers' leaves among them.
  for (int i = 0; i < 4; ++i) {
    commit(absl::StrCat("after ", i));
    REQUIRE(db.Append("other", absl::StrCat("not ours ", i)));
  }
  runner.RunOnce(now);
  CHECK(runner.alarms() == 0);
  CHECK(runner.records_proven() == 9);
  CHECK(runner.records_waiting() == 0);
  // Leaf hashes are stored once, in translog_leaves (proofs read level 0
  // there), not again as level-0 nodes.
  {
    auto c = db.pool->Acquire();
    REQUIRE(c.ok());
    auto rows = (*c)->Query(
        "SELECT count(*) FILTER (WHERE level = 0), count(*) FROM "
        "translog_nodes",
        {});
    REQUIRE(rows.ok());
    CHECK(*rows->rows[0][0] == "0");
    CHECK(*rows->rows[0][1] != "0");
  }

  // 3. A committed leaf the sequencer dropped from the queue without
  //    integrating it: the queue's own check sees nothing (the queue is
  //    empty); the verifier's check reports it once past the bound.
  commit("dropped");
  db.Exec("DELETE FROM translog_queue");
  runner.RunOnce(now);
  CHECK(runner.alarms() == 0);
  CHECK(runner.records_waiting() == 1);
  runner.RunOnce(late);
  CHECK(runner.alarms() == 1);
  CHECK(runner.records_waiting() == 0);
  CHECK(runner.records_proven() == 9);

  // 4. A leaf changed in the table after integration: the next head is not
  //    made up of the stored leaves.
  commit("tampered");
  REQUIRE(db.Append("other", "after the tampered one"));
  auto epoch = log.TryAcquire("v1", options.lease);  // The runner's lease.
  REQUIRE(epoch.ok());
  REQUIRE(epoch->has_value());
  REQUIRE(log.Integrate("v1", **epoch, key, 100, now).ok());
  db.Exec(
      "UPDATE translog_leaves SET leaf_hash = sha256('\\x00'::bytea || "
      "'\\x6f74686572'::bytea) WHERE leaf_index = (SELECT max(leaf_index) - 1 "
      "FROM translog_leaves)");
  CHECK_FALSE(runner.Watch(now));
  CHECK(runner.alarms() == 2);
  // It stays refused (not accepted on a later round).
  CHECK_FALSE(runner.Watch(now));
  CHECK(runner.alarms() == 3);

  // 5. The changed leaf restored, but the last leaf's row deleted: the
  //    leaves the head needs cannot all be read, which is an alarm too (not
  //    a retry).
  db.Exec(
      "UPDATE translog_leaves SET leaf_hash = sha256('\\x00'::bytea || leaf) "
      "WHERE leaf_index = (SELECT max(leaf_index) - 1 FROM translog_leaves)");
  db.Exec(
      "DELETE FROM translog_leaves WHERE leaf_index = (SELECT max(leaf_index) "
      "FROM translog_leaves)");
  CHECK_FALSE(runner.Watch(now));
  CHECK(runner.alarms() == 4);
}

}  // namespace
}  // namespace vouch
