// File: verifier/verifier_metrics.h
// The verifier's Prometheus metrics, resolved once at start so recording a
// verdict is a few atomic adds and two histogram observations: no label
// strings are built and no map is searched by string on the hot path. No
// label takes an agent id or other unbounded value (failure codes and
// states are closed enums). The pure AttestationSession knows nothing of
// this; the reactor and the maintenance loop record. Thread-safe.
//
//   VerifierMetrics vm(metrics.get());
//   vm.Verdict(verdict, evidence_to_verdict);
#ifndef VOUCH_VERIFIER_VERIFIER_METRICS_H_
#define VOUCH_VERIFIER_VERIFIER_METRICS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "server/metrics.h"
#include "vouch/v1/attestation.pb.h"

namespace vouch::verifier {

class VerifierMetrics {
 public:
  explicit VerifierMetrics(server::Metrics* metrics);

  server::Metrics& common() { return *metrics_; }

  // A Verdict sent to an agent, `latency` after its Evidence was read.
  void Verdict(const v1::Verdict& verdict, absl::Duration latency);
  // One group-commit transaction of `verdicts` verdicts.
  void Batch(size_t verdicts, absl::Duration took);
  // Roll-outs (docs/ima.md): entries an update window's candidate accepted;
  // would-be failures of shadow versions.
  void WindowAccepted(uint64_t n) {
    window_accepted_->Increment(static_cast<double>(n));
  }
  void ShadowWouldFail(uint64_t n) {
    shadow_failures_->Increment(static_cast<double>(n));
  }
  void ImaEntriesChecked(uint64_t n) {
    ima_entries_->Increment(static_cast<double>(n));
  }
  void TookOver() { takeovers_->Increment(); }
  // A stream ended because another verifier holds the agent now.
  void Fenced() { fenced_->Increment(); }
  void TimedOut(int64_t n) { timeouts_->Increment(static_cast<double>(n)); }
  void SweepFailed() { sweep_errors_->Increment(); }
  // The transparency-log watchdog saw the log misbehave (a tree head that
  // does not verify or is inconsistent with an earlier one, or entries not
  // integrated within the bound). Never expected: alert on any increase.
  void TranslogAlarm() { translog_alarms_->Increment(); }
  void TranslogRecordsProven(uint64_t n) {
    translog_proven_->Increment(static_cast<double>(n));
  }
  void TranslogUnchecked(uint64_t n) {
    translog_unchecked_->Increment(static_cast<double>(n));
  }
  void TranslogIntegrated(uint64_t n) {
    translog_integrated_->Increment(static_cast<double>(n));
  }

  // Gauges set by the maintenance loop or at scrape time.
  void SetStreams(size_t n) { streams_->Set(static_cast<double>(n)); }
  void SetAgents(const std::map<std::string, int64_t>& counts, bool pool);
  // Monotonic totals kept elsewhere (policy cache, database pool): the
  // counters advance to them.
  void SetPolicyTotals(uint64_t hits, uint64_t loads);
  void SetPoolStats(int max, int open, int in_use, uint64_t acquired,
                    uint64_t failed, double wait_seconds);

 private:
  void RegisterVerdictMetrics(prometheus::Registry& r);
  void RegisterCounters(prometheus::Registry& r);
  void RegisterGauges(prometheus::Registry& r);
  static void AdvanceTo(prometheus::Counter* c, double total);

  server::Metrics* metrics_;
  prometheus::Counter* by_result_[6];  // v1::AttestationState values.
  prometheus::Counter* failure_other_;
  absl::flat_hash_map<int, prometheus::Counter*> failures_;
  prometheus::Histogram* latency_;
  prometheus::Histogram* commit_latency_;
  prometheus::Histogram* commit_batch_;
  prometheus::Counter* ima_entries_;
  prometheus::Counter* window_accepted_;
  prometheus::Counter* shadow_failures_;
  prometheus::Counter* takeovers_;
  prometheus::Counter* fenced_;
  prometheus::Counter* timeouts_;
  prometheus::Counter* sweep_errors_;
  prometheus::Counter* translog_alarms_;
  prometheus::Counter* translog_integrated_;
  prometheus::Counter* translog_proven_;
  prometheus::Counter* translog_unchecked_;
  prometheus::Gauge* streams_;
  prometheus::Family<prometheus::Gauge>* agents_;
  std::map<std::pair<std::string, bool>, prometheus::Gauge*> agent_gauges_;
  prometheus::Counter* policy_hits_;
  prometheus::Counter* policy_loads_;
  prometheus::Gauge* db_max_;
  prometheus::Gauge* db_open_;
  prometheus::Gauge* db_in_use_;
  prometheus::Counter* db_acquired_;
  prometheus::Counter* db_failed_;
  prometheus::Counter* db_wait_;
};

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_VERIFIER_METRICS_H_
