#include "core/audit/reverify.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/bytes.h"
#include "core/attest/evidence.h"
#include "core/attest/limits.h"
#include "core/attest/wire.h"
#include "core/tpm/quote.h"

namespace vouch::core::audit {

absl::StatusOr<ReverifyOutcome> Reverify(const ReverifyInput& in) {
  if (in.evidence == nullptr) {
    return absl::InvalidArgumentError("evidence: missing");
  }
  absl::StatusOr<std::unique_ptr<tpm::AikVerifier>> aik =
      tpm::AikVerifier::Create(AsBytes(in.aik_public));
  if (!aik.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("aik_public: ", aik.status().message()));
  }
  attest::IssuedChallenge challenge;
  challenge.nonce = ToBytes(in.nonce);
  challenge.expires_at = absl::InfiniteFuture();
  challenge.selection.count = 0;  // The quote proves what it selected.
  if (in.runtime_policy != nullptr) challenge.ima_from = 0;
  challenge.want_boot_log = !in.evidence->boot_log().empty();
  v1::Evidence ev = *in.evidence;
  // The bounds of one pushed Evidence (ValidateEvidence), except that the
  // IMA entries are a whole boot's (kMaxReverifyImaBytes).
  if (ev.quote().size() > attest::kMaxQuoteBytes ||
      ev.signature().size() > attest::kMaxSignatureBytes) {
    return absl::InvalidArgumentError("evidence.quote: over 1 KiB");
  }
  if (ev.boot_log().size() > attest::kMaxBootLogBytes) {
    return absl::InvalidArgumentError("evidence.boot_log: over 1 MiB");
  }
  if (ev.ima_entries().data().size() > kMaxReverifyImaBytes) {
    return absl::InvalidArgumentError("evidence.ima_entries: over 256 MiB");
  }
  const v1::ImaLogChunk& chunk = ev.ima_entries();
  if (chunk.template_hash_alg() != v1::HASH_ALGORITHM_UNSPECIFIED &&
      chunk.template_hash_alg() != v1::HASH_ALGORITHM_SHA1) {
    return absl::InvalidArgumentError(
        "evidence.ima_entries.template_hash_alg: only SHA1 lists");
  }
  if (absl::Status s = attest::PcrValuesFromProto(ev.pcr_values()).status();
      !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("evidence.pcr_values: ", s.message()));
  }
  if (in.runtime_policy == nullptr) {
    ev.clear_ima_entries();
  } else {
    v1::ImaLogChunk* c = ev.mutable_ima_entries();
    c->set_first_index(0);
    c->set_truncated(false);
    if (c->format() == v1::IMA_LOG_FORMAT_UNSPECIFIED) {
      c->set_format(v1::IMA_LOG_FORMAT_ASCII);
    }
  }
  attest::EvidenceInput input;
  input.aik = aik->get();
  input.challenge = &challenge;
  input.runtime_policy = in.runtime_policy;
  input.boot_policy = in.boot_policy;
  input.pcr_policy = in.pcr_policy;
  attest::EvidenceOutcome out = attest::CheckEvidence(ev, input, in.at);
  ReverifyOutcome r;
  if (out.kind != attest::EvidenceOutcome::Kind::kVerdict) {
    // No stored position, no earlier clock and an untruncated chunk: only
    // a log that cannot reach the quote gets here. Never a pass.
    v1::Failure f;
    f.set_code(v1::FAILURE_CODE_EVIDENCE_MISSING);
    f.set_detail("the kept evidence does not complete an evaluation");
    r.failures.push_back(std::move(f));
    return r;
  }
  r.passed = out.passed && out.failures.empty();
  r.failures = std::move(out.failures);
  r.failures_truncated = out.failures_truncated;
  return r;
}

std::string EvidencePart(v1::FailureCode code) {
  switch (code) {
    case v1::FAILURE_CODE_QUOTE_MALFORMED:
    case v1::FAILURE_CODE_QUOTE_NOT_TPM_GENERATED:
    case v1::FAILURE_CODE_QUOTE_WRONG_TYPE:
    case v1::FAILURE_CODE_QUOTE_SIGNATURE_INVALID:
    case v1::FAILURE_CODE_QUOTE_SCHEME_NOT_ALLOWED:
    case v1::FAILURE_CODE_NONCE_MISMATCH:
    case v1::FAILURE_CODE_PCR_SELECTION_MISMATCH:
    case v1::FAILURE_CODE_PCR_DIGEST_MISMATCH:
    case v1::FAILURE_CODE_CLOCK_NOT_SAFE:
    case v1::FAILURE_CODE_CLOCK_ROLLBACK:
      return "evidence.quote";
    case v1::FAILURE_CODE_IMA_LOG_MALFORMED:
    case v1::FAILURE_CODE_IMA_TEMPLATE_UNSUPPORTED:
    case v1::FAILURE_CODE_IMA_TEMPLATE_HASH_MISMATCH:
    case v1::FAILURE_CODE_IMA_REPLAY_MISMATCH:
    case v1::FAILURE_CODE_IMA_BOOT_AGGREGATE_MISMATCH:
    case v1::FAILURE_CODE_IMA_LOG_TOO_LARGE:
      return "evidence.ima_entries";
    case v1::FAILURE_CODE_BOOT_LOG_MALFORMED:
    case v1::FAILURE_CODE_BOOT_LOG_REPLAY_MISMATCH:
      return "evidence.boot_log";
    case v1::FAILURE_CODE_EVIDENCE_MISSING:
    case v1::FAILURE_CODE_POLICY_UNAVAILABLE:
      return "evidence";
    default:
      return "";
  }
}

}  // namespace vouch::core::audit
