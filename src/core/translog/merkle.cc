// SHA256_Init/Update/Final: the allocation-free path, as core/ima/hash_alg.cc
// explains (EVP re-creates its provider context per digest).
#define OPENSSL_SUPPRESS_DEPRECATED
#include "core/translog/merkle.h"

#include <openssl/sha.h>

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace vouch::core::translog {
namespace {

// Largest power of two strictly smaller than n (n >= 2): RFC 9162 2.1.1's k.
uint64_t SplitPoint(uint64_t n) {
  uint64_t k = 1;
  while ((k << 1) < n) k <<= 1;
  return k;
}

// A proof element is the fold of one or more complete subtrees.
using Plan = std::vector<std::vector<NodeId>>;

void PlanPath(uint64_t m, uint64_t begin, uint64_t n, Plan& out) {
  if (n <= 1) return;
  const uint64_t k = SplitPoint(n);
  if (m < k) {
    PlanPath(m, begin, k, out);
    out.push_back(RangeNodes(begin + k, begin + n));
  } else {
    PlanPath(m - k, begin + k, n - k, out);
    out.push_back(RangeNodes(begin, begin + k));
  }
}

void PlanSubproof(uint64_t m, uint64_t begin, uint64_t n, bool whole,
                  Plan& out) {
  if (m == n) {
    if (!whole) out.push_back(RangeNodes(begin, begin + n));
    return;
  }
  const uint64_t k = SplitPoint(n);
  if (m <= k) {
    PlanSubproof(m, begin, k, whole, out);
    out.push_back(RangeNodes(begin + k, begin + n));
  } else {
    PlanSubproof(m - k, begin + k, n - k, false, out);
    out.push_back(RangeNodes(begin, begin + k));
  }
}

Hash Fold(absl::Span<const Hash> subtrees) {
  Hash acc = subtrees.back();
  for (size_t i = subtrees.size() - 1; i-- > 0;)
    acc = NodeHash(subtrees[i], acc);
  return acc;
}

// Fetches every node of a plan in one call and folds each element.
absl::StatusOr<std::vector<Hash>> Resolve(const Plan& plan,
                                          const NodeSource& nodes) {
  std::vector<NodeId> ids;
  for (const auto& element : plan)
    ids.insert(ids.end(), element.begin(), element.end());
  if (ids.empty()) return std::vector<Hash>{};
  VOUCH_ASSIGN_OR_RETURN(std::vector<Hash> hashes, nodes.Get(ids));
  if (hashes.size() != ids.size()) {
    return absl::InternalError(
        "node source answered the wrong number of nodes");
  }
  std::vector<Hash> out;
  size_t at = 0;
  for (const auto& element : plan) {
    out.push_back(
        Fold(absl::MakeConstSpan(hashes).subspan(at, element.size())));
    at += element.size();
  }
  return out;
}

}  // namespace

Hash EmptyRoot() {
  Hash h;
  SHA256(nullptr, 0, h.data());
  return h;
}

std::string HashHex(const Hash& h) {
  return absl::BytesToHexString(HashBytes(h));
}

Hash LeafHash(absl::string_view entry) {
  Hash h;
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  const uint8_t prefix = 0x00;
  SHA256_Update(&ctx, &prefix, 1);
  SHA256_Update(&ctx, entry.data(), entry.size());
  SHA256_Final(h.data(), &ctx);
  return h;
}

Hash NodeHash(const Hash& left, const Hash& right) {
  uint8_t buf[1 + 64];
  buf[0] = 0x01;
  std::memcpy(buf + 1, left.data(), 32);
  std::memcpy(buf + 33, right.data(), 32);
  Hash h;
  SHA256(buf, sizeof(buf), h.data());
  return h;
}

std::vector<NodeId> RangeNodes(uint64_t begin, uint64_t end) {
  std::vector<NodeId> out;
  if (end <= begin) return out;
  const uint64_t size = end - begin;
  for (int level = 63; level >= 0; --level) {
    const uint64_t width = uint64_t{1} << level;
    if ((size & width) == 0) continue;
    out.push_back(NodeId{static_cast<uint8_t>(level), begin >> level});
    begin += width;
  }
  return out;
}

absl::StatusOr<CompactRange> CompactRange::Create(uint64_t size,
                                                  std::vector<Hash> edge) {
  if (edge.size() != RangeNodes(0, size).size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a right edge of a tree of ", size, " leaves has ",
                     RangeNodes(0, size).size(), " hashes, not ", edge.size()));
  }
  return CompactRange(size, std::move(edge));
}

