// The audit bundle's transparency-log section ([core][audit]): a bundle
// whose record and AIK binding are leaves of an in-memory RFC 9162 tree,
// under a signed tree head, verifies with VerifyLogSection; each tampering
// (a proof hash, the head's key or size, the record's leaf, the binding's
// leaf, its order) fails naming the part.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/file.h"
#include "core/audit/bundle.h"
#include "core/tpm/public_key.h"
#include "core/tpm/tpm_wire.h"
#include "core/translog/merkle.h"
#include "core/translog/tree_head.h"
#include "harness/soft_aik.h"
#include "translog/new_key_pem.h"

namespace vouch::core::audit {
namespace {

namespace tl = core::translog;

std::string Str(const Bytes& b) { return std::string(AsString(b)); }

// RSA keys are slow to make: one EK, AIK and other AIK per process.
const testing::SoftAik& Aik(int which) {
  static const auto* keys = new std::vector<testing::SoftAik>{
      testing::SoftAik::Create(), testing::SoftAik::Create(),
      testing::SoftAik::Create()};
  return (*keys)[which];
}

// A log of `filler` leaves around the binding (index 2) and the record
// (index 5) of one bundle, signed with a fresh key.
struct Fixture {
  const testing::SoftAik& ek = Aik(0);
  const testing::SoftAik& aik = Aik(1);
  std::string key_pem = testing::NewKeyPem();
  tl::LogKey key = tl::LogKey::FromPrivatePem(key_pem).value();
  std::string pub_pem = key.PublicPem();
  v1::AuditBundle bundle;
  tl::InMemoryTree tree;
  std::string binding_leaf;
  std::string record_leaf;
  const absl::Time t = absl::FromUnixSeconds(1'790'000'000);

  Fixture() {
    bundle.set_version(kBundleVersion);
    bundle.set_tenant("t1");
    bundle.set_agent_id("agent-1");
    bundle.mutable_registration()->set_ek_public(Str(ek.tpm2b_public()));
    bundle.mutable_registration()->set_aik_public(Str(aik.tpm2b_public()));
    bundle.mutable_registration()->set_aik_name(Str(aik.name()));
    v1::AttestationRecord* rec = bundle.mutable_record();
    rec->set_attestation_id("17");
    rec->set_tenant("t1");
    rec->set_agent_id("agent-1");
    rec->set_state(v1::ATTESTATION_STATE_PASS);
    rec->set_nonce(std::string(16, 'n'));
    rec->set_aik_name(Str(aik.name()));
    rec->set_evidence_sha256(std::string(32, 'e'));
    binding_leaf = BindingLeaf(aik, "t1");
    record_leaf = tl::TranslogLeafForAttestation(
        "17", "agent-1", std::string(16, 'n'), "pass", std::string(32, 'e'),
        t + absl::Minutes(1));
    for (int i = 0; i < 9; ++i) {
      if (i == 2) {
        tree.Append(tl::LeafHash(binding_leaf));
      } else if (i == 5) {
        tree.Append(tl::LeafHash(record_leaf));
      } else {
        tree.Append(tl::LeafHash("other leaf " + std::to_string(i)));
      }
    }
    Fill(2, binding_leaf, 5, record_leaf);
  }

  std::string BindingLeaf(const testing::SoftAik& which,
                          const std::string& tenant) const {
    auto parsed = tpm::ParsePublic(ek.tpm2b_public());
    REQUIRE(parsed.ok());
    auto digest = tpm::SpkiSha256(parsed->public_area);
    REQUIRE(digest.ok());
    return tl::TranslogLeafForBinding(
        tl::LeafKind::kBinding, "agent-1", tenant, Str(*digest),
        tl::BindingAikDigest(Str(which.name())), t);
  }

  void Fill(uint64_t binding_index, const std::string& binding,
            uint64_t record_index, const std::string& record) {
    v1::AuditLogProofs* log = bundle.mutable_log();
    log->Clear();
    tl::TreeHead head;
    head.tree_size = tree.size();
    head.timestamp_ms = absl::ToUnixMillis(t + absl::Minutes(2));
    head.root = tl::RootHash(tree.size(), tree).value();
    log->set_signed_tree_head(key.Sign(head).value());
    log->set_tree_size(tree.size());
    log->set_registration_leaf_index(binding_index);
    log->set_registration_leaf(binding);
    AddPath(binding_index, log->mutable_registration_path());
    log->set_record_leaf_index(record_index);
    log->set_record_leaf(record);
    AddPath(record_index, log->mutable_record_path());
  }

  void AddPath(uint64_t index,
               google::protobuf::RepeatedPtrField<std::string>* out) const {
    auto path = tl::InclusionProof(index, tree.size(), tree);
    REQUIRE(path.ok());
    for (const tl::Hash& h : *path) *out->Add() = std::string(tl::HashBytes(h));
  }

  // The part VerifyLogSection names, "" when it verifies.
  std::string Check() const { return Check(pub_pem); }
  std::string Check(const std::string& pem) const {
    std::string part;
    absl::Status s = VerifyLogSection(bundle.log(), bundle, pem, &part);
    INFO(s.message());
    if (s.ok()) return "";
    CHECK(absl::IsInvalidArgument(s));
    CHECK(!part.empty());
    return part;
  }
};

TEST_CASE("audit log section: a bundle's record and binding proofs verify",
          "[core][audit]") {
  Fixture f;
  CHECK(f.Check() == "");
  // The key is the public one (`audit log-key`); a private PEM is not.
  CHECK(f.Check(f.key_pem) == "log key");
  // A record without its evidence digest does not match its leaf: the
  // digest is part of what the log says about the record.
  f.bundle.mutable_record()->clear_evidence_sha256();
  CHECK(f.Check() == "log.record_leaf");
}

TEST_CASE("audit log section: tampered proofs and heads fail naming the part",
          "[core][audit]") {
  Fixture f;
  SECTION("a record proof hash") {
    std::string* h = f.bundle.mutable_log()->mutable_record_path(0);
    (*h)[7] ^= 1;
    CHECK(f.Check() == "log.record_path");
  }
  SECTION("a binding proof hash") {
    std::string* h = f.bundle.mutable_log()->mutable_registration_path(1);
    (*h)[0] ^= 0x80;
    CHECK(f.Check() == "log.registration_path");
  }
  SECTION("a proof hash that is not 32 bytes") {
    f.bundle.mutable_log()->mutable_record_path(0)->push_back('x');
    CHECK(f.Check() == "log.record_path");
  }
  SECTION("too many proof hashes") {
    for (int i = 0; i < 70; ++i) {
      f.bundle.mutable_log()->add_record_path(std::string(32, 'h'));
    }
    CHECK(f.Check() == "log.record_path");
  }
  SECTION("a head signed by another key") {
    tl::LogKey other = tl::LogKey::FromPrivatePem(testing::NewKeyPem()).value();
    tl::TreeHead head;
    head.tree_size = f.tree.size();
    head.root = tl::RootHash(f.tree.size(), f.tree).value();
    f.bundle.mutable_log()->set_signed_tree_head(other.Sign(head).value());
    CHECK(f.Check() == "log.signed_tree_head");
    // ... and checked against that other key, it is the wrong log.
    CHECK(f.Check(other.PublicPem()) == "");
  }
  SECTION("a flipped byte of the signed head") {
    std::string* sth = f.bundle.mutable_log()->mutable_signed_tree_head();
    (*sth)[60] ^= 1;
    CHECK(f.Check() == "log.signed_tree_head");
  }
  SECTION("a tree size that is not the head's") {
    f.bundle.mutable_log()->set_tree_size(f.tree.size() + 1);
    CHECK(f.Check() == "log.tree_size");
  }
  SECTION("an unusable log key") { CHECK(f.Check("not a key") == "log key"); }
}

TEST_CASE(
    "audit log section: a leaf that is not the record's or not in the "
    "tree fails",
    "[core][audit]") {
  Fixture f;
  SECTION("the record says another verdict") {
    f.bundle.mutable_record()->set_state(v1::ATTESTATION_STATE_FAIL);
    CHECK(f.Check() == "log.record_leaf");
  }
  SECTION("the record has another nonce") {
    f.bundle.mutable_record()->set_nonce(std::string(16, 'm'));
    CHECK(f.Check() == "log.record_leaf");
  }
  SECTION("the record has another evidence digest") {
    f.bundle.mutable_record()->set_evidence_sha256(std::string(32, 'f'));
    CHECK(f.Check() == "log.record_leaf");
  }
  SECTION("a leaf with bytes appended") {
    f.bundle.mutable_log()->mutable_record_leaf()->push_back('x');
    CHECK(f.Check() == "log.record_leaf");
  }
  SECTION("the record's leaf, never appended to the tree") {
    const std::string unlogged = tl::TranslogLeafForAttestation(
        "17", "agent-1", std::string(16, 'n'), "pass", std::string(32, 'e'),
        f.t + absl::Hours(1));
    f.bundle.mutable_log()->set_record_leaf(unlogged);
    CHECK(f.Check() == "log.record_path");
  }
  SECTION("the right leaf at another index") {
    f.bundle.mutable_log()->set_record_leaf_index(4);
    CHECK(f.Check() == "log.record_path");
  }
  SECTION("an index past the tree") {
    f.bundle.mutable_log()->set_record_leaf_index(1u << 30);
    CHECK(f.Check() == "log.record_path");
  }
}

TEST_CASE(
    "audit log section: the binding must be of this EK, AIK, agent and "
    "tenant, and logged before the record",
    "[core][audit]") {
  Fixture f;
  SECTION("the binding of another AIK (a swapped binding leaf)") {
    const testing::SoftAik& other = Aik(2);
    const std::string swapped = f.BindingLeaf(other, "t1");
    f.tree = tl::InMemoryTree();
    for (int i = 0; i < 9; ++i) {
      f.tree.Append(tl::LeafHash(i == 2   ? swapped
                                 : i == 5 ? f.record_leaf
                                          : "other leaf " + std::to_string(i)));
    }
    f.Fill(2, swapped, 5, f.record_leaf);  // Proofs valid, leaf wrong.
    CHECK(f.Check() == "log.registration_leaf");
  }
  SECTION("the binding in another tenant") {
    f.bundle.mutable_log()->set_registration_leaf(f.BindingLeaf(f.aik, "t2"));
    CHECK(f.Check() == "log.registration_leaf");
  }
  SECTION("a removal leaf instead of a binding") {
    std::string removal = f.binding_leaf;
    removal[0] = static_cast<char>(tl::LeafKind::kRemoval);
    f.bundle.mutable_log()->set_registration_leaf(removal);
    CHECK(f.Check() == "log.registration_leaf");
  }
  SECTION("the bundle names another AIK than the binding") {
    const testing::SoftAik& other = Aik(2);
    f.bundle.mutable_registration()->set_aik_name(Str(other.name()));
    CHECK(f.Check() == "log.registration_leaf");
  }
  SECTION("a binding logged after the record") {
    f.Fill(7, f.binding_leaf, 5, f.record_leaf);
    CHECK(f.Check() == "log.registration_leaf_index");
  }
  SECTION("a binding leaf at an index it is not at") {
    f.bundle.mutable_log()->set_registration_leaf_index(3);
    CHECK(f.Check() == "log.registration_path");
  }
  SECTION("an EK public area that does not parse") {
    f.bundle.mutable_registration()->set_ek_public("junk");
    CHECK(f.Check() == "registration.ek_public");
  }
}

TEST_CASE("audit bundle: asked to check the log, a bundle without one fails",
          "[core][audit]") {
  Fixture f;
  f.bundle.clear_log();
  absl::Time at = f.t + absl::Hours(1);
  f.bundle.mutable_at()->set_seconds(absl::ToUnixSeconds(at));
  f.bundle.mutable_record()->mutable_verified_at()->set_seconds(
      absl::ToUnixSeconds(f.t));
  AuditOptions options;
  options.log_key_pem = f.pub_pem;
  AuditResult r = VerifyBundle(f.bundle, options, at);
  CHECK(r.kind == AuditResult::Kind::kInvalid);
  CHECK(r.part == "log");
  CHECK_THAT(r.reason, Catch::Contains("absent"));
  // Without a key the log is not asked for: the bundle goes on to its
  // policies (here: none match the empty record, so it fails later).
  options.log_key_pem.clear();
  r = VerifyBundle(f.bundle, options, at);
  CHECK(r.part != "log");
}

TEST_CASE(
    "audit log section: the fuzz seed's log section verifies up to its "
    "registration",
    "[core][audit]") {
  // fuzz/corpus/audit_bundle/log_section.json (make_small_seeds.py): a
  // head signed by the RFC 8032 test 1 key and a record proof that verify,
  // so the fuzzer starts deep in the checks; its registration has no EK.
  absl::StatusOr<std::string> json =
      ReadFileUpTo(std::string(VOUCH_SOURCE_DIR) +
                       "/fuzz/corpus/audit_bundle/log_section.json",
                   1 << 20);
  REQUIRE(json.ok());
  absl::StatusOr<v1::AuditBundle> b = ParseBundle(*json);
  INFO(b.status().message());
  REQUIRE(b.ok());
  REQUIRE(b->has_log());
  const std::string rfc8032_test1 =
      "-----BEGIN PUBLIC KEY-----\n"
      "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
      "-----END PUBLIC KEY-----\n";
  std::string part;
  CHECK_FALSE(VerifyLogSection(b->log(), *b, rfc8032_test1, &part).ok());
  CHECK(part == "registration.ek_public");
}

}  // namespace
}  // namespace vouch::core::audit
