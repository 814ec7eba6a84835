// File: verifier/translog_runner.h
// The verifier's part in the transparency log (docs/transparency-log.md):
// every verifier tries for the pool's sequencer lease and, while it holds
// it, integrates the queue and signs tree heads; every verifier also
// watches the log: a newest tree head that does not verify under the pool
// log key, one inconsistent with the last head it saw, or queued entries
// older than the bound are logged as errors and counted in
// vouch_translog_alarms_total. It also monitors the tree: it rebuilds the
// root from every leaf added since the last head it accepted and compares
// it with the signed one, so every leaf it accepts is proven in the tree;
// a record this verifier committed (CommittedLeaves) that is not among
// them within the bound is an alarm too. One thread calls RunOnce; not
// thread-safe.
//
//   TranslogRunner runner(&log, &key, id, options, metrics);
//   runner.RunOnce(absl::Now());  // from the maintenance loop
#ifndef VOUCH_VERIFIER_TRANSLOG_RUNNER_H_
#define VOUCH_VERIFIER_TRANSLOG_RUNNER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
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
  // Leaves read per query while monitoring the tree.
  size_t monitor_chunk = 10000;
  // Overdue records looked up one by one per round (see CheckOverdue).
  size_t overdue_lookups = 64;
};

class TranslogRunner {
 public:
  TranslogRunner(store::PgTranslog* log, const core::translog::LogKey* key,
                 std::string id, TranslogOptions options,
                 VerifierMetrics* metrics,
                 store::CommittedLeaves* committed = nullptr)
      : log_(log),
        key_(key),
        id_(std::move(id)),
        options_(options),
        metrics_(metrics),
        committed_(committed) {}

  // One round: sequence (if the lease is ours), then watch.
  void RunOnce(absl::Time now);
  // The watchdog alone; false when it raised an alarm.
  bool Watch(absl::Time now);
  uint64_t alarms() const { return alarms_; }
  // This verifier's committed records proven in the tree so far, and those
  // still waiting for it.
  uint64_t records_proven() const { return records_proven_; }
  size_t records_waiting() const { return waiting_.size(); }

 private:
  void Alarm(const char* what, const std::string& detail);
  // A read that failed: a warning when the database is unreachable (try
  // again next round), else an alarm. False.
  bool ReadFailed(const char* what, const absl::Status& status);
  // Accepts `head` (verified, consistent with seen_) when the leaves since
  // the monitored size rebuild its root; false after an alarm.
  bool Monitor(const core::translog::TreeHead& head);
  // Waiting records past the bound: proven by lookup, or an alarm each.
  void CheckOverdue(absl::Time now);
  void TakeCommitted();

  store::PgTranslog* log_;
  const core::translog::LogKey* key_;
  std::string id_;
  TranslogOptions options_;
  VerifierMetrics* metrics_;           // nullptr: no metrics
  store::CommittedLeaves* committed_;  // nullptr: no own records to check
  std::optional<core::translog::TreeHead> seen_;
  // The right edge of the tree of seen_->tree_size leaves, as monitored.
  std::optional<core::translog::CompactRange> edge_;
  // This verifier's committed leaves not yet seen in the tree: when each
  // was committed.
  absl::flat_hash_map<core::translog::Hash, absl::Time> waiting_;
  uint64_t alarms_ = 0;
  uint64_t records_proven_ = 0;
};

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_TRANSLOG_RUNNER_H_
