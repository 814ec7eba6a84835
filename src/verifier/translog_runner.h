// File: verifier/translog_runner.h
// The verifier's part in the transparency log (docs/transparency-log.md):
// every verifier tries for the pool's sequencer lease and, while it holds
// it, integrates the queue and signs tree heads; every verifier also
// watches the log: a newest tree head that does not verify under the pool
// log key, one inconsistent with the last head it saw, or queued entries
// older than the bound are logged as errors and counted in
// vouch_translog_alarms_total. One thread calls RunOnce; not thread-safe.
//
//   TranslogRunner runner(&log, &key, id, options, metrics);
//   runner.RunOnce(absl::Now());  // from the maintenance loop
#ifndef VOUCH_VERIFIER_TRANSLOG_RUNNER_H_
#define VOUCH_VERIFIER_TRANSLOG_RUNNER_H_

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "core/translog/tree_head.h"
#include "store/pg_translog.h"
#include "verifier/verifier_metrics.h"

namespace vouch::verifier {

struct TranslogOptions {
  absl::Duration lease = absl::Seconds(15);
  size_t batch = 1000;
  // Entries queued longer than this are reported missing from the log.
  absl::Duration bound = absl::Minutes(1);
};

class TranslogRunner {
 public:
  TranslogRunner(store::PgTranslog* log, const core::translog::LogKey* key,
                 std::string id, TranslogOptions options,
                 VerifierMetrics* metrics)
      : log_(log),
        key_(key),
        id_(std::move(id)),
        options_(options),
        metrics_(metrics) {}

  // One round: sequence (if the lease is ours), then watch.
  void RunOnce(absl::Time now);
  // The watchdog alone; false when it raised an alarm.
  bool Watch(absl::Time now);
  uint64_t alarms() const { return alarms_; }

 private:
  void Alarm(const char* what, const std::string& detail);

  store::PgTranslog* log_;
  const core::translog::LogKey* key_;
  std::string id_;
  TranslogOptions options_;
  VerifierMetrics* metrics_;  // nullptr: no metrics
  std::optional<core::translog::TreeHead> seen_;
  uint64_t alarms_ = 0;
};

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_TRANSLOG_RUNNER_H_
