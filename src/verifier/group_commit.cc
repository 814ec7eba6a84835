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
  auto run = [&](size_t from, size_t to) -> absl::Status {
    std::vector<absl::StatusOr<store::VerdictApplied>> part;
    absl::Status s =
        store::InTransaction(**db, [&](store::PgConnection& c) -> absl::Status {
          for (size_t i = from; i < to; ++i) {
            VOUCH_ASSIGN_OR_RETURN(
                store::VerdictApplied a,
                store::PgVerifierStore::ApplyVerdict(c, batch[i].commit));
            part.push_back(a);
          }
          return absl::OkStatus();
        });
    if (s.ok()) {
      for (auto& p : part) results.push_back(std::move(p));
    }
    return s;
  };
  if (!db.ok()) {
    for (Item& item : batch) item.done(db.status());
    return;
  }
  absl::Status all = run(0, batch.size());
  if (!all.ok() && batch.size() > 1 && (*db)->Healthy()) {
    // One verdict broke the batch; commit the others one by one.
    results.clear();
    for (size_t i = 0; i < batch.size(); ++i) {
      absl::Status one = run(i, i + 1);
      if (!one.ok()) results.push_back(one);
    }
  } else if (!all.ok()) {
    results.assign(batch.size(), all);
  }
  if (!all.ok()) {
    Log(LogLevel::kWarning, "verdict commit failed",
        {{"error", all.message()}, {"batch", batch.size()}});
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
