// Transparency-log proofs served from PostgreSQL at size (a program, not
// Google Benchmark): a throw-away cluster, the real schema
// (store::PrepareDatabase), a tree of N synthetic leaves written into
// translog_leaves and every complete subtree into translog_nodes by SQL
// (leaf i: the 8-byte big-endian i; hashes as RFC 9162), then random
// inclusion proofs (by index and by leaf hash) and consistency proofs
// through store::PgTranslog, the calls the Admin API serves them with, timed
// one at a time (wall: the queries' round trips included). Every proof is
// verified against roots computed here, independently of the database, from the
// leaves alone; a proof that does not verify fails the run.
//
//   build/release/bench/translog_pg --leaves 10000000 --proofs 2000 --json
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/translog/merkle.h"
#include "harness/pg_cluster.h"
#include "load_util.h"
#include "store/migrate.h"
#include "store/pg_pool.h"
#include "store/pg_translog.h"

namespace vouch {
namespace {

using bench::Die;
using bench::Must;
using bench::MustOk;
using Clock = std::chrono::steady_clock;
namespace tl = core::translog;

// A pseudo-random sequence (reproducible).
uint64_t Next(uint64_t& x) {
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

tl::Hash Leaf(uint64_t i) {
  std::string leaf(8, '\0');
  for (int b = 0; b < 8; ++b) leaf[7 - b] = static_cast<char>(i >> (8 * b));
  return tl::LeafHash(leaf);
}

void Exec(store::PgConnection& db, const std::string& sql) {
  MustOk(db.Exec(sql, {}).status(), sql.substr(0, 60));
}

// The tree of `n` leaves as the sequencer would have stored it: leaves in
// translog_leaves (level 0), complete subtrees of level >= 1 in
// translog_nodes, the sequencer's size. The leaves' secondary indexes are
// built after the rows (faster; the proofs do not use them).
void Fill(store::PgPool& pool, uint64_t n) {
  store::PgPool::Lease lease = Must(pool.Acquire(), "connection");
  store::PgConnection& db = *lease;
  // The pool's statement timeout is for serving; filling 10M leaves takes
  // about a minute.
  MustOk(db.SetStatementTimeout(absl::ZeroDuration()), "statement timeout");
  Exec(db, "DROP INDEX translog_leaves_hash, translog_leaves_agent");
  constexpr uint64_t kChunk = 1000000;
  for (uint64_t from = 0; from < n; from += kChunk) {
    const uint64_t to = std::min(n, from + kChunk);
    Exec(db, absl::StrCat(
                 "INSERT INTO translog_leaves (leaf_index, leaf_hash, kind, "
                 "agent_id, leaf, queued_at) SELECT i, sha256('\\x00'::bytea "
                 "|| int8send(i)), 3, 'bench-agent', int8send(i), now() FROM "
                 "generate_series(",
                 from, "::bigint, ", to - 1, "::bigint) AS i"));
  }
  Exec(db,
       "INSERT INTO translog_nodes (level, idx, hash) SELECT 1, l.leaf_index / "
       "2, sha256('\\x01'::bytea || l.leaf_hash || r.leaf_hash) FROM "
       "translog_leaves l JOIN translog_leaves r ON r.leaf_index = "
       "l.leaf_index + 1 WHERE l.leaf_index % 2 = 0");
  for (int level = 2; (uint64_t{1} << level) <= n; ++level) {
    Exec(db, absl::StrCat(
                 "INSERT INTO translog_nodes (level, idx, hash) SELECT ", level,
                 ", l.idx / 2, sha256('\\x01'::bytea || l.hash || r.hash) "
                 "FROM translog_nodes l JOIN translog_nodes r ON r.level = ",
                 level - 1, " AND r.idx = l.idx + 1 WHERE l.level = ",
                 level - 1, " AND l.idx % 2 = 0"));
  }
  Exec(db, absl::StrCat("UPDATE translog_sequencer SET tree_size = ", n));
  Exec(db, "CREATE INDEX translog_leaves_hash ON translog_leaves (leaf_hash)");
  Exec(db,
       "CREATE INDEX translog_leaves_agent ON translog_leaves (agent_id, "
       "leaf_index)");
  Exec(db, "VACUUM ANALYZE translog_leaves");
  Exec(db, "VACUUM ANALYZE translog_nodes");
  MustOk(db.SetStatementTimeout(pool.options().statement_timeout),
         "statement timeout");
}

struct Timing {
  double p50_ms = 0, p99_ms = 0, max_ms = 0, mean_ms = 0;
};

Timing Summarize(std::vector<double> ms) {
  Timing t;
  if (ms.empty()) return t;
  std::sort(ms.begin(), ms.end());
  t.p50_ms = ms[ms.size() / 2];
  t.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  t.max_ms = ms.back();
  double sum = 0;
  for (double v : ms) sum += v;
  t.mean_ms = sum / static_cast<double>(ms.size());
  return t;
}

int Main(int argc, char** argv) {
  uint64_t leaves = 1000000;
  int proofs = 1000;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--json") {
      json = true;
    } else if (flag == "--leaves" && i + 1 < argc) {
      leaves = std::strtoull(argv[++i], nullptr, 10);
    } else if (flag == "--proofs" && i + 1 < argc) {
      proofs = std::atoi(argv[++i]);
    } else {
      Die("usage: translog_pg [--leaves N] [--proofs K] [--json]");
    }
  }
  if (leaves < 2 || proofs < 1) Die("--leaves >= 2 and --proofs >= 1");

