// Transparency-log proofs from a large tree (docs/transparency-log.md).
// The tree's stored levels (every complete subtree, as translog_nodes holds
// them) are generated synthetically IN MEMORY (core::translog::InMemoryTree)
// from leaves SHA-256(0x00 || u64 index); VOUCH_BENCH_TRANSLOG_LEAVES sizes
// it (default 1,000,000; the documented run uses 10,000,000, ~640 MB).
// Measures proof generation (node plan + fold), client verification and
// the watchdog's monitor (rebuilding the root from new leaves);
// the PostgreSQL read of the O(log n) nodes is one indexed query on top.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

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

// The watchdog's monitor: appending 10,000 new leaves (their stored hashes)
// to the right edge of a tree of n leaves and taking the root, as a
// verifier does for every leaf the pool logs. Per leaf: items_per_second.
void BM_MonitorLeaves(benchmark::State& state) {
  constexpr uint64_t kBatch = 10000;
  const InMemoryTree& tree = Tree();
  const uint64_t n = tree.size() - kBatch;
  auto edge = tree.Get(vouch::core::translog::RangeNodes(0, n));
  std::vector<vouch::core::translog::NodeId> ids;
  for (uint64_t i = n; i < n + kBatch; ++i) ids.push_back({0, i});
  auto leaf_hashes = tree.Get(ids);
  auto root = vouch::core::translog::RootHash(n + kBatch, tree);
  if (!edge.ok() || !leaf_hashes.ok() || !root.ok()) {
    state.SkipWithError("setup failed");
    return;
  }
  for (auto _ : state) {
    auto range = vouch::core::translog::CompactRange::Create(n, *edge);
    if (!range.ok()) {
      state.SkipWithError("edge");
      return;
    }
    for (const Hash& leaf : *leaf_hashes) range->Append(leaf);
    if (range->Root() != *root) {
      state.SkipWithError("the rebuilt root differs");
      return;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}
BENCHMARK(BM_MonitorLeaves);

}  // namespace

BENCHMARK_MAIN();
