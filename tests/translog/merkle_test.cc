// The transparency log's pure parts ([core][translog]): RFC 9162 hashing and
// proofs against published Certificate Transparency test vectors, a property
// test over every tree size up to 70, and signed tree heads.
//
// Vectors: transparency-dev/merkle (Apache-2.0), testonly/constants.go
// (leaf inputs, node hashes, roots for sizes 0..8) and proof/verify_test.go
// (inclusion and consistency proofs), the same values Google's
// certificate-transparency C++ and Go code test against. Copied as data.
#include "core/translog/merkle.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/openssl_handle.h"
#include "core/translog/tree_head.h"
#include "translog/new_key_pem.h"

namespace vouch::core::translog {
namespace {

Hash H(const std::string& hex) {
  auto b = HexDecode(hex);
  REQUIRE(b.ok());
  REQUIRE(b->size() == 32);
  Hash h;
  std::copy(b->begin(), b->end(), h.begin());
  return h;
}

std::string Unhex(const std::string& hex) {
  auto b = HexDecode(hex);
  REQUIRE(b.ok());
  return std::string(b->begin(), b->end());
}

const std::vector<std::string> kLeafInputs = {
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f"};

const std::vector<std::string> kRoots = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};

InMemoryTree ReferenceTree() {
  InMemoryTree tree;
  for (const auto& in : kLeafInputs) tree.Append(LeafHash(Unhex(in)));
  return tree;
}

struct ProofVector {
  uint64_t a, b;  // 1-based leaf and size, or sizes m and n
  std::vector<std::string> proof;
};

// proof/verify_test.go inclusionProofs (leaf numbers are 1-based there).
const std::vector<ProofVector> kInclusion = {
    {1,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {3,
     3,
     {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {2,
     5,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

// proof/verify_test.go consistencyProofs.
const std::vector<ProofVector> kConsistency = {
    {1,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2,
     5,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {6,
     7,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

std::vector<Hash> Hashes(const std::vector<std::string>& hex) {
  std::vector<Hash> out;
  for (const auto& h : hex) out.push_back(H(h));
  return out;
}

TEST_CASE("translog: roots match the Certificate Transparency vectors",
          "[core][translog]") {
  CHECK(EmptyRoot() == H(kRoots[0]));
  InMemoryTree tree = ReferenceTree();
  for (uint64_t n = 0; n <= 8; ++n) {
    auto root = RootHash(n, tree);
    REQUIRE(root.ok());
    CHECK(HexEncode(HashBytes(*root)) == kRoots[n]);
  }
  // The node hashes (testonly/constants.go NodeHashes) level 1 and 2.
  auto nodes = tree.Get({NodeId{1, 2}, NodeId{2, 1}, NodeId{0, 7}});
  REQUIRE(nodes.ok());
  CHECK((*nodes)[0] ==
        H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"));
  CHECK((*nodes)[1] ==
        H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"));
  CHECK((*nodes)[2] ==
        H("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"));
}

TEST_CASE("translog: inclusion proofs match the vectors and verify",
          "[core][translog]") {
  InMemoryTree tree = ReferenceTree();
  for (const auto& v : kInclusion) {
    INFO("leaf " << v.a << " size " << v.b);
    auto proof = InclusionProof(v.a - 1, v.b, tree);
    REQUIRE(proof.ok());
    CHECK(*proof == Hashes(v.proof));
    const Hash leaf = LeafHash(Unhex(kLeafInputs[v.a - 1]));
    CHECK(VerifyInclusion(v.a - 1, v.b, leaf, *proof, H(kRoots[v.b])).ok());
    // The verify_test.go corruptions: wrong index, size, leaf, root, extra
    // or missing hashes.
    CHECK_FALSE(VerifyInclusion(v.a, v.b, leaf, *proof, H(kRoots[v.b])).ok());
    CHECK_FALSE(
        VerifyInclusion(v.a - 1, v.b * 2, leaf, *proof, H(kRoots[v.b])).ok());
    CHECK_FALSE(
        VerifyInclusion(v.a - 1, v.b, H(kRoots[0]), *proof, H(kRoots[v.b]))
            .ok());
    CHECK_FALSE(VerifyInclusion(v.a - 1, v.b, leaf, *proof, H(kRoots[0])).ok());
    auto longer = *proof;
    longer.push_back(H(kRoots[v.b]));
    CHECK_FALSE(
        VerifyInclusion(v.a - 1, v.b, leaf, longer, H(kRoots[v.b])).ok());
    auto shorter = *proof;
    shorter.pop_back();
    CHECK_FALSE(
        VerifyInclusion(v.a - 1, v.b, leaf, shorter, H(kRoots[v.b])).ok());
  }
  CHECK_FALSE(InclusionProof(8, 8, tree).ok());
  CHECK_FALSE(VerifyInclusion(0, 0, EmptyRoot(), {}, EmptyRoot()).ok());
}

TEST_CASE("translog: consistency proofs match the vectors and verify",
          "[core][translog]") {
  InMemoryTree tree = ReferenceTree();
  for (const auto& v : kConsistency) {
    INFO("sizes " << v.a << " -> " << v.b);
    auto proof = ConsistencyProof(v.a, v.b, tree);
    REQUIRE(proof.ok());
    CHECK(*proof == Hashes(v.proof));
    CHECK(VerifyConsistency(v.a, v.b, H(kRoots[v.a]), H(kRoots[v.b]), *proof)
              .ok());
    CHECK_FALSE(
        VerifyConsistency(v.a, v.b, H(kRoots[v.b]), H(kRoots[v.a]), *proof)
            .ok());
    CHECK_FALSE(
        VerifyConsistency(v.a - 1, v.b, H(kRoots[v.a]), H(kRoots[v.b]), *proof)
            .ok());
    CHECK_FALSE(
        VerifyConsistency(v.a, v.b, H(kRoots[v.a]), H(kRoots[v.b]), {}).ok());
  }
  // The edge cases of verify_test.go TestVerifyConsistency.
  const Hash r1 = LeafHash("don't care 1"), r2 = LeafHash("don't care 2");
  CHECK(VerifyConsistency(0, 0, r1, r1, {}).ok());
  CHECK(VerifyConsistency(0, 1, r1, r2, {}).ok());
  CHECK_FALSE(VerifyConsistency(1, 1, r1, r2, {}).ok());
  CHECK_FALSE(VerifyConsistency(1, 0, r1, r2, {}).ok());
  CHECK_FALSE(VerifyConsistency(2, 1, r1, r2, {}).ok());
  CHECK_FALSE(VerifyConsistency(1, 1, r1, r1, {EmptyRoot()}).ok());
  CHECK_FALSE(VerifyConsistency(0, 1, r1, r1, {EmptyRoot()}).ok());
}

// Every proof for every size up to N verifies; each flipped byte fails.
TEST_CASE("translog: every proof of every size up to 70 verifies",
          "[core][translog]") {
  constexpr uint64_t kN = 70;
  InMemoryTree tree;
  std::vector<Hash> roots{EmptyRoot()};
  auto compact = CompactRange::Create(0, {});
  REQUIRE(compact.ok());
  for (uint64_t i = 0; i < kN; ++i) {
    const Hash leaf = LeafHash(std::string(1 + i % 5, static_cast<char>(i)));
    tree.Append(leaf);
    compact->Append(leaf);
    auto root = RootHash(i + 1, tree);
    REQUIRE(root.ok());
    CHECK(compact->Root() == *root);  // the sequencer's view agrees
    roots.push_back(*root);
  }
  for (uint64_t n = 1; n <= kN; ++n) {
    for (uint64_t i = 0; i < n; ++i) {
      auto leaf = tree.Get({NodeId{0, i}});
      auto proof = InclusionProof(i, n, tree);
      REQUIRE(proof.ok());
      REQUIRE(VerifyInclusion(i, n, (*leaf)[0], *proof, roots[n]).ok());
      for (size_t k = 0; k < proof->size(); ++k) {
        auto bad = *proof;
        bad[k][k % 32] ^= 0x01;
        REQUIRE_FALSE(VerifyInclusion(i, n, (*leaf)[0], bad, roots[n]).ok());
      }
    }
    for (uint64_t m = 0; m <= n; ++m) {
      auto proof = ConsistencyProof(m, n, tree);
      REQUIRE(proof.ok());
      REQUIRE(VerifyConsistency(m, n, roots[m], roots[n], *proof).ok());
      for (size_t k = 0; k < proof->size(); ++k) {
        auto bad = *proof;
        bad[k][31 - k % 32] ^= 0x80;
        REQUIRE_FALSE(VerifyConsistency(m, n, roots[m], roots[n], bad).ok());
      }
      if (m > 0 && m < n) {
        Hash forked = roots[m];
        forked[0] ^= 1;
        REQUIRE_FALSE(VerifyConsistency(m, n, forked, roots[n], *proof).ok());
      }
    }
  }
}

TEST_CASE("translog: proof bytes round-trip and reject bad lengths",
          "[core][translog]") {
  EncodedProof p{5, 9, {LeafHash("a"), LeafHash("b")}};
  const std::string bytes = EncodeProof(p);
  CHECK(bytes.size() == 17 + 64);
  auto back = ParseProof(bytes);
  REQUIRE(back.ok());
  CHECK(back->first == 5);
  CHECK(back->second == 9);
  CHECK(back->hashes == p.hashes);
  CHECK_FALSE(ParseProof(bytes.substr(0, bytes.size() - 1)).ok());
  CHECK_FALSE(ParseProof(bytes + "x").ok());
  CHECK_FALSE(ParseProof("").ok());
  std::string too_many = bytes;
  too_many[16] = static_cast<char>(200);
  CHECK_FALSE(ParseProof(too_many).ok());
}

using testing::NewKeyPem;

TEST_CASE("translog: signed tree heads verify only under their key",
          "[core][translog]") {
  for (int type : {EVP_PKEY_EC, EVP_PKEY_ED25519}) {
    INFO("key type " << type);
    auto key = LogKey::FromPrivatePem(NewKeyPem(type));
    REQUIRE(key.ok());
    auto pub = LogKey::FromPublicPem(key->PublicPem());
    REQUIRE(pub.ok());
    CHECK(pub->log_id() == key->log_id());
    TreeHead head;
    head.tree_size = 8;
    head.timestamp_ms = 1700000000123;
    head.root = H(kRoots[8]);
    auto sth = key->Sign(head);
    REQUIRE(sth.ok());
    auto seen = pub->Verify(*sth);
    REQUIRE(seen.ok());
    CHECK(seen->tree_size == 8);
    CHECK(seen->timestamp_ms == 1700000000123);
    CHECK(seen->root == head.root);
    CHECK_FALSE(pub->Sign(head).ok());  // a public key cannot sign
    // Every flipped byte fails, whether head or signature.
    for (size_t i = 0; i < sth->size(); ++i) {
      std::string bad = *sth;
      bad[i] ^= 0x04;
      REQUIRE_FALSE(pub->Verify(bad).ok());
    }
    CHECK_FALSE(pub->Verify(sth->substr(0, sth->size() - 1)).ok());
    // Another key of the same type does not verify it.
    auto other = LogKey::FromPrivatePem(NewKeyPem(type));
    REQUIRE(other.ok());
    CHECK_FALSE(other->Verify(*sth).ok());
  }
  // RSA and P-384 are refused as log keys.
  EvpPkeyPtr p384(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  BioPtr bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), p384.get(), nullptr, nullptr, 0,
                                   nullptr, nullptr) == 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  CHECK_FALSE(LogKey::FromPrivatePem(std::string(data, len)).ok());
  CHECK_FALSE(LogKey::FromPublicPem("not a key").ok());
}

TEST_CASE("translog: leaf encodings are canonical and distinct",
          "[core][translog]") {
  const absl::Time t = absl::FromUnixMillis(1700000000000);
  const std::string a =
      TranslogLeafForAttestation("42", "agent-1", "nonce", "pass", "qd", t);
  CHECK(a ==
        TranslogLeafForAttestation("42", "agent-1", "nonce", "pass", "qd", t));
  CHECK(a !=
        TranslogLeafForAttestation("43", "agent-1", "nonce", "pass", "qd", t));
  CHECK(a !=
        TranslogLeafForAttestation("42", "agent-1", "nonce", "fail", "qd", t));
  CHECK(static_cast<uint8_t>(a[0]) == 3);
  const std::string b = TranslogLeafForBinding(LeafKind::kBinding, "agent-1",
                                               "t1", "ek", "aik", t);
  const std::string r = TranslogLeafForBinding(LeafKind::kRemoval, "agent-1",
                                               "t1", "ek", "aik", t);
  CHECK(b != r);
  CHECK(static_cast<uint8_t>(b[0]) == 1);
  CHECK(static_cast<uint8_t>(r[0]) == 2);
  CHECK(b != TranslogLeafForBinding(LeafKind::kBinding, "agent-1", "t2", "ek",
                                    "aik", t));
  // Length prefixes keep field boundaries: "ab"+"c" differs from "a"+"bc".
  CHECK(TranslogLeafForBinding(LeafKind::kBinding, "ab", "c", "", "", t) !=
        TranslogLeafForBinding(LeafKind::kBinding, "a", "bc", "", "", t));
  // The time is the last 8 bytes; the rest identifies what was logged.
  auto head = LeafWithoutTime(b);
  REQUIRE(head.ok());
  CHECK(*head == LeafWithoutTime(
                     TranslogLeafForBinding(LeafKind::kBinding, "agent-1", "t1",
                                            "ek", "aik", t + absl::Hours(1)))
                     .value());
  CHECK(LeafTime(b).value() == t);
  CHECK_FALSE(LeafTime("12345678").ok());
  CHECK_FALSE(LeafWithoutTime("").ok());
  CHECK(BindingAikDigest("name").size() == 32);
}

}  // namespace
}  // namespace vouch::core::translog
