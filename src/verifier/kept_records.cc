#include "verifier/kept_records.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/bytes.h"
#include "common/status_macros.h"
#include "core/agent_id.h"
#include "core/attest/limits.h"
#include "core/attest/wire.h"
#include "core/audit/bundle.h"
#include "core/audit/reverify.h"
#include "core/tpm/public_key.h"
#include "core/tpm/tpm_wire.h"
#include "core/translog/tree_head.h"
#include "server/proto_time.h"

namespace vouch::verifier {
namespace {

// How long ExportAudit waits for the sequencer to integrate the record's
// (or its binding's) leaf before answering UNAVAILABLE.
constexpr absl::Duration kLogLagWait = absl::Seconds(5);

absl::Status CheckId(const std::string& id) {
  if (id.empty() || id.size() > core::attest::kMaxAttestationIdBytes) {
    return absl::InvalidArgumentError(
        "attestation_id: required, at most 64 bytes");
  }
  return absl::OkStatus();
}

void SetRef(const std::string& name, uint64_t version, v1::PolicyRef* ref) {
  ref->set_name(name);
  ref->set_version(version);
}

bool Judged(const std::string& name, uint64_t version) {
  return !name.empty() && version > 0;
}

// The record's fields (without its evidence bytes).
void FillRecord(const store::KeptRecord& k, v1::AttestationRecord* rec) {
  const store::AttestationRow& r = k.row;
  rec->set_attestation_id(r.attestation_id);
  rec->set_tenant(k.tenant);
  rec->set_agent_id(k.agent_id);
  rec->set_state(r.state);
  SetFailures(k.failures, rec);
  server::SetTimestamp(r.at, rec->mutable_verified_at());
  rec->set_verifier(r.verifier);
  if (r.ima_from) rec->set_ima_first_entry(*r.ima_from);
  if (r.ima_next_entry) rec->set_ima_next_entry(*r.ima_next_entry);
  rec->set_boot_log_evaluated(r.boot_log_evaluated);
  rec->set_nonce(k.nonce);
  rec->set_evidence_sha256(k.evidence_sha256);
  rec->set_evidence_retained(k.evidence_status.ok());
  if (!k.evidence_status.ok()) return;
  rec->set_reset_count(k.reset_count);
  rec->set_aik_name(k.aik_name);
  // Version 0: the policy could not be had (the record failed with
  // POLICY_UNAVAILABLE); nothing was judged against it.
  const store::KeptEvidence& e = k.evidence;
  if (Judged(e.runtime_policy, e.runtime_policy_version)) {
    SetRef(e.runtime_policy, e.runtime_policy_version,
           rec->mutable_runtime_policy());
  }
  if (Judged(e.boot_policy, e.boot_policy_version)) {
    SetRef(e.boot_policy, e.boot_policy_version, rec->mutable_boot_policy());
  }
  if (Judged(e.pcr_policy, e.pcr_policy_version)) {
    SetRef(e.pcr_policy, e.pcr_policy_version, rec->mutable_pcr_policy());
  }
}

// The kept evidence as one vouch.v1.Evidence (see AuditBundle.evidence).
absl::StatusOr<v1::Evidence> EvidenceOf(const store::KeptRecord& k) {
  v1::Evidence ev;
  if (!ev.ParseFromString(k.evidence.quote)) {
    return absl::InternalError("kept quote does not parse");
  }
  if (Judged(k.evidence.runtime_policy, k.evidence.runtime_policy_version)) {
    v1::ImaLogChunk* c = ev.mutable_ima_entries();
    c->set_format(static_cast<v1::ImaLogFormat>(k.ima_format));
    c->set_template_hash_alg(
        static_cast<v1::HashAlgorithm>(k.ima_template_hash_alg));
    c->set_first_index(0);
    c->set_data(k.ima_log);
  }
  ev.set_boot_log(k.evidence.boot_log);
  return ev;
}

absl::StatusOr<store::KeptRecord> Kept(store::AgentStore& agents,
                                       const std::string& tenant,
                                       const std::string& id) {
  VOUCH_RETURN_IF_ERROR(CheckId(id));
  VOUCH_ASSIGN_OR_RETURN(store::KeptRecord k, agents.GetKeptRecord(tenant, id));
  return k;
}

// One policy version as loaded for a re-verification.
struct LoadedPolicy {
  store::PolicyRow row;
  std::shared_ptr<const core::ima::RuntimePolicy> runtime;
  std::optional<core::boot::BootPolicy> boot;
  std::optional<core::boot::PcrPolicy> pcr;
};

absl::StatusOr<LoadedPolicy> Load(store::PolicyStore& policies,
                                  const std::string& tenant,
                                  const std::string& name, uint64_t version,
                                  v1::PolicyKind kind) {
  LoadedPolicy out;
  VOUCH_ASSIGN_OR_RETURN(out.row, policies.GetPolicy(tenant, name, version));
  if (out.row.kind != kind) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy ", name, " is of another kind"));
  }
  absl::Status parsed;
  switch (kind) {
    case v1::POLICY_KIND_RUNTIME: {
      core::ima::PolicyLoadOptions opts;
      RAND_bytes(opts.path_hash_key.data(), opts.path_hash_key.size());
      auto p = core::ima::RuntimePolicy::FromJson(out.row.content, opts);
      if (p.ok()) out.runtime = *std::move(p);
      parsed = p.status();
      break;
    }
    case v1::POLICY_KIND_BOOT: {
      auto p = core::boot::BootPolicy::FromJson(out.row.content);
      if (p.ok()) out.boot = *std::move(p);
      parsed = p.status();
      break;
    }
    default: {
      auto p = core::boot::PcrPolicy::FromJson(out.row.content);
      if (p.ok()) out.pcr = *std::move(p);
      parsed = p.status();
      break;
    }
  }
  if (!parsed.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "policy ", name, " version ", out.row.version, " does not load"));
  }
  return out;
}

}  // namespace

