// File: verifier/executor.h
// A bounded pool of threads for the verifier's blocking work (database
// calls, quote and log verification), so gRPC reactions never block. The
// queue is bounded: Submit refuses work when it is full, and the caller
// answers UNAVAILABLE instead of queueing without limit. Thread-safe.
//
//   Executor ex(/*threads=*/4, /*max_queued=*/10000);
//   if (!ex.Submit([=] { ... })) reply_unavailable();
#ifndef VOUCH_VERIFIER_EXECUTOR_H_
#define VOUCH_VERIFIER_EXECUTOR_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace vouch::verifier {

class Executor {
 public:
  Executor(int threads, size_t max_queued);
  // Runs what is queued, then joins the threads.
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // False when the queue is full or the executor is stopping.
  bool Submit(std::function<void()> task);
  size_t queued() const;

 private:
  void Loop();

  const size_t max_queued_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_EXECUTOR_H_
