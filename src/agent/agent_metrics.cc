#include "agent/agent_metrics.h"

#include <string>

#include "core/agent_state.h"

namespace vouch::agent {

AgentMetrics::AgentMetrics(server::Metrics* metrics) {
  prometheus::Registry& r = metrics->registry();
  auto& pushes = prometheus::BuildCounter()
                     .Name("vouch_agent_pushes_total")
                     .Help(
                         "Evidence pushes by result (failed: the quote or "
                         "a log read failed, or the stream broke)")
                     .Register(r);
  pushes_ok_ = &pushes.Add({{"result", "sent"}});
  pushes_failed_ = &pushes.Add({{"result", "failed"}});
  quote_ = &prometheus::BuildHistogram()
                .Name("vouch_agent_quote_duration_seconds")
                .Help(
                    "Time to build one Evidence: the TPM quote and the "
                    "IMA and boot log reads")
                .Register(r)
                .Add({}, server::LatencyBuckets());
  auto& connects = prometheus::BuildCounter()
                       .Name("vouch_agent_stream_connects_total")
                       .Help(
                           "Attempts to open the attestation stream "
                           "(reconnects included), by result")
                       .Register(r);
  connects_ok_ = &connects.Add({{"result", "ok"}});
  connects_failed_ = &connects.Add({{"result", "failed"}});
  auto& last = prometheus::BuildGauge()
                   .Name("vouch_agent_last_verdict")
                   .Help(
                       "1 for the state of the last verdict received, 0 "
                       "for the others")
                   .Register(r);
  for (int s = 0; s < 6; ++s) {
    last_verdict_[s] =
        &last.Add({{"result", std::string(core::AgentStateName(s))}});
  }
  last_verdict_time_ =
      &prometheus::BuildGauge()
           .Name("vouch_agent_last_verdict_timestamp_seconds")
           .Help("When the last verdict arrived (Unix time); 0 before one")
           .Register(r)
           .Add({});
}

void AgentMetrics::Pushed(bool ok, absl::Duration quote) {
  (ok ? pushes_ok_ : pushes_failed_)->Increment();
  if (ok) quote_->Observe(absl::ToDoubleSeconds(quote));
}

void AgentMetrics::Connected(bool ok) {
  (ok ? connects_ok_ : connects_failed_)->Increment();
  streaming_.store(ok);
}

void AgentMetrics::Verdict(int state, absl::Time at) {
  const int s = state >= 0 && state < 6 ? state : 0;
  for (int i = 0; i < 6; ++i) last_verdict_[i]->Set(i == s ? 1 : 0);
  last_verdict_time_->Set(absl::ToDoubleSeconds(at - absl::UnixEpoch()));
}

}  // namespace vouch::agent
