#include "core/audit/bundle.h"

#include <openssl/sha.h>

#include <memory>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/bytes.h"
#include "common/status_macros.h"
#include "core/audit/reverify.h"
#include "core/boot/boot_policy.h"
#include "core/boot/pcr_policy.h"
#include "core/ima/runtime_policy.h"
#include "core/tpm/public_key.h"
#include "core/tpm/tpm_wire.h"
#include "core/translog/merkle.h"
#include "core/translog/tree_head.h"
#include "google/protobuf/util/json_util.h"

namespace vouch::core::audit {
namespace {

AuditResult Invalid(std::string part, std::string reason) {
  AuditResult r;
  r.kind = AuditResult::Kind::kInvalid;
  r.part = std::move(part);
  r.reason = std::move(reason);
  return r;
}

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

// The parsed policies of the record, each checked against its digest.
struct Policies {
  std::shared_ptr<const ima::RuntimePolicy> runtime;
  std::optional<boot::BootPolicy> boot;
  std::optional<boot::PcrPolicy> pcr;
};

// The bundle's policy of `kind` the record names in `ref` (none when the
// ref is unset), its digest checked. Sets `part`/`reason` on failure.
const v1::AuditPolicy* FindPolicy(const v1::AuditBundle& b, v1::PolicyKind kind,
                                  const v1::PolicyRef& ref, AuditResult& bad) {
  const std::string part = absl::StrCat("policies[", ref.name(), "]");
  const v1::AuditPolicy* found = nullptr;
  for (const v1::AuditPolicy& p : b.policies()) {
    if (p.kind() == kind && p.name() == ref.name() &&
        p.version() == ref.version()) {
      found = &p;
    }
  }
  if (found == nullptr) {
    bad = Invalid(part, absl::StrCat("the record's policy version ",
                                     ref.version(), " is not in the bundle"));
    return nullptr;
  }
  if (Sha256(found->content()) != found->sha256()) {
    bad = Invalid(part, "the content does not match its sha256");
    return nullptr;
  }
  return found;
}

bool LoadPolicies(const v1::AuditBundle& b, const AuditOptions& options,
                  Policies& out, AuditResult& bad) {
  const v1::AttestationRecord& rec = b.record();
  int referenced = 0;
  if (rec.has_runtime_policy()) {
    ++referenced;
    const v1::AuditPolicy* p =
        FindPolicy(b, v1::POLICY_KIND_RUNTIME, rec.runtime_policy(), bad);
    if (p == nullptr) return false;
    ima::PolicyLoadOptions opts;
    opts.path_hash_key = options.path_hash_key;
    auto parsed = ima::RuntimePolicy::FromJson(p->content(), opts);
    if (!parsed.ok()) {
      bad = Invalid(absl::StrCat("policies[", p->name(), "]"),
                    std::string(parsed.status().message()));
      return false;
    }
    out.runtime = *std::move(parsed);
  }
  if (rec.has_boot_policy()) {
    ++referenced;
    const v1::AuditPolicy* p =
        FindPolicy(b, v1::POLICY_KIND_BOOT, rec.boot_policy(), bad);
    if (p == nullptr) return false;
    auto parsed = boot::BootPolicy::FromJson(p->content());
    if (!parsed.ok()) {
      bad = Invalid(absl::StrCat("policies[", p->name(), "]"),
                    std::string(parsed.status().message()));
      return false;
    }
    out.boot = *std::move(parsed);
  }
  if (rec.has_pcr_policy()) {
    ++referenced;
    const v1::AuditPolicy* p =
        FindPolicy(b, v1::POLICY_KIND_PCR, rec.pcr_policy(), bad);
    if (p == nullptr) return false;
    auto parsed = boot::PcrPolicy::FromJson(p->content());
    if (!parsed.ok()) {
      bad = Invalid(absl::StrCat("policies[", p->name(), "]"),
                    std::string(parsed.status().message()));
      return false;
    }
    out.pcr = *std::move(parsed);
  }
  if (b.policies_size() != referenced) {
    bad = Invalid("policies", "a policy the record does not name");
    return false;
  }
  return true;
}

// The registration: the AIK is the record's, its name is its own; the EK
// certificate chains to the given CAs and certifies the EK.
bool CheckRegistration(const v1::AuditBundle& b, const AuditOptions& options,
                       absl::Time now, AuditResult& result) {
  const v1::AuditRegistration& reg = b.registration();
  absl::StatusOr<tpm::PublicArea> aik =
      tpm::ParsePublic(AsBytes(reg.aik_public()));
  if (!aik.ok()) {
    result =
        Invalid("registration.aik_public", std::string(aik.status().message()));
    return false;
  }
  absl::StatusOr<Bytes> name = tpm::ObjectName(*aik);
  if (!name.ok() || std::string(AsString(*name)) != reg.aik_name()) {
    result = Invalid("registration.aik_name",
                     "is not the TPM name of registration.aik_public");
    return false;
  }
  if (b.record().aik_name() != reg.aik_name()) {
    result = Invalid("record.aik_name",
                     "the record was not verified with the bundle's AIK");
    return false;
  }
  if (options.ek_cas == nullptr) return true;
  absl::StatusOr<tpm::PublicArea> ek =
      tpm::ParsePublic(AsBytes(reg.ek_public()));
  if (!ek.ok()) {
    result =
        Invalid("registration.ek_public", std::string(ek.status().message()));
    return false;
  }
  if (reg.ek_intermediates_size() > static_cast<int>(tpm::kMaxIntermediates)) {
    result = Invalid("registration.ek_intermediates", "too many");
    return false;
  }
  std::vector<std::string> intermediates(reg.ek_intermediates().begin(),
                                         reg.ek_intermediates().end());
  Verdict v = options.ek_cas->Verify(AsBytes(reg.ek_certificate()),
                                     intermediates, ek->public_area, now);
  if (!v.passed()) {
    std::string why =
        v.failures().empty() ? "not verified" : v.failures()[0].detail;
    result = Invalid("registration.ek_certificate", why);
    return false;
  }
  result.ek_chain_checked = true;
  return true;
}

}  // namespace

absl::StatusOr<v1::AuditBundle> ParseBundle(absl::string_view json) {
  if (json.size() > kMaxBundleBytes) {
    return absl::InvalidArgumentError("bundle: over 400 MiB");
  }
  v1::AuditBundle b;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto s = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &b, opts);
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bundle: not an audit bundle: ",
                     std::string(s.message()).substr(0, 200)));
  }
  if (b.version() != kBundleVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("bundle: version ", b.version(), " (this vouchctl reads ",
                     kBundleVersion, ")"));
  }
  return b;
}

