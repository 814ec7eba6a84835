#include "verifier/verifier_metrics.h"

#include <google/protobuf/descriptor.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "core/agent_state.h"
#include "vouch/v1/common.pb.h"

namespace vouch::verifier {
namespace {

// FAILURE_CODE_NONCE_MISMATCH -> "nonce_mismatch".
std::string FailureLabel(const std::string& enum_name) {
  absl::string_view name = enum_name;
  absl::ConsumePrefix(&name, "FAILURE_CODE_");
  return absl::AsciiStrToLower(name);
}

}  // namespace

VerifierMetrics::VerifierMetrics(server::Metrics* metrics) : metrics_(metrics) {
  prometheus::Registry& r = metrics->registry();
  RegisterVerdictMetrics(r);
  RegisterCounters(r);
  RegisterGauges(r);
}

// Verdicts by result and failure code, and the latency histograms.
void VerifierMetrics::RegisterVerdictMetrics(prometheus::Registry& r) {
  auto& verdicts = prometheus::BuildCounter()
                       .Name("vouch_verdicts_total")
                       .Help("Verdicts sent to agents, by result")
                       .Register(r);
  for (int s = 0; s < 6; ++s) {
    by_result_[s] =
        &verdicts.Add({{"result", std::string(core::AgentStateName(s))}});
  }
  auto& failures =
      prometheus::BuildCounter()
          .Name("vouch_verdict_failures_total")
          .Help("Failure reasons in failed verdicts, by failure code")
          .Register(r);
  const google::protobuf::EnumDescriptor* codes = v1::FailureCode_descriptor();
  for (int i = 0; i < codes->value_count(); ++i) {
    const google::protobuf::EnumValueDescriptor* v = codes->value(i);
    if (v->number() == 0) continue;
    failures_[v->number()] = &failures.Add({{"code", FailureLabel(v->name())}});
  }
  failure_other_ = &failures.Add({{"code", "other"}});
  latency_ = &prometheus::BuildHistogram()
                  .Name("vouch_verdict_latency_seconds")
                  .Help(
                      "From reading an agent's Evidence to sending its "
                      "Verdict (verification and the commit)")
                  .Register(r)
                  .Add({}, server::LatencyBuckets());
  commit_latency_ = &prometheus::BuildHistogram()
                         .Name("vouch_commit_duration_seconds")
                         .Help("One group-commit transaction of verdicts")
                         .Register(r)
                         .Add({}, server::LatencyBuckets());
  commit_batch_ = &prometheus::BuildHistogram()
                       .Name("vouch_commit_verdicts")
                       .Help("Verdicts per group-commit transaction")
                       .Register(r)
                       .Add({}, prometheus::Histogram::BucketBoundaries{
                                    1, 2, 4, 8, 16, 32, 64, 128, 256, 1024});
}

void VerifierMetrics::RegisterCounters(prometheus::Registry& r) {
  auto counter = [&r](const char* name, const char* help) {
    return &prometheus::BuildCounter().Name(name).Help(help).Register(r).Add(
        {});
  };
  ima_entries_ = counter("vouch_ima_entries_checked_total",
                         "IMA log entries replayed and evaluated");
  window_accepted_ =
      counter("vouch_ima_window_accepted_total",
              "IMA entries the active runtime policy failed and an update "
              "window's candidate accepted");
  shadow_failures_ =
      counter("vouch_shadow_would_fail_total",
              "IMA entries a shadow policy version would have failed");
  takeovers_ = counter("vouch_takeovers_total",
                       "Agents this verifier took ownership of (each bumps "
                       "the agent's epoch)");
  fenced_ = counter("vouch_streams_fenced_total",
                    "Streams ended because another verifier took the agent "
                    "over");
  timeouts_ = counter("vouch_sweeper_timeouts_total",
                      "Agents this verifier's sweeper marked timeout");
  sweep_errors_ = counter("vouch_sweeper_errors_total",
                          "Timeout sweeps that failed (database errors)");
  translog_alarms_ = counter(
      "vouch_translog_alarms_total",
      "Transparency-log watchdog alarms: a tree head that does not verify, "
      "is inconsistent with an earlier one or is not made up of the log's "
      "leaves, entries left unintegrated past the bound, or a record this "
      "verifier committed missing from the tree");
  translog_proven_ =
      counter("vouch_translog_records_proven_total",
              "Records this verifier committed that it found in the "
              "transparency log's tree (under a verified tree head)");
  translog_unchecked_ =
      counter("vouch_translog_records_unchecked_total",
              "Records this verifier committed that it did not check "
              "against the log (too many were waiting for the tree)");
  translog_integrated_ =
      counter("vouch_translog_integrated_total",
              "Log entries this verifier integrated while it held the "
              "sequencer lease");
  policy_hits_ = counter("vouch_policy_cache_hits_total",
                         "Policy lookups answered from the cache");
  policy_loads_ = counter("vouch_policy_cache_loads_total",
                          "Policy versions loaded and parsed");
  db_acquired_ = counter("vouch_db_pool_acquired_total",
                         "Database connections handed out by the pool");
  db_failed_ = counter("vouch_db_pool_errors_total",
                       "Database connection requests that failed (no "
                       "connection free in time, or connecting failed)");
  db_wait_ = counter("vouch_db_pool_wait_seconds_total",
                     "Time spent waiting for a database connection");
}

void VerifierMetrics::RegisterGauges(prometheus::Registry& r) {
  auto gauge = [&r](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
  };
  streams_ = gauge("vouch_attest_streams", "Attest streams open now");
  db_max_ = gauge("vouch_db_pool_max_connections",
                  "Most database connections the pool opens");
  db_open_ =
      gauge("vouch_db_pool_open_connections", "Database connections open now");
  db_in_use_ = gauge("vouch_db_pool_in_use_connections",
                     "Database connections handed out now");
  agents_ = &prometheus::BuildGauge()
                 .Name("vouch_agents")
                 .Help(
                     "Agents by state: scope=\"verifier\" those this "
                     "verifier holds, scope=\"pool\" all enrolled agents "
                     "(reported by one elected verifier only)")
                 .Register(r);
}

void VerifierMetrics::Verdict(const v1::Verdict& verdict,
                              absl::Duration latency) {
  const int state = verdict.state();
  by_result_[state >= 0 && state < 6 ? state : 0]->Increment();
  for (const v1::Failure& f : verdict.failures()) {
    auto it = failures_.find(f.code());
    (it != failures_.end() ? it->second : failure_other_)->Increment();
  }
  latency_->Observe(absl::ToDoubleSeconds(latency));
}

void VerifierMetrics::Batch(size_t verdicts, absl::Duration took) {
  commit_batch_->Observe(static_cast<double>(verdicts));
  commit_latency_->Observe(absl::ToDoubleSeconds(took));
}

void VerifierMetrics::SetAgents(const std::map<std::string, int64_t>& counts,
                                bool pool) {
  // Every known state gets a series, so a state that empties reads 0.
  for (const char* s : {"pending", "pass", "fail", "timeout"}) {
    auto key = std::make_pair(std::string(s), pool);
    prometheus::Gauge*& g = agent_gauges_[key];
    if (g == nullptr) {
      g = &agents_->Add({{"state", s}, {"scope", pool ? "pool" : "verifier"}});
    }
    auto it = counts.find(s);
    g->Set(it == counts.end() ? 0 : static_cast<double>(it->second));
  }
}

void VerifierMetrics::AdvanceTo(prometheus::Counter* c, double total) {
  const double now = c->Value();
  if (total > now) c->Increment(total - now);
}

void VerifierMetrics::SetPolicyTotals(uint64_t hits, uint64_t loads) {
  AdvanceTo(policy_hits_, static_cast<double>(hits));
  AdvanceTo(policy_loads_, static_cast<double>(loads));
}

void VerifierMetrics::SetPoolStats(int max, int open, int in_use,
                                   uint64_t acquired, uint64_t failed,
                                   double wait_seconds) {
  db_max_->Set(max);
  db_open_->Set(open);
  db_in_use_->Set(in_use);
  AdvanceTo(db_acquired_, static_cast<double>(acquired));
  AdvanceTo(db_failed_, static_cast<double>(failed));
  AdvanceTo(db_wait_, wait_seconds);
}

}  // namespace vouch::verifier
