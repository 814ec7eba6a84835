#include "verifier/group_commit.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/thread_name.h"

namespace vouch::verifier {

GroupCommitter::GroupCommitter(store::AgentStore* store, int threads,
                               size_t max_batch)
    : store_(store), max_batch_(max_batch < 1 ? 1 : max_batch) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      SetThreadName("vouch-commit");
      Loop();
    });
  }
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
      batch.reserve(std::min(queue_.size(), max_batch_));
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

bool GroupCommitter::FailThisBatchForTests(const std::vector<Item>& batch) {
  if (fail_every_batch_ <= 0) return false;
  {
    absl::MutexLock lock(&mu_);
    if (++batches_seen_ % fail_every_batch_ != 0) return false;
  }
  std::string ids;
  for (const Item& item : batch) {
    absl::StrAppend(&ids, ids.empty() ? "" : ",", item.commit.attestation_id);
  }
  Log(LogLevel::kWarning, "test hook: failing a commit batch",
      {{"batch", batch.size()}, {"attestation_ids", ids}});
  return true;
}

void GroupCommitter::CommitBatch(std::vector<Item>& batch) {
  std::vector<const store::VerdictCommit*> commits;
  commits.reserve(batch.size());
  for (const Item& item : batch) commits.push_back(&item.commit);
  const absl::Time start = absl::Now();
  std::vector<absl::StatusOr<store::VerdictApplied>> results =
      FailThisBatchForTests(batch)
          ? std::vector<absl::StatusOr<store::VerdictApplied>>(
                batch.size(),
                absl::InternalError("test hook: commit task failed"))
          : store_->CommitVerdicts(commits);
  if (observer_) observer_(batch.size(), absl::Now() - start);
  if (results.size() != batch.size()) {  // A store bug: acknowledge nothing.
    results.assign(batch.size(),
                   absl::InternalError("verdict store returned short"));
  }
  {
    absl::MutexLock lock(&mu_);
    ++batches_;
    verdicts_ += batch.size();
    const bool committed =
        std::any_of(results.begin(), results.end(),
                    [](const auto& r) { return r.ok() && !r->fenced; });
    if (committed && exit_after_commits_ > 0 &&
        ++committed_batches_ >= exit_after_commits_) {
      Log(LogLevel::kWarning, "test hook: exiting after commit, before send",
          {{"batch", batch.size()}});
      std::_Exit(137);
    }
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i].done(std::move(results[i]));
  }
}

}  // namespace vouch::verifier
