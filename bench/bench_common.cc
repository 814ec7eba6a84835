// Google Benchmark: the hot helpers of src/common (hex of digests is on the
// IMA path; log formatting on every verdict).
#include <benchmark/benchmark.h>

#include "common/bytes.h"
#include "common/logging.h"

namespace {

void BM_HexDecodeSha256(benchmark::State& state) {
  const std::string hex(64, 'a');
  for (auto _ : state) {
    auto bytes = vouch::HexDecode(hex);
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HexDecodeSha256);

void BM_HexEncodeSha256(benchmark::State& state) {
  const vouch::Bytes digest(32, 0x5a);
  for (auto _ : state) {
    std::string hex = vouch::HexEncode(digest);
    benchmark::DoNotOptimize(hex);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HexEncodeSha256);

void BM_FormatLogLine(benchmark::State& state) {
  for (auto _ : state) {
    std::string line = vouch::FormatLogLine(
        vouch::LogLevel::kInfo, "vouch-verifier", "verdict",
        {{"agent_id", "node-0042"}, {"state", "pass"}, {"entries", 1234}});
    benchmark::DoNotOptimize(line);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FormatLogLine);

}  // namespace

BENCHMARK_MAIN();
