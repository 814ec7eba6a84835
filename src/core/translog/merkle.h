// File: core/translog/merkle.h
// RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proof
// generation over stored complete subtrees, and proof verification. Pure and
// thread-safe; proofs and hashes given to the Verify* functions are untrusted.
//
//   Hash leaf = LeafHash(entry_bytes);
//   VOUCH_ASSIGN_OR_RETURN(std::vector<Hash> proof,
//                          InclusionProof(index, size, node_source));
//   absl::Status ok = VerifyInclusion(index, size, leaf, proof, root);
#ifndef VOUCH_CORE_TRANSLOG_MERKLE_H_
#define VOUCH_CORE_TRANSLOG_MERKLE_H_

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace vouch::core::translog {

using Hash = std::array<uint8_t, 32>;

// A proof never has more hashes than this (a tree of at most 2^63 leaves:
// an inclusion proof has one hash per level, a consistency proof at most one
// more than that).
inline constexpr size_t kMaxProofHashes = 65;

// RFC 9162 section 2.1.1: MTH({}) = SHA-256(), leaf = SHA-256(0x00 || d),
// node = SHA-256(0x01 || left || right).
Hash EmptyRoot();
Hash LeafHash(absl::string_view entry);
Hash NodeHash(const Hash& left, const Hash& right);

// A complete subtree: the 2^level leaves starting at index << level.
// Level 0 is a leaf hash.
struct NodeId {
  uint8_t level = 0;
  uint64_t index = 0;
  bool operator==(const NodeId& o) const {
    return level == o.level && index == o.index;
  }
};

// Where proofs read stored complete-subtree hashes from (PostgreSQL, memory).
// Get answers in the order asked; a missing node is kNotFound or kInternal.
class NodeSource {
 public:
  virtual ~NodeSource() = default;
  virtual absl::StatusOr<std::vector<Hash>> Get(
      absl::Span<const NodeId> ids) const = 0;
};

// The complete subtrees that make up leaves [begin, end) of a tree, left to
// right (begin aligned as every RFC 9162 subtree is); their right-to-left fold
// with NodeHash is MTH(D[begin:end]).
std::vector<NodeId> RangeNodes(uint64_t begin, uint64_t end);

// The right edge of a tree (the stored complete subtrees RangeNodes(0, size)
// names, left to right): enough to append and to compute the root without
// reading anything else. The sequencer keeps one while it integrates a batch.
struct StoredNode {
  NodeId id;
  Hash hash;
};
class CompactRange {
 public:
  // kInvalidArgument unless `edge` has RangeNodes(0, size).size() hashes.
  static absl::StatusOr<CompactRange> Create(uint64_t size,
                                             std::vector<Hash> edge);
  // Appends a leaf hash; answers every complete subtree it completes
  // (the leaf itself first), which is what a store writes.
  std::vector<StoredNode> Append(const Hash& leaf);
  Hash Root() const;  // MTH of the `size` leaves (EmptyRoot() when 0).
  uint64_t size() const { return size_; }
  const std::vector<Hash>& edge() const { return edge_; }

 private:
  CompactRange(uint64_t size, std::vector<Hash> edge)
      : size_(size), edge_(std::move(edge)) {}
  uint64_t size_ = 0;
  std::vector<Hash> edge_;
};

// The Merkle tree head of the first `size` leaves (RFC 9162 2.1.1).
absl::StatusOr<Hash> RootHash(uint64_t size, const NodeSource& nodes);

// RFC 9162 2.1.3.1 PATH(index, D[size]); kInvalidArgument unless index < size.
absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size,
                                                 const NodeSource& nodes);

// RFC 9162 2.1.4.1 PROOF(m, D[n]); kInvalidArgument unless 0 <= m <= n.
// Empty when m == 0 or m == n.
absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t m, uint64_t n,
                                                   const NodeSource& nodes);

// RFC 9162 2.1.3.2. OkStatus only when `proof` proves `leaf` is leaf `index`
// of the tree of `size` leaves whose head is `root`; otherwise
// kInvalidArgument saying why (never a crash, whatever the inputs).
absl::Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf,
                             absl::Span<const Hash> proof, const Hash& root);

// RFC 9162 2.1.4.2. OkStatus only when the tree of size m with head
// `first_root` is a prefix of the tree of size n with head `second_root`.
// m == n needs an empty proof and equal roots; m == 0 an empty proof.
absl::Status VerifyConsistency(uint64_t m, uint64_t n, const Hash& first_root,
                               const Hash& second_root,
                               absl::Span<const Hash> proof);

// The root implied by an inclusion proof (RFC 9162 2.1.3.2 steps 1-3), for
// callers that compare it themselves.
absl::StatusOr<Hash> RootFromInclusionProof(uint64_t index, uint64_t size,
                                            const Hash& leaf,
                                            absl::Span<const Hash> proof);

// Proofs as bytes (Admin API, audit bundles): u64 first, u64 second (both
// big-endian; index and size, or m and n), u8 count, count * 32 bytes.
// ParseProof takes untrusted bytes: exact length, count <= kMaxProofHashes.
struct EncodedProof {
  uint64_t first = 0;
  uint64_t second = 0;
  std::vector<Hash> hashes;
};
std::string EncodeProof(const EncodedProof& proof);
absl::StatusOr<EncodedProof> ParseProof(absl::string_view bytes);

// A hash from untrusted bytes: exactly 32 bytes or kInvalidArgument.
absl::StatusOr<Hash> HashFromBytes(absl::string_view bytes);
inline absl::string_view HashBytes(const Hash& h) {
  return absl::string_view(reinterpret_cast<const char*>(h.data()), h.size());
}
// Lowercase hex (64 characters), as logs, SQL text arrays and JSON show it.
std::string HashHex(const Hash& h);

// A NodeSource holding every complete subtree in memory, level by level
// (tests, benches): 2n hashes for n leaves.
class InMemoryTree : public NodeSource {
 public:
  void Append(const Hash& leaf);
  uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }
  absl::StatusOr<std::vector<Hash>> Get(
      absl::Span<const NodeId> ids) const override;

 private:
  std::vector<std::vector<Hash>> levels_;
};

}  // namespace vouch::core::translog

#endif  // VOUCH_CORE_TRANSLOG_MERKLE_H_