  std::unique_ptr<testing::PgCluster> pg =
      Must(testing::PgCluster::Start(), "PostgreSQL");
  store::PgPool pool(pg->conninfo(), 2);
  MustOk(store::PrepareDatabase(pool, absl::Seconds(30)), "schema");
  auto t = Clock::now();
  Fill(pool, leaves);
  const double fill_s = bench::SecondsSince(t);

  // Roots of the sizes the consistency proofs start from, and of the whole
  // tree, from the leaves alone.
  uint64_t x = 88172645463325252ull;
  std::vector<uint64_t> firsts;
  for (int i = 0; i < proofs; ++i) firsts.push_back(1 + Next(x) % (leaves - 1));
  std::map<uint64_t, tl::Hash> roots;
  {
    std::vector<uint64_t> sorted = firsts;
    std::sort(sorted.begin(), sorted.end());
    tl::CompactRange range =
        Must(tl::CompactRange::Create(0, {}), "compact range");
    size_t next = 0;
    for (uint64_t i = 0; i < leaves; ++i) {
      range.Append(Leaf(i));
      while (next < sorted.size() && sorted[next] == i + 1) {
        roots[sorted[next++]] = range.Root();
      }
    }
    roots[leaves] = range.Root();
  }
  const tl::Hash root = roots[leaves];
  store::PgTranslog log(&pool);
  const tl::Hash stored_root = Must(log.Edge(leaves), "edge").Root();
  if (stored_root != root)
    Die("the stored tree's root is not the leaves' root");

  std::vector<double> inclusion_ms, consistency_ms;
  size_t inclusion_hashes = 0, consistency_hashes = 0;
  for (int i = 0; i < proofs; ++i) {
    const uint64_t index = Next(x) % leaves;
    t = Clock::now();
    store::InclusionAnswer a =
        Must(log.InclusionByIndex(index, leaves), "inclusion proof");
    inclusion_ms.push_back(1e3 * bench::SecondsSince(t));
    inclusion_hashes += a.proof.size();
    MustOk(tl::VerifyInclusion(index, leaves, Leaf(index), a.proof, root),
           absl::StrCat("inclusion proof of leaf ", index));
  }
  // By leaf hash (`vouchctl audit prove --leaf`): the hash index, then the
  // path.
  std::vector<double> by_hash_ms;
  for (int i = 0; i < proofs; ++i) {
    const uint64_t index = Next(x) % leaves;
    const tl::Hash leaf = Leaf(index);
    t = Clock::now();
    store::InclusionAnswer a =
        Must(log.InclusionByHash(leaf, leaves), "inclusion proof by hash");
    by_hash_ms.push_back(1e3 * bench::SecondsSince(t));
    if (a.leaf_index != index) Die("a leaf hash was found at another index");
    MustOk(tl::VerifyInclusion(index, leaves, leaf, a.proof, root),
           absl::StrCat("inclusion proof of leaf hash ", index));
  }
  for (uint64_t m : firsts) {
    t = Clock::now();
    std::vector<tl::Hash> proof =
        Must(log.Consistency(m, leaves), "consistency proof");
    consistency_ms.push_back(1e3 * bench::SecondsSince(t));
    consistency_hashes += proof.size();
    MustOk(tl::VerifyConsistency(m, leaves, roots[m], root, proof),
           absl::StrCat("consistency proof from ", m));
  }
  const Timing inc = Summarize(inclusion_ms);
  const Timing con = Summarize(consistency_ms);
  const Timing hash = Summarize(by_hash_ms);
  std::printf("tree: %lu leaves written and hashed by PostgreSQL in %.0f s\n",
              static_cast<unsigned long>(leaves), fill_s);
  std::printf(
      "inclusion proofs (%d, %.1f hashes each, all verified): p50 %.3f ms, "
      "p99 %.3f ms, max %.3f ms, mean %.3f ms\n",
      proofs, static_cast<double>(inclusion_hashes) / proofs, inc.p50_ms,
      inc.p99_ms, inc.max_ms, inc.mean_ms);
  std::printf(
      "inclusion proofs by leaf hash (%d, all verified): p50 %.3f ms, p99 "
      "%.3f ms, max %.3f ms, mean %.3f ms\n",
      proofs, hash.p50_ms, hash.p99_ms, hash.max_ms, hash.mean_ms);
  std::printf(
      "consistency proofs (%d, %.1f hashes each, all verified): p50 %.3f ms, "
      "p99 %.3f ms, max %.3f ms, mean %.3f ms\n",
      proofs, static_cast<double>(consistency_hashes) / proofs, con.p50_ms,
      con.p99_ms, con.max_ms, con.mean_ms);
  if (json) {
    std::printf(
        "{\"leaves\": %lu, \"proofs\": %d, \"fill_seconds\": %.1f, "
        "\"inclusion_p50_ms\": %.3f, \"inclusion_p99_ms\": %.3f, "
        "\"inclusion_max_ms\": %.3f, \"inclusion_mean_ms\": %.3f, "
        "\"by_hash_p50_ms\": %.3f, \"by_hash_p99_ms\": %.3f, "
        "\"by_hash_max_ms\": %.3f, \"by_hash_mean_ms\": %.3f, "
        "\"consistency_p50_ms\": %.3f, \"consistency_p99_ms\": %.3f, "
        "\"consistency_max_ms\": %.3f, \"consistency_mean_ms\": %.3f}\n",
        static_cast<unsigned long>(leaves), proofs, fill_s, inc.p50_ms,
        inc.p99_ms, inc.max_ms, inc.mean_ms, hash.p50_ms, hash.p99_ms,
        hash.max_ms, hash.mean_ms, con.p50_ms, con.p99_ms, con.max_ms,
        con.mean_ms);
  }
  return 0;
}

}  // namespace
}  // namespace vouch

int main(int argc, char** argv) { return vouch::Main(argc, argv); }
