// Transparency-log proofs from a large tree (docs/transparency-log.md).
// The tree's stored levels (every complete subtree, as translog_nodes holds
// them) are generated synthetically IN MEMORY (core::translog::InMemoryTree)
// from leaves SHA-256(0x00 || u64 index); VOUCH_BENCH_TRANSLOG_LEAVES sizes
// it (default 1,000,000; the documented run uses 10,000,000, ~640 MB).
// Measures proof generation (node plan + fold) and client verification;
// the PostgreSQL read of the O(log n) nodes is one indexed query on top.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/translog/merkle.h"

namespace {

using vouch::core::translog::Hash;
using vouch::core::translog::InMemoryTree;

uint64_t Leaves() {
  const char* env = std::getenv("VOUCH_BENCH_TRANSLOG_LEAVES");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 1000000;
}

const InMemoryTree& Tree() {
  static const InMemoryTree* tree = [] {
    auto* t = new InMemoryTree();
    const uint64_t n = Leaves();
    for (uint64_t i = 0; i < n; ++i) {
      std::string leaf(reinterpret_cast<const char*>(&i), sizeof(i));
      t->Append(vouch::core::translog::LeafHash(leaf));
    }
    return t;
  }();
  return *tree;
}

// A pseudo-random index sequence (no std::rand: reproducible).
uint64_t Next(uint64_t& x) {
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

void BM_InclusionProof(benchmark::State& state) {
  const InMemoryTree& tree = Tree();
  const uint64_t n = tree.size();
  uint64_t x = 88172645463325252ull;
  for (auto _ : state) {
    auto proof = vouch::core::translog::InclusionProof(Next(x) % n, n, tree);
    benchmark::DoNotOptimize(proof);
  }
  state.counters["leaves"] = static_cast<double>(n);
}
BENCHMARK(BM_InclusionProof);

void BM_ConsistencyProof(benchmark::State& state) {
  const InMemoryTree& tree = Tree();
  const uint64_t n = tree.size();
  uint64_t x = 2463534242ull;
  for (auto _ : state) {
    auto proof =
        vouch::core::translog::ConsistencyProof(1 + Next(x) % (n - 1), n, tree);
    benchmark::DoNotOptimize(proof);
  }
  state.counters["leaves"] = static_cast<double>(n);
}
BENCHMARK(BM_ConsistencyProof);

void BM_VerifyInclusion(benchmark::State& state) {
  const InMemoryTree& tree = Tree();
  const uint64_t n = tree.size();
  const uint64_t index = n / 3;
  auto proof = vouch::core::translog::InclusionProof(index, n, tree);
  auto root = vouch::core::translog::RootHash(n, tree);
  auto leaf = tree.Get({vouch::core::translog::NodeId{0, index}});
  if (!proof.ok() || !root.ok() || !leaf.ok()) {
    state.SkipWithError("setup failed");
    return;
  }
  for (auto _ : state) {
    auto ok = vouch::core::translog::VerifyInclusion(index, n, (*leaf)[0],
                                                     *proof, *root);
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_VerifyInclusion);

}  // namespace

BENCHMARK_MAIN();