absl::StatusOr<std::string> BundleJson(const v1::AuditBundle& bundle) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  auto s = google::protobuf::util::MessageToJsonString(bundle, &out, opts);
  if (!s.ok()) {
    return absl::InternalError(std::string(s.message()));
  }
  return out;
}

absl::Status VerifyLogSection(const v1::AuditLogProofs& log,
                              const v1::AuditBundle& b,
                              absl::string_view log_key_pem,
                              std::string* part) {
  namespace tl = translog;
  const auto bad = [&](absl::string_view where, absl::string_view why) {
    *part = std::string(where);
    return absl::InvalidArgumentError(why);
  };
  absl::StatusOr<tl::LogKey> key = tl::LogKey::FromPublicPem(log_key_pem);
  if (!key.ok()) return bad("log key", key.status().message());
  absl::StatusOr<tl::TreeHead> head = key->Verify(log.signed_tree_head());
  if (!head.ok()) return bad("log.signed_tree_head", head.status().message());
  if (head->tree_size != log.tree_size()) {
    return bad("log.tree_size", "is not the signed tree head's size");
  }
  const v1::AttestationRecord& rec = b.record();
  // The record's leaf: its identifying fields, then the evidence digest
  // (u16 length, bytes) and the time (8 bytes), nothing else.
  const std::string prefix = tl::AttestationLeafPrefix(
      rec.attestation_id(), b.agent_id(), rec.nonce(),
      rec.state() == v1::ATTESTATION_STATE_PASS ? "pass" : "fail");
  const std::string& leaf = log.record_leaf();
  const bool leaf_ok = [&] {
    if (leaf.size() < prefix.size() + 2 + 8 ||
        leaf.compare(0, prefix.size(), prefix) != 0) {
      return false;
    }
    const size_t len = (static_cast<uint8_t>(leaf[prefix.size()]) << 8) |
                       static_cast<uint8_t>(leaf[prefix.size() + 1]);
    if (leaf.size() != prefix.size() + 2 + len + 8) return false;
    // The record names the evidence digest its verdict was logged with.
    return rec.evidence_sha256().size() == 32 &&
           leaf.compare(prefix.size() + 2, len, rec.evidence_sha256()) == 0;
  }();
  if (!leaf_ok) {
    return bad("log.record_leaf",
               "is not this record's leaf (attestation id, agent, nonce, "
               "verdict, evidence digest)");
  }
  const auto included =
      [&](uint64_t index, const std::string& entry,
          const google::protobuf::RepeatedPtrField<std::string>& path)
      -> absl::Status {
    if (path.size() > static_cast<int>(tl::kMaxProofHashes)) {
      return absl::InvalidArgumentError("too many hashes");
    }
    std::vector<tl::Hash> hashes;
    for (const std::string& h : path) {
      VOUCH_ASSIGN_OR_RETURN(tl::Hash hash, tl::HashFromBytes(h));
      hashes.push_back(hash);
    }
    return tl::VerifyInclusion(index, head->tree_size, tl::LeafHash(entry),
                               hashes, head->root);
  };
  if (absl::Status s =
          included(log.record_leaf_index(), leaf, log.record_path());
      !s.ok()) {
    return bad("log.record_path", s.message());
  }
  // The binding of this EK and AIK to this agent in this tenant.
  absl::StatusOr<tpm::PublicArea> ek =
      tpm::ParsePublic(AsBytes(b.registration().ek_public()));
  if (!ek.ok()) return bad("registration.ek_public", ek.status().message());
  absl::StatusOr<Bytes> ek_digest = tpm::SpkiSha256(ek->public_area);
  if (!ek_digest.ok()) {
    return bad("registration.ek_public", ek_digest.status().message());
  }
  const std::string binding =
      tl::BindingLeafPrefix(tl::LeafKind::kBinding, b.agent_id(), b.tenant(),
                            std::string(AsString(*ek_digest)),
                            tl::BindingAikDigest(b.registration().aik_name()));
  const std::string& reg_leaf = log.registration_leaf();
  if (reg_leaf.size() != binding.size() + 8 ||
      reg_leaf.compare(0, binding.size(), binding) != 0) {
    return bad("log.registration_leaf",
               "is not the binding of the bundle's EK and AIK to this agent "
               "and tenant");
  }
  if (log.registration_leaf_index() >= log.record_leaf_index()) {
    return bad("log.registration_leaf_index",
               "the binding was not logged before the record");
  }
  if (absl::Status s = included(log.registration_leaf_index(), reg_leaf,
                                log.registration_path());
      !s.ok()) {
    return bad("log.registration_path", s.message());
  }
  return absl::OkStatus();
}