void SetFailures(const std::string& encoded, v1::AttestationRecord* rec) {
  v1::Verdict holder = core::attest::DecodeFailures(encoded);
  *rec->mutable_failures() = holder.failures();
  rec->set_failures_truncated(holder.failures_truncated());
}

absl::Status GetKeptAttestation(store::AgentStore& agents,
                                const std::string& tenant,
                                const v1::GetAttestationRequest& req,
                                v1::AttestationRecord* out) {
  VOUCH_ASSIGN_OR_RETURN(store::KeptRecord k,
                         Kept(agents, tenant, req.attestation_id()));
  FillRecord(k, out);
  if (!req.include_evidence()) return absl::OkStatus();
  VOUCH_RETURN_IF_ERROR(k.evidence_status);
  VOUCH_ASSIGN_OR_RETURN(v1::Evidence ev, EvidenceOf(k));
  out->set_evidence(ev.SerializeAsString());
  return absl::OkStatus();
}

absl::Status ReverifyKeptAttestation(store::AgentStore& agents,
                                     store::PolicyStore& policies,
                                     const std::string& tenant,
                                     const v1::ReverifyAttestationRequest& req,
                                     absl::Time now,
                                     v1::ReverifyAttestationResponse* out) {
  VOUCH_ASSIGN_OR_RETURN(store::KeptRecord k,
                         Kept(agents, tenant, req.attestation_id()));
  VOUCH_RETURN_IF_ERROR(k.evidence_status);
  const store::KeptEvidence& e = k.evidence;
  // The recorded policy of a kind, or the one the request names instead.
  auto pick =
      [&](const std::string& name, uint64_t version, bool has,
          const v1::PolicyRef& named,
          v1::PolicyKind kind) -> absl::StatusOr<std::optional<LoadedPolicy>> {
    if (has) {
      if (named.name().empty() || named.name().size() > 128) {
        return absl::InvalidArgumentError("policy name: 1..128 bytes");
      }
      VOUCH_ASSIGN_OR_RETURN(
          LoadedPolicy p,
          Load(policies, tenant, named.name(), named.version(), kind));
      return std::optional<LoadedPolicy>(std::move(p));
    }
    if (!Judged(name, version)) return std::optional<LoadedPolicy>();
    VOUCH_ASSIGN_OR_RETURN(LoadedPolicy p,
                           Load(policies, tenant, name, version, kind));
    return std::optional<LoadedPolicy>(std::move(p));
  };
  VOUCH_ASSIGN_OR_RETURN(
      std::optional<LoadedPolicy> runtime,
      pick(e.runtime_policy, e.runtime_policy_version, req.has_runtime_policy(),
           req.runtime_policy(), v1::POLICY_KIND_RUNTIME));
  VOUCH_ASSIGN_OR_RETURN(
      std::optional<LoadedPolicy> boot,
      pick(e.boot_policy, e.boot_policy_version, req.has_boot_policy(),
           req.boot_policy(), v1::POLICY_KIND_BOOT));
  VOUCH_ASSIGN_OR_RETURN(
      std::optional<LoadedPolicy> pcr,
      pick(e.pcr_policy, e.pcr_policy_version, req.has_pcr_policy(),
           req.pcr_policy(), v1::POLICY_KIND_PCR));
  VOUCH_ASSIGN_OR_RETURN(v1::Evidence ev, EvidenceOf(k));
  core::audit::ReverifyInput in;
  in.aik_public = e.aik_public;
  in.nonce = k.nonce;
  in.evidence = &ev;
  in.runtime_policy = runtime ? runtime->runtime.get() : nullptr;
  in.boot_policy = boot ? &*boot->boot : nullptr;
  in.pcr_policy = pcr ? &*pcr->pcr : nullptr;
  in.at = k.row.at;
  absl::StatusOr<core::audit::ReverifyOutcome> r = core::audit::Reverify(in);
  if (!r.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the kept evidence does not re-verify: ", r.status().message()));
  }
  out->set_state(r->passed ? v1::ATTESTATION_STATE_PASS
                           : v1::ATTESTATION_STATE_FAIL);
  for (const v1::Failure& f : r->failures) *out->add_failures() = f;
  out->set_failures_truncated(r->failures_truncated);
  server::SetTimestamp(now, out->mutable_reverified_at());
  if (runtime) {
    SetRef(runtime->row.name, runtime->row.version,
           out->mutable_runtime_policy());
  }
  if (boot)
    SetRef(boot->row.name, boot->row.version, out->mutable_boot_policy());
  if (pcr) SetRef(pcr->row.name, pcr->row.version, out->mutable_pcr_policy());
  v1::Verdict recorded;
  if (!k.failures.empty()) (void)recorded.ParseFromString(k.failures);
  std::multiset<int> was;
  std::multiset<int> now_codes;
  for (const v1::Failure& f : recorded.failures()) was.insert(f.code());
  for (const v1::Failure& f : r->failures) now_codes.insert(f.code());
  out->set_matches_record(out->state() == k.row.state && was == now_codes);
  return absl::OkStatus();
}

