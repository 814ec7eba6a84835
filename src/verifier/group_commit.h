// File: verifier/group_commit.h
// Group commit of verdicts: many streams' verdicts share one transaction
// (one WAL flush), so the database is not one commit per quote. Whatever
// queued while the previous batch committed forms the next batch, handed to
// AgentStore::CommitVerdicts; each callback runs only after the store
// reported its verdict durable, or with an error when it is not, so nothing
// is acknowledged before it is committed. Thread-safe.
//
//   GroupCommitter gc(&store, /*threads=*/2, /*max_batch=*/64);
//   gc.Submit(commit, [](absl::StatusOr<store::VerdictApplied> r) { ... });
#ifndef VOUCH_VERIFIER_GROUP_COMMIT_H_
#define VOUCH_VERIFIER_GROUP_COMMIT_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "store/verifier_store.h"

namespace vouch::verifier {

class GroupCommitter {
 public:
  using Done = std::function<void(absl::StatusOr<store::VerdictApplied>)>;

  GroupCommitter(store::AgentStore* store, int threads, size_t max_batch);
  // Commits what is queued, then joins.
  ~GroupCommitter();
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  void Submit(store::VerdictCommit commit, Done done);

  // Called after each transaction with its verdicts and duration (metrics);
  // set before the first Submit.
  void SetBatchObserver(std::function<void(size_t, absl::Duration)> fn) {
    observer_ = std::move(fn);
  }
  // Test-only fault injection: after the n-th batch that committed at least
  // one verdict, the process exits (status 137, like SIGKILL) before any of
  // that batch's verdicts is sent: a lost acknowledgement. 0 = never. Call
  // before the first Submit.
  void SetExitAfterCommitsForTests(int n) { exit_after_commits_ = n; }
  // Test-only fault injection: every n-th batch fails in the worker before
  // it reaches the store (nothing of it is committed) and each of its
  // verdicts gets an error, as when the commit task itself breaks. The
  // failed attestation ids are logged. 0 = never. Call before the first
  // Submit.
  void SetFailEveryBatchForTests(int n) { fail_every_batch_ = n; }

  // Batches committed and verdicts in them, since start (for metrics and
  // the benchmark).
  uint64_t batches() const;
  uint64_t verdicts() const;

 private:
  struct Item {
    store::VerdictCommit commit;
    Done done;
  };
  void Loop();
  void CommitBatch(std::vector<Item>& batch);
  bool FailThisBatchForTests(const std::vector<Item>& batch);

  store::AgentStore* store_;
  const size_t max_batch_;
  mutable absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t batches_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t verdicts_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void(size_t, absl::Duration)> observer_;
  int exit_after_commits_ = 0;
  int fail_every_batch_ = 0;
  int batches_seen_ ABSL_GUARDED_BY(mu_) = 0;
  int committed_batches_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_GROUP_COMMIT_H_
