// File: verifier/latency_recorder.h
// The verifier's time from an Evidence read to its Verdict handed to gRPC,
// and the part of it spent committing (queued for and in the group
// commit), collected per verdict and summarised per window (p50, p99,
// max) by the maintenance loop, which logs them. Bounded: at most 2^20
// samples per window. Thread-safe.
//
//   LatencyRecorder r;
//   r.Record(sent - received, sent - submitted);      // per verdict
//   LatencyRecorder::Stats s = r.Take();              // per window
#ifndef VOUCH_VERIFIER_LATENCY_RECORDER_H_
#define VOUCH_VERIFIER_LATENCY_RECORDER_H_

#include <cstddef>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vouch::verifier {

class LatencyRecorder {
 public:
  struct Stats {
    size_t verdicts = 0;
    absl::Duration p50, p99, max;
    absl::Duration commit_p50, commit_p99;
  };
  void Record(absl::Duration total, absl::Duration commit);
  // The samples since the last call (then reset).
  Stats Take();

 private:
  absl::Mutex mu_;  // A leaf: nothing else is locked under it.
  std::vector<absl::Duration> totals_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Duration> commits_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_LATENCY_RECORDER_H_