namespace {

// The transparency-log section of a bundle (docs/audit.md): the newest
// signed tree head, the inclusion proof of the record's leaf and of the
// binding leaf of the record's AIK (the newest one logged before the
// record). No section when the record or its binding was never logged (the
// log was off then); kUnavailable while either is queued, not integrated.
absl::Status FillLogSection(store::PgTranslog& log, v1::AuditBundle& b) {
  namespace tl = core::translog;
  absl::StatusOr<store::SignedHead> head = log.LatestHead();
  if (absl::IsNotFound(head.status())) return absl::OkStatus();
  VOUCH_RETURN_IF_ERROR(head.status());
  const v1::AttestationRecord& rec = b.record();
  const auto lag = [](absl::string_view what) {
    return absl::UnavailableError(absl::StrCat(
        "the ", what,
        "'s transparency-log leaf is queued, not integrated yet (the "
        "sequencer runs every translog.interval): export again in a moment"));
  };
  VOUCH_ASSIGN_OR_RETURN(
      store::FoundLeaf record,
      log.FindLeaf(
          tl::LeafKind::kAttestation, b.agent_id(),
          tl::AttestationLeafPrefix(
              rec.attestation_id(), b.agent_id(), rec.nonce(),
              rec.state() == v1::ATTESTATION_STATE_PASS ? "pass" : "fail"),
          head->tree_size, head->tree_size));
  if (record.where == store::FoundLeaf::Where::kQueued) return lag("record");
  if (record.where == store::FoundLeaf::Where::kAbsent) return absl::OkStatus();
  absl::StatusOr<core::tpm::PublicArea> ek =
      core::tpm::ParsePublic(AsBytes(b.registration().ek_public()));
  if (!ek.ok()) return absl::OkStatus();  // The registration was deleted.
  VOUCH_ASSIGN_OR_RETURN(Bytes ek_digest,
                         core::tpm::SpkiSha256(ek->public_area));
  VOUCH_ASSIGN_OR_RETURN(
      store::FoundLeaf binding,
      log.FindLeaf(tl::LeafKind::kBinding, b.agent_id(),
                   tl::BindingLeafPrefix(
                       tl::LeafKind::kBinding, b.agent_id(), b.tenant(),
                       std::string(AsString(ek_digest)),
                       tl::BindingAikDigest(b.registration().aik_name())),
                   record.index, head->tree_size));
  if (binding.where == store::FoundLeaf::Where::kQueued) return lag("binding");
  if (binding.where == store::FoundLeaf::Where::kAbsent) {
    return absl::OkStatus();
  }
  VOUCH_ASSIGN_OR_RETURN(store::InclusionAnswer record_proof,
                         log.InclusionByIndex(record.index, head->tree_size));
  VOUCH_ASSIGN_OR_RETURN(store::InclusionAnswer binding_proof,
                         log.InclusionByIndex(binding.index, head->tree_size));
  v1::AuditLogProofs* out = b.mutable_log();
  out->set_signed_tree_head(head->signed_head);
  out->set_tree_size(head->tree_size);
  out->set_registration_leaf_index(binding.index);
  out->set_registration_leaf(binding.leaf);
  for (const tl::Hash& h : binding_proof.proof) {
    out->add_registration_path(std::string(tl::HashBytes(h)));
  }
  out->set_record_leaf_index(record.index);
  out->set_record_leaf(record.leaf);
  for (const tl::Hash& h : record_proof.proof) {
    out->add_record_path(std::string(tl::HashBytes(h)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ExportAuditBundle(store::AgentStore& agents,
                               store::PolicyStore& policies,
                               store::PgTranslog* translog,
                               const std::string& tenant,
                               const v1::ExportAuditRequest& req,
                               v1::AuditBundle* out) {
  VOUCH_RETURN_IF_ERROR(core::ValidateAgentId(req.agent_id()));
  // RFC 3339 years 0001..9999, as google.protobuf.Timestamp allows.
  if (!req.has_at() || req.at().seconds() < -62135596800 ||
      req.at().seconds() > 253402300799 || req.at().nanos() < 0 ||
      req.at().nanos() > 999999999) {
    return absl::InvalidArgumentError(
        "at: required, a valid time between years 1 and 9999");
  }
  const absl::Time at = absl::FromUnixSeconds(req.at().seconds()) +
                        absl::Nanoseconds(req.at().nanos());
  VOUCH_ASSIGN_OR_RETURN(std::string id,
                         agents.RecordAt(tenant, req.agent_id(), at));
  VOUCH_ASSIGN_OR_RETURN(store::KeptRecord k, Kept(agents, tenant, id));
  VOUCH_RETURN_IF_ERROR(k.evidence_status);
  out->set_version(core::audit::kBundleVersion);
  out->set_tenant(tenant);
  out->set_agent_id(req.agent_id());
  *out->mutable_at() = req.at();
  v1::AuditRegistration* reg = out->mutable_registration();
  reg->set_ek_public(k.ek_public);
  reg->set_ek_certificate(k.ek_certificate);
  for (absl::string_view hex :
       absl::StrSplit(k.ek_intermediates, ',', absl::SkipEmpty())) {
    reg->add_ek_intermediates(absl::HexStringToBytes(hex));
  }
  reg->set_aik_public(k.evidence.aik_public);
  reg->set_aik_name(k.aik_name);
  FillRecord(k, out->mutable_record());
  VOUCH_ASSIGN_OR_RETURN(*out->mutable_evidence(), EvidenceOf(k));
  const store::KeptEvidence& e = k.evidence;
  auto add = [&](const std::string& name, uint64_t version,
                 v1::PolicyKind kind) -> absl::Status {
    if (!Judged(name, version)) return absl::OkStatus();
    VOUCH_ASSIGN_OR_RETURN(store::PolicyRow row,
                           policies.GetPolicy(tenant, name, version));
    v1::AuditPolicy* p = out->add_policies();
    p->set_kind(kind);
    p->set_name(name);
    p->set_version(row.version);
    p->set_content(row.content);
    p->set_sha256(Sha256(row.content));
    return absl::OkStatus();
  };
  VOUCH_RETURN_IF_ERROR(
      add(e.runtime_policy, e.runtime_policy_version, v1::POLICY_KIND_RUNTIME));
  VOUCH_RETURN_IF_ERROR(
      add(e.boot_policy, e.boot_policy_version, v1::POLICY_KIND_BOOT));
  VOUCH_RETURN_IF_ERROR(
      add(e.pcr_policy, e.pcr_policy_version, v1::POLICY_KIND_PCR));
  if (translog == nullptr) return absl::OkStatus();
  // A record committed a moment ago waits for the sequencer (one
  // translog.interval, 1 s by default); past kLogLagWait the caller is told.
  const absl::Time until = absl::Now() + kLogLagWait;
  while (true) {
    absl::Status s = FillLogSection(*translog, *out);
    if (!absl::IsUnavailable(s) || absl::Now() >= until) return s;
    out->clear_log();
    absl::SleepFor(absl::Milliseconds(200));
  }
}

}  // namespace vouch::verifier
