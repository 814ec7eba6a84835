// What recording a verdict's metrics costs in the verifier (the reactor's
// VerifierMetrics::Verdict: two counters' atomic adds, a failure-code lookup
// for failed verdicts, one histogram observation) and a group-commit batch,
// single-threaded and from two threads at once (contended atomics and the
// histogram's lock). Compare with the verifier's CPU per quote in
// bench/README.md (about 120-250 µs on a shared 2-core VM).
#include <benchmark/benchmark.h>

#include "absl/time/time.h"
#include "server/metrics.h"
#include "verifier/verifier_metrics.h"

namespace {

vouch::verifier::VerifierMetrics& Metrics() {
  static auto* common = new vouch::server::Metrics("bench");
  static auto* metrics = new vouch::verifier::VerifierMetrics(common);
  return *metrics;
}

void BM_RecordPassVerdict(benchmark::State& state) {
  vouch::v1::Verdict v;
  v.set_state(vouch::v1::ATTESTATION_STATE_PASS);
  auto& m = Metrics();
  for (auto _ : state) m.Verdict(v, absl::Microseconds(800));
}
BENCHMARK(BM_RecordPassVerdict)->Threads(1)->Threads(2);

void BM_RecordFailVerdictTwoReasons(benchmark::State& state) {
  vouch::v1::Verdict v;
  v.set_state(vouch::v1::ATTESTATION_STATE_FAIL);
  v.add_failures()->set_code(vouch::v1::FAILURE_CODE_NONCE_MISMATCH);
  v.add_failures()->set_code(vouch::v1::FAILURE_CODE_PCR_DIGEST_MISMATCH);
  auto& m = Metrics();
  for (auto _ : state) m.Verdict(v, absl::Microseconds(800));
}
BENCHMARK(BM_RecordFailVerdictTwoReasons)->Threads(1)->Threads(2);

void BM_RecordCommitBatch(benchmark::State& state) {
  auto& m = Metrics();
  for (auto _ : state) m.Batch(12, absl::Microseconds(900));
}
BENCHMARK(BM_RecordCommitBatch);

}  // namespace

BENCHMARK_MAIN();