std::vector<StoredNode> CompactRange::Append(const Hash& leaf) {
  std::vector<StoredNode> out;
  const uint64_t index = size_;
  Hash acc = leaf;
  out.push_back({NodeId{0, index}, acc});
  // Each set low bit of index is a complete left sibling on the edge.
  uint8_t level = 0;
  while ((index >> level) & 1) {
    acc = NodeHash(edge_.back(), acc);
    edge_.pop_back();
    ++level;
    out.push_back({NodeId{level, index >> level}, acc});
  }
  edge_.push_back(acc);
  ++size_;
  return out;
}

Hash CompactRange::Root() const {
  return edge_.empty() ? EmptyRoot() : Fold(edge_);
}

absl::StatusOr<Hash> RootHash(uint64_t size, const NodeSource& nodes) {
  if (size == 0) return EmptyRoot();
  VOUCH_ASSIGN_OR_RETURN(std::vector<Hash> r,
                         Resolve(Plan{RangeNodes(0, size)}, nodes));
  return r[0];
}

absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size,
                                                 const NodeSource& nodes) {
  if (index >= size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leaf index ", index, " is not in a tree of ", size, " leaves"));
  }
  Plan plan;
  PlanPath(index, 0, size, plan);
  return Resolve(plan, nodes);
}

absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t m, uint64_t n,
                                                   const NodeSource& nodes) {
  if (m > n) {
    return absl::InvalidArgumentError(
        absl::StrCat("tree size ", m, " is larger than ", n));
  }
  Plan plan;
  if (m > 0 && m < n) PlanSubproof(m, 0, n, true, plan);
  return Resolve(plan, nodes);
}

absl::StatusOr<Hash> RootFromInclusionProof(uint64_t index, uint64_t size,
                                            const Hash& leaf,
                                            absl::Span<const Hash> proof) {
  if (index >= size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leaf index ", index, " is not in a tree of ", size, " leaves"));
  }
  if (proof.size() > kMaxProofHashes) {
    return absl::InvalidArgumentError("inclusion proof is too long");
  }
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash r = leaf;
  for (const Hash& p : proof) {
    if (sn == 0) {
      return absl::InvalidArgumentError("inclusion proof is too long");
    }
    if ((fn & 1) || fn == sn) {
      r = NodeHash(p, r);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return absl::InvalidArgumentError("inclusion proof is too short");
  }
  return r;
}

absl::Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf,
                             absl::Span<const Hash> proof, const Hash& root) {
  VOUCH_ASSIGN_OR_RETURN(Hash r,
                         RootFromInclusionProof(index, size, leaf, proof));
  if (r != root) {
    return absl::InvalidArgumentError(
        "inclusion proof does not lead to the tree head's root");
  }
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t m, uint64_t n, const Hash& first_root,
                               const Hash& second_root,
                               absl::Span<const Hash> proof) {
  if (m > n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tree size ", m, " is larger than ", n, ": a log never shrinks"));
  }
  if (m == n) {
    if (!proof.empty()) {
      return absl::InvalidArgumentError(
          "consistency proof between equal sizes must be empty");
    }
    if (first_root != second_root) {
      return absl::InvalidArgumentError(
          "two tree heads of the same size have different roots");
    }
    return absl::OkStatus();
  }
  if (m == 0) {
    if (!proof.empty()) {
      return absl::InvalidArgumentError(
          "consistency proof from the empty tree must be empty");
    }
    return absl::OkStatus();
  }
  if (proof.empty() || proof.size() > kMaxProofHashes) {
    return absl::InvalidArgumentError(
        "consistency proof has the wrong number of hashes");
  }
  // RFC 9162 2.1.4.2.
  std::vector<Hash> path;
  if ((m & (m - 1)) == 0) path.push_back(first_root);
  path.insert(path.end(), proof.begin(), proof.end());
  uint64_t fn = m - 1;
  uint64_t sn = n - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0];
  Hash sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) {
      return absl::InvalidArgumentError("consistency proof is too long");
    }
    if ((fn & 1) || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return absl::InvalidArgumentError("consistency proof is too short");
  }
  if (fr != first_root) {
    return absl::InvalidArgumentError(
        "consistency proof does not lead to the earlier tree head's root");
  }
  if (sr != second_root) {
    return absl::InvalidArgumentError(
        "consistency proof does not lead to the later tree head's root");
  }
  return absl::OkStatus();
}

