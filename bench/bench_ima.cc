// IMA verification speed: a generated log of N entries (95 % listed in an
// N-entry policy, 5 % under excluded directories) against that policy with
// 40 exclude regexes, and loading the policy JSON. N comes from
// VOUCH_BENCH_IMA_ENTRIES (default 20000).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/bytes.h"
#include "core/ima/ima_evaluator.h"
#include "core/ima/ima_log_writer.h"
#include "core/ima/runtime_policy.h"

namespace vouch::core::ima {
namespace {

size_t Entries() {
  const char* n = std::getenv("VOUCH_BENCH_IMA_ENTRIES");
  return n && *n ? std::strtoull(n, nullptr, 10) : 20000;
}

struct Fixture {
  std::string ascii;
  std::string binary;
  std::string policy_json;
  std::shared_ptr<const RuntimePolicy> policy;
  QuotedPcr10 quote_sha1;
  QuotedPcr10 quote_both;
  size_t n = 0;
};

const Fixture& Get() {
  static const Fixture* f = [] {
    auto* fx = new Fixture;
    fx->n = Entries();
    Digester sha256(HashAlg::kSha256);
    std::vector<ImaRecord> records;
    records.reserve(fx->n);
    std::string json = R"({"meta": {"version": 1}, "release": 0, "digests": {)";
    for (size_t i = 0; i < fx->n; ++i) {
      ImaRecord r;
      r.digest.resize(32);
      std::string seed = absl::StrCat("file ", i);
      sha256.Digest(seed, r.digest.data());
      if (i % 20 == 19) {
        r.path = absl::StrCat("/tmp/build-", i % 1000, "/obj/file", i, ".o");
      } else {
        r.path = absl::StrCat("/usr/lib/x86_64-linux-gnu/libexample", i, ".so.",
                              i % 7);
      }
      absl::StrAppend(&json, i ? ",\n" : "", "\"",
                      i % 20 == 19 ? absl::StrCat("/opt/pkg", i) : r.path,
                      "\": [\"", HexEncode(r.digest), "\"]");
      records.push_back(std::move(r));
    }
    json += "}, \"excludes\": [";
    for (int k = 0; k < 39; ++k) {
      absl::StrAppend(&json, "\"/var/cache/app", k, "/.*\", ");
    }
    json += R"("/tmp/.*"], "keyrings": {}, "ima": {"ignored_keyrings": [],)"
            R"( "log_hash_alg": "sha1", "dm_policy": null}, "ima-buf": {},)"
            R"( "verification-keys": ""})";
    fx->policy_json = std::move(json);
    PolicyLoadOptions o;
    o.path_hash_key = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    fx->policy = *RuntimePolicy::FromJson(fx->policy_json, o);
    ImaLogWriter w;
    for (const ImaRecord& r : records) {
      w.Append(r, &fx->ascii, LogFormat::kAscii);
      w.Append(r, &fx->binary, LogFormat::kBinary);
    }
    ImaEvalOptions both;
    auto all = *EvaluateImaLog({}, fx->ascii, std::nullopt, nullptr, both);
    fx->quote_sha1.sha1 = all.state.pcr_sha1;
    fx->quote_both.sha1 = all.state.pcr_sha1;
    fx->quote_both.sha256 = all.state.pcr_sha256;
    return fx;
  }();
  return *f;
}

void Check(benchmark::State& state, const std::string& log,
           const QuotedPcr10& quote, bool sha256_bank) {
  const Fixture& f = Get();
  ImaEvalOptions o;
  o.replay_sha256 = sha256_bank;
  for (auto _ : state) {
    auto r = EvaluateImaLog({}, log, quote, f.policy.get(), o);
    if (!r.ok() || !r->verdict.passed() || r->entries_accepted != f.n) {
      state.SkipWithError("the generated log did not pass");
      break;
    }
    benchmark::DoNotOptimize(r->state);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * f.n));
  state.counters["entries"] = static_cast<double>(f.n);
}

void BM_FullCheckAsciiSha1(benchmark::State& state) {
  Check(state, Get().ascii, Get().quote_sha1, false);
}
void BM_FullCheckBinarySha1(benchmark::State& state) {
  Check(state, Get().binary, Get().quote_sha1, false);
}
void BM_FullCheckAsciiBothBanks(benchmark::State& state) {
  Check(state, Get().ascii, Get().quote_both, true);
}

void BM_PolicyLoad(benchmark::State& state) {
  const Fixture& f = Get();
  size_t bytes = 0;
  for (auto _ : state) {
    auto p = RuntimePolicy::FromJson(f.policy_json);
    if (!p.ok()) {
      state.SkipWithError(std::string(p.status().message()).c_str());
      break;
    }
    bytes = (*p)->MemoryBytes();
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * f.n));
  state.counters["bytes_per_entry"] =
      static_cast<double>(bytes) / static_cast<double>(f.n);
  state.counters["json_MB"] = static_cast<double>(f.policy_json.size()) / 1e6;
}

BENCHMARK(BM_FullCheckAsciiSha1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FullCheckBinarySha1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FullCheckAsciiBothBanks)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PolicyLoad)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace vouch::core::ima

BENCHMARK_MAIN();