AuditResult VerifyBundle(const v1::AuditBundle& b, const AuditOptions& options,
                         absl::Time now) {
  if (b.version() != kBundleVersion) {
    return Invalid("version", absl::StrCat("unknown version ", b.version()));
  }
  const v1::AttestationRecord& rec = b.record();
  if (rec.agent_id() != b.agent_id() || rec.tenant() != b.tenant()) {
    return Invalid("record", "names another agent or tenant");
  }
  if (!b.has_at() || !rec.has_verified_at() ||
      ToTime(rec.verified_at()) > ToTime(b.at())) {
    return Invalid("record.verified_at", "is not at or before the bundle's at");
  }
  if (rec.state() != v1::ATTESTATION_STATE_PASS &&
      rec.state() != v1::ATTESTATION_STATE_FAIL) {
    return Invalid("record.state", "is neither pass nor fail");
  }
  AuditResult result;
  if (!CheckRegistration(b, options, now, result)) return result;
  if (!options.log_key_pem.empty()) {
    if (!b.has_log()) {
      return Invalid("log",
                     "absent: the record or its binding is not in the "
                     "transparency log (verify without --log-key to audit "
                     "it without the log)");
    }
    std::string part;
    if (absl::Status s =
            VerifyLogSection(b.log(), b, options.log_key_pem, &part);
        !s.ok()) {
      return Invalid(std::move(part), std::string(s.message()));
    }
    result.log_checked = true;
  }
  Policies policies;
  AuditResult bad;
  if (!LoadPolicies(b, options, policies, bad)) return bad;
  if (rec.has_runtime_policy() != b.evidence().has_ima_entries()) {
    return Invalid("evidence.ima_entries",
                   "present iff the record has a runtime policy");
  }
  ReverifyInput in;
  in.aik_public = b.registration().aik_public();
  in.nonce = rec.nonce();
  in.evidence = &b.evidence();
  in.runtime_policy = policies.runtime.get();
  in.boot_policy = policies.boot ? &*policies.boot : nullptr;
  in.pcr_policy = policies.pcr ? &*policies.pcr : nullptr;
  in.at = ToTime(rec.verified_at());
  absl::StatusOr<ReverifyOutcome> out = Reverify(in);
  if (!out.ok()) {
    return Invalid("evidence", std::string(out.status().message()));
  }
  for (const v1::Failure& f : out->failures) {
    std::string part = EvidencePart(f.code());
    if (!part.empty()) {
      return Invalid(std::move(part), f.detail().empty()
                                          ? v1::FailureCode_Name(f.code())
                                          : f.detail());
    }
  }
  // The record's own verdict judged only what it accepted; the boot's
  // whole log may fail where the record passed, never the reverse.
  if (rec.state() == v1::ATTESTATION_STATE_FAIL && out->passed) {
    return Invalid("record.state",
                   "the record failed, its evidence passes its policies");
  }
  result.kind =
      out->passed ? AuditResult::Kind::kPass : AuditResult::Kind::kFail;
  result.failures = std::move(out->failures);
  result.failures_truncated = out->failures_truncated;
  return result;
}

}  // namespace vouch::core::audit
