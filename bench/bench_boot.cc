// Google Benchmark: measured-boot event logs. The goal of issue #5 is parse
// + replay of a ~50 KB log in <= 1 ms; the real 48 KB keylime log
// (binary_bios_measurements: SHA-1 + SHA-256 banks, 121 events) is the input.
// BM_ParseReplaySynthetic repeats that log's events up to
// VOUCH_BENCH_BOOT_LOG_KB KiB (default 256) to show how it scales.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "core/boot/boot_policy.h"
#include "core/boot/event_log.h"
#include "core/boot/replay.h"

namespace {

namespace boot = vouch::core::boot;

vouch::Bytes ReadLog(const std::string& name) {
  std::ifstream in(std::string(VOUCH_TEST_DATA_DIR) + "/" + name,
                   std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return vouch::ToBytes(s.str());
}

const vouch::Bytes& Lenovo() {
  static const vouch::Bytes* log =
      new vouch::Bytes(ReadLog("keylime/binary_bios_measurements"));
  return *log;
}

void BM_Parse(benchmark::State& state) {
  const vouch::Bytes& bytes = Lenovo();
  for (auto _ : state) {
    auto log = boot::ParseEventLog(bytes);
    if (!log.ok()) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(log);
  }
  state.SetBytesProcessed(state.iterations() * bytes.size());
}
BENCHMARK(BM_Parse)->Unit(benchmark::kMicrosecond);

// The timed loop of the parse + replay benchmarks.
void ParseAndReplay(benchmark::State& state, const vouch::Bytes& bytes) {
  for (auto _ : state) {
    auto log = boot::ParseEventLog(bytes);
    if (!log.ok()) return state.SkipWithError("parse failed");
    auto banks = boot::Replay(*log);
    benchmark::DoNotOptimize(banks);
  }
  state.SetBytesProcessed(state.iterations() * bytes.size());
}

void BM_ParseReplay(benchmark::State& state) {
  ParseAndReplay(state, Lenovo());
}
BENCHMARK(BM_ParseReplay)->Unit(benchmark::kMicrosecond);

void BM_Evaluate(benchmark::State& state) {
  vouch::Bytes bytes = ReadLog("keylime/binary_bios_measurements-secureboot");
  auto log = boot::ParseEventLog(bytes);
  auto banks = log.ok() ? boot::Replay(*log) : log.status();
  auto json = log.ok() ? boot::CreateReferenceState(*log) : log.status();
  if (!banks.ok() || !json.ok()) return state.SkipWithError("setup failed");
  auto policy = boot::BootPolicy::FromJson(*json);
  if (!policy.ok()) return state.SkipWithError("policy failed");
  for (auto _ : state) {
    auto verdict = policy->Evaluate(*log, *banks);
    if (!verdict.passed()) state.SkipWithError("verdict failed");
    benchmark::DoNotOptimize(verdict);
  }
}
BENCHMARK(BM_Evaluate)->Unit(benchmark::kMicrosecond);

// The real log's header, then its other entries repeated up to the size.
vouch::Bytes Synthetic(size_t kib) {
  const vouch::Bytes& real = Lenovo();
  auto log = boot::ParseEventLog(real);
  if (!log.ok() || log->events.size() < 2) return {};
  size_t body = log->events[1].offset;
  vouch::Bytes out(real.begin(), real.begin() + body);
  while (out.size() < kib * 1024) {
    // Skip the StartupLocality event (entry 1): it may appear once.
    out.insert(out.end(), real.begin() + log->events[2].offset, real.end());
  }
  return out;
}

void BM_ParseReplaySynthetic(benchmark::State& state) {
  const char* env = std::getenv("VOUCH_BENCH_BOOT_LOG_KB");
  size_t kib = env ? std::strtoul(env, nullptr, 10) : 256;
  vouch::Bytes bytes = Synthetic(kib);
  ParseAndReplay(state, bytes);
  state.SetLabel(std::to_string(bytes.size() / 1024) + " KiB");
}
BENCHMARK(BM_ParseReplaySynthetic)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
