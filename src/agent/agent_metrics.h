// File: agent/agent_metrics.h
// The agent's Prometheus metrics: pushes by result, the time to build an
// Evidence (TPM quote and log reads), attestation-stream connects by
// result, and the last verdict the agent received (one-hot by state, with
// its time). /readyz reports the agent ready while a stream is open.
// Thread-safe.
//
//   AgentMetrics am(metrics.get());
//   am.Pushed(true, took);
#ifndef VOUCH_AGENT_AGENT_METRICS_H_
#define VOUCH_AGENT_AGENT_METRICS_H_

#include <atomic>

#include "absl/time/time.h"
#include "server/metrics.h"

namespace vouch::agent {

class AgentMetrics {
 public:
  explicit AgentMetrics(server::Metrics* metrics);

  // An Evidence built and sent (`ok`), or not; `quote` is the build time.
  void Pushed(bool ok, absl::Duration quote);
  // An attempt to open the attestation stream.
  void Connected(bool ok);
  void StreamClosed() { streaming_.store(false); }
  // A Verdict arrived with this v1::AttestationState.
  void Verdict(int state, absl::Time at);

  bool streaming() const { return streaming_.load(); }

 private:
  prometheus::Counter* pushes_ok_;
  prometheus::Counter* pushes_failed_;
  prometheus::Histogram* quote_;
  prometheus::Counter* connects_ok_;
  prometheus::Counter* connects_failed_;
  prometheus::Gauge* last_verdict_[6];
  prometheus::Gauge* last_verdict_time_;
  std::atomic<bool> streaming_{false};
};

}  // namespace vouch::agent

#endif  // VOUCH_AGENT_AGENT_METRICS_H_