namespace {
void PutU64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}
uint64_t GetU64(absl::string_view b) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}
}  // namespace

std::string EncodeProof(const EncodedProof& proof) {
  std::string out;
  PutU64(out, proof.first);
  PutU64(out, proof.second);
  out.push_back(static_cast<char>(proof.hashes.size()));
  for (const Hash& h : proof.hashes)
    out.append(reinterpret_cast<const char*>(h.data()), h.size());
  return out;
}

absl::StatusOr<EncodedProof> ParseProof(absl::string_view bytes) {
  if (bytes.size() < 17) {
    return absl::InvalidArgumentError("proof: shorter than its 17-byte header");
  }
  EncodedProof p;
  p.first = GetU64(bytes.substr(0, 8));
  p.second = GetU64(bytes.substr(8, 8));
  const size_t count = static_cast<uint8_t>(bytes[16]);
  if (count > kMaxProofHashes) {
    return absl::InvalidArgumentError(
        absl::StrCat("proof: ", count, " hashes, at most ", kMaxProofHashes));
  }
  if (bytes.size() != 17 + count * 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("proof: ", bytes.size(), " bytes where ", count,
                     " hashes need ", 17 + count * 32));
  }
  for (size_t i = 0; i < count; ++i) {
    Hash h;
    std::memcpy(h.data(), bytes.data() + 17 + i * 32, 32);
    p.hashes.push_back(h);
  }
  return p;
}

absl::StatusOr<Hash> HashFromBytes(absl::string_view bytes) {
  if (bytes.size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("a SHA-256 hash has 32 bytes, not ", bytes.size()));
  }
  Hash h;
  std::memcpy(h.data(), bytes.data(), 32);
  return h;
}

void InMemoryTree::Append(const Hash& leaf) {
  if (levels_.empty()) levels_.emplace_back();
  levels_[0].push_back(leaf);
  uint64_t index = levels_[0].size() - 1;
  for (size_t level = 0; index & 1; ++level) {
    const Hash parent =
        NodeHash(levels_[level][index - 1], levels_[level][index]);
    if (levels_.size() <= level + 1) levels_.emplace_back();
    levels_[level + 1].push_back(parent);
    index >>= 1;
  }
}

absl::StatusOr<std::vector<Hash>> InMemoryTree::Get(
    absl::Span<const NodeId> ids) const {
  std::vector<Hash> out;
  out.reserve(ids.size());
  for (const NodeId& id : ids) {
    if (id.level >= levels_.size() || id.index >= levels_[id.level].size()) {
      return absl::NotFoundError(
          absl::StrCat("no node at level ", id.level, " index ", id.index));
    }
    out.push_back(levels_[id.level][id.index]);
  }
  return out;
}

}  // namespace vouch::core::translog
