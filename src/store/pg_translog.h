// File: store/pg_translog.h
// The transparency log in PostgreSQL (migrations/0011_translog.sql): the
// append queue writers fill inside their own transactions, the sequencer
// (one lease holder at a time, fenced by epoch) that integrates the queue
// into the RFC 9162 tree and signs tree heads, and the reads proofs need.
// Thread-safe (each call takes its own pooled connection).
//
//   VOUCH_RETURN_IF_ERROR(TranslogAppend(db, LeafKind::kBinding, id, leaf));
//   PgTranslog log(&pool);
//   if (auto epoch = log.TryAcquire("verifier-1", absl::Seconds(10)); ...)
//     log.Integrate("verifier-1", *epoch, key, 1000, absl::Now());
//   VOUCH_ASSIGN_OR_RETURN(auto proof, log.InclusionByIndex(7, head.size));
#ifndef VOUCH_STORE_PG_TRANSLOG_H_
#define VOUCH_STORE_PG_TRANSLOG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/translog/merkle.h"
#include "core/translog/tree_head.h"
#include "store/pg_connection.h"
#include "store/pg_pool.h"

namespace vouch::store {

// Queues a leaf (core/translog/tree_head.h encodings) in the caller's open
// transaction: it is logged exactly when the caller commits.
absl::Status TranslogAppend(PgConnection& db, core::translog::LeafKind kind,
                            absl::string_view agent_id, absl::string_view leaf);

// The same insert as SQL for a data-modifying CTE: parameters $agent, $leaf
// are the caller's placeholders ("$1", "$25").
std::string TranslogAppendSql(absl::string_view agent_param,
                              absl::string_view leaf_param,
                              core::translog::LeafKind kind);

struct SignedHead {
  uint64_t tree_size = 0;
  core::translog::Hash root{};
  std::string signed_head;  // core/translog/tree_head.h wire form
};

struct IntegrateResult {
  uint64_t integrated = 0;  // leaves added by this call
  uint64_t tree_size = 0;   // size after
};

struct InclusionAnswer {
  uint64_t leaf_index = 0;
  uint64_t tree_size = 0;
  core::translog::Hash leaf_hash{};
  std::vector<core::translog::Hash> proof;
};

// Where a leaf is: not logged at all, queued (committed, the sequencer has
// not integrated it yet), or in the tree at `index`.
struct FoundLeaf {
  enum class Where { kAbsent, kQueued, kIntegrated };
  Where where = Where::kAbsent;
  uint64_t index = 0;
  std::string leaf;
};

// The leaves of the records this verifier committed, handed from the
// commit path to the watchdog, which checks that each reaches the tree
// (verifier/translog_runner.h). Bounded: past `capacity` waiting leaves a
// leaf is dropped and counted, not kept. Thread-safe.
class CommittedLeaves {
 public:
  struct Leaf {
    core::translog::Hash hash{};
    absl::Time committed;
  };
  explicit CommittedLeaves(size_t capacity) : capacity_(capacity) {}
  void Add(const core::translog::Hash& hash, absl::Time committed);
  // The leaves added since the last call, oldest first.
  std::vector<Leaf> Take();
  // Leaves dropped because `capacity` were waiting (since the last call).
  uint64_t TakeDropped();
  size_t capacity() const { return capacity_; }

 private:
  const size_t capacity_;
  absl::Mutex mu_;
  std::vector<Leaf> leaves_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

class PgTranslog {
 public:
  explicit PgTranslog(PgPool* pool) : pool_(pool) {}

  // Takes or renews the sequencer lease for `holder`: its epoch, or nullopt
  // while another holder's lease is unexpired. A new holder gets epoch + 1.
  absl::StatusOr<std::optional<int64_t>> TryAcquire(absl::string_view holder,
                                                    absl::Duration lease);

  // Integrates up to `max_batch` queued entries (oldest first) and signs the
  // new tree head with `key`, all in one transaction that holds the
  // sequencer row: kAborted when (holder, epoch) no longer hold the lease.
  // Signs a head for the empty tree on first use.
  absl::StatusOr<IntegrateResult> Integrate(absl::string_view holder,
                                            int64_t epoch,
                                            const core::translog::LogKey& key,
                                            size_t max_batch, absl::Time now);

  // The newest signed head, or the one signed at exactly `size`
  // (kNotFound when no head has that size).
  absl::StatusOr<SignedHead> LatestHead();
  absl::StatusOr<SignedHead> HeadAt(uint64_t size);

  // Proofs against a tree of `tree_size` leaves (<= the integrated size;
  // kInvalidArgument otherwise). One prepared query reads a proof's nodes
  // (and an inclusion proof's leaf); the size is read only when a node is
  // missing, to tell a size past the log from a damaged table (kInternal).
  absl::StatusOr<InclusionAnswer> InclusionByIndex(uint64_t index,
                                                   uint64_t tree_size);
  // The first leaf with this hash (kNotFound when it is not in the tree).
  absl::StatusOr<InclusionAnswer> InclusionByHash(
      const core::translog::Hash& leaf_hash, uint64_t tree_size);
  absl::StatusOr<std::vector<core::translog::Hash>> Consistency(uint64_t m,
                                                                uint64_t n);
  // The stored complete subtrees on the right edge of the tree of `size`
  // leaves (core::translog::CompactRange): where a monitor starts.
  absl::StatusOr<core::translog::CompactRange> Edge(uint64_t size);
  // The leaf hashes of leaves [begin, end) in index order (end - begin <=
  // 100,000); kDataLoss when a leaf of the range is missing.
  absl::StatusOr<std::vector<core::translog::Hash>> LeafHashes(uint64_t begin,
                                                               uint64_t end);

  // The newest leaf of `kind` for `agent_id` whose bytes begin with
  // `prefix` (core/translog/tree_head.h *LeafPrefix) among the first
  // `below` leaves of the tree (below <= tree_size, the size of the head
  // the caller holds); kQueued when none is there but one is still queued
  // or was integrated after that head. Reads the agent's leaves of that
  // kind (index on agent_id): for audit exports, not hot paths.
  absl::StatusOr<FoundLeaf> FindLeaf(core::translog::LeafKind kind,
                                     absl::string_view agent_id,
                                     absl::string_view prefix, uint64_t below,
                                     uint64_t tree_size);

  // Leaves still queued (for metrics and tests), and those queued before
  // `before` (the watchdog: committed but not integrated in time).
  absl::StatusOr<uint64_t> QueueLength();
  absl::StatusOr<uint64_t> QueuedBefore(absl::Time before);

 private:
  PgPool* pool_;
};

// core::translog::NodeSource over translog_nodes (levels >= 1) and
// translog_leaves (level 0: the leaf hashes) on one connection.
class PgNodeSource : public core::translog::NodeSource {
 public:
  explicit PgNodeSource(PgConnection& db) : db_(db) {}
  absl::StatusOr<std::vector<core::translog::Hash>> Get(
      absl::Span<const core::translog::NodeId> ids) const override;

 private:
  PgConnection& db_;
};

}  // namespace vouch::store

#endif  // VOUCH_STORE_PG_TRANSLOG_H_
