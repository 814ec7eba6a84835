#include "tenant/ima_parallel.h"

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace vouch::tenant {

namespace ima = core::ima;

absl::StatusOr<ima::ImaEvaluation> EvaluateImaLogWhileLoading(
    const ima::ImaReplayState& state, absl::string_view chunk,
    const std::optional<ima::QuotedPcr10>& quoted, const ima::PathHashKey& key,
    std::function<absl::StatusOr<const ima::RuntimePolicy*>()> load_policy,
    const ima::ImaEvalOptions& options) {
  // What pass 1 tells the second thread, under `mu`.
  std::mutex mu;
  std::condition_variable cv;
  uint64_t proven = 0;
  std::optional<ima::HashAlg> binary_hash_alg;
  bool finished = false;  // Pass 1 is over: `limit` entries are accepted.
  uint64_t limit = 0;
  bool stop = false;  // Pass 1 failed: nothing is to be checked.
  // Written by the second thread, read after join().
  std::unique_ptr<ima::ImaContentChecks> checks;
  absl::Status failed = absl::OkStatus();

  std::thread second([&] {
    absl::StatusOr<const ima::RuntimePolicy*> policy = load_policy();
    if (!policy.ok()) {
      failed = policy.status();
      return;
    }
    auto started =
        ima::ImaContentChecks::Start(state, chunk, *policy, key, options);
    if (!started.ok()) {
      failed = started.status();
      return;
    }
    checks = *std::move(started);
    while (true) {
      uint64_t end = 0;
      bool last = false;
      std::optional<ima::HashAlg> alg;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock,
                [&] { return stop || finished || proven > checks->checked(); });
        if (stop) return;
        last = finished;
        end = last ? std::min(proven, limit) : proven;
        alg = binary_hash_alg;
      }
      // Past the accepted prefix: Complete() redoes the checks.
      if (checks->checked() > end) return;
      if (absl::Status s = checks->CheckUpTo(end, alg); !s.ok()) {
        failed = s;
        return;
      }
      if (last) return;
    }
  });
  auto join = [&](bool stopping) {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = stopping;
    }
    cv.notify_all();
    second.join();
  };

  absl::StatusOr<ima::ImaReplayOutcome> pass1 =
      ima::ReplayImaLog(state, chunk, quoted, options,
                        [&](uint64_t n, std::optional<ima::HashAlg> alg) {
                          {
                            std::lock_guard<std::mutex> lock(mu);
                            proven = n;
                            binary_hash_alg = alg;
                          }
                          cv.notify_all();
                        });
  if (!pass1.ok() || !pass1->proven) {
    join(true);
    if (!pass1.ok()) return pass1.status();
    return std::move(pass1->evaluation);
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    proven = pass1->evaluation.entries_parsed;
    binary_hash_alg = pass1->binary_hash_alg;
    finished = true;
    limit = pass1->evaluation.entries_accepted;
  }
  cv.notify_all();
  join(false);
  if (!failed.ok()) return failed;
  return checks->Complete(*std::move(pass1));
}

}  // namespace vouch::tenant
