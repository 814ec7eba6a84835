#include "verifier/group_commit.h"

#include <utility>

#include "common/logging.h"
#include "common/status_macros.h"

namespace vouch::verifier {

GroupCommitter::GroupCommitter(store::PgPool* pool, int threads,
                               size_t max_batch)
    : pool_(pool), max_batch_(max_batch < 1 ? 1 : max_batch) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

GroupCommitter::~GroupCommitter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void GroupCommitter::Submit(store::VerdictCommit commit, Done done) {
  absl::MutexLock lock(&mu_);
  queue_.push_back({std::move(commit), std::move(done)});
}

uint64_t GroupCommitter::batches() const {
  absl::MutexLock lock(&mu_);
  return batches_;
}

uint64_t GroupCommitter::verdicts() const {
  absl::MutexLock lock(&mu_);
  return verdicts_;
}

void GroupCommitter::Loop() {
  while (true) {
    std::vector<Item> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](GroupCommitter* g) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g->mu_) {
            return g->stopping_ || !g->queue_.empty();
          },
          this));
      if (queue_.empty()) return;
      // Whatever queued while the previous batch committed forms the next
      // batch: no timer, so a lone verdict is committed at once.
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    CommitBatch(batch);
  }
}

void GroupCommitter::CommitBatch(std::vector<Item>& batch) {
  std::vector<absl::StatusOr<store::VerdictApplied>> results;
  absl::StatusOr<store::PgPool::Lease> db = pool_->Acquire(absl::Seconds(5));
  if (!db.ok()) {
    for (Item& item : batch) item.done(db.status());
    return;
  }
  // The whole batch in one round trip: BEGIN, one fenced statement per
  // verdict, COMMIT (libpq pipeline mode).
  std::vector<store::PgStatement> statements;
  statements.reserve(batch.size() + 2);
  statements.push_back({"BEGIN", {}, {}});
  for (const Item& item : batch) {
    statements.push_back(store::PgVerifierStore::VerdictStatement(item.commit));
  }
  statements.push_back({"COMMIT", {}, {}});
  absl::StatusOr<std::vector<store::PgRows>> all =
      (*db)->QueryPipelined(statements);
  if (all.ok() && all->size() == statements.size()) {
    for (size_t i = 0; i < batch.size(); ++i) {
      results.push_back(store::PgVerifierStore::VerdictResult((*all)[i + 1]));
    }
  } else {
    absl::Status failed =
        all.ok() ? absl::InternalError("short pipeline") : all.status();
    Log(LogLevel::kWarning, "verdict batch failed; committing one by one",
        {{"error", failed.message()}, {"batch", batch.size()}});
    (void)(*db)->Exec("ROLLBACK");  // The failed transaction stays open.
    // One verdict may have broken the batch: commit each on its own.
    for (Item& item : batch) {
      if (!(*db)->Healthy()) {
        results.push_back(failed);
        continue;
      }
      results.push_back(store::InTransaction(
          **db,
          [&](store::PgConnection& c) -> absl::StatusOr<store::VerdictApplied> {
            return store::PgVerifierStore::ApplyVerdict(c, item.commit);
          }));
    }
  }
  {
    absl::MutexLock lock(&mu_);
    ++batches_;
    verdicts_ += batch.size();
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i].done(std::move(results[i]));
  }
}

}  // namespace vouch::verifier
