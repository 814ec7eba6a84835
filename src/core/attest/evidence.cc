#include "core/attest/evidence.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/attest/wire.h"
#include "core/boot/event_log.h"
#include "core/rule.h"
#include "core/tpm/tpm_wire.h"

namespace vouch::core::attest {
namespace {

namespace ctpm = ::vouch::core::tpm;
namespace cima = ::vouch::core::ima;

void AddFailure(EvidenceOutcome& out, v1::Failure f) {
  if (static_cast<int>(out.failures.size()) >= kMaxListedFailures) {
    out.failures_truncated = true;
    return;
  }
  out.failures.push_back(std::move(f));
}

void AddVerdictFailures(EvidenceOutcome& out, const core::Verdict& verdict) {
  for (const core::Failure& f : verdict.failures()) {
    v1::Failure p;
    p.set_code(FailureCodeFor(f.rule));
    p.set_detail(f.detail.substr(0, kMaxFailureDetailBytes));
    AddFailure(out, std::move(p));
  }
}

v1::Failure Simple(v1::FailureCode code, std::string detail) {
  v1::Failure f;
  f.set_code(code);
  f.set_detail(std::move(detail));
  return f;
}

}  // namespace

v1::FailureCode FailureCodeFor(core::Rule rule) {
  using core::Rule;
  // No default: -Wswitch makes a rule without a code a compile error.
  switch (rule) {
    case Rule::kQuoteMagic:
      return v1::FAILURE_CODE_QUOTE_NOT_TPM_GENERATED;
    case Rule::kQuoteType:
      return v1::FAILURE_CODE_QUOTE_WRONG_TYPE;
    case Rule::kQuoteSignature:
      return v1::FAILURE_CODE_QUOTE_SIGNATURE_INVALID;
    case Rule::kQuoteSignatureAlg:
      return v1::FAILURE_CODE_QUOTE_SCHEME_NOT_ALLOWED;
    case Rule::kQuoteNonce:
      return v1::FAILURE_CODE_NONCE_MISMATCH;
    case Rule::kQuotePcrBank:
    case Rule::kQuotePcrSelection:
      return v1::FAILURE_CODE_PCR_SELECTION_MISMATCH;
    case Rule::kQuotePcrValues:
    case Rule::kQuotePcrDigest:
      return v1::FAILURE_CODE_PCR_DIGEST_MISMATCH;
    case Rule::kQuoteClockSafe:
      return v1::FAILURE_CODE_CLOCK_NOT_SAFE;
    case Rule::kQuoteClockResetCount:
    case Rule::kQuoteClockRestartCount:
    case Rule::kQuoteClockClock:
      return v1::FAILURE_CODE_CLOCK_ROLLBACK;
    // Registration rules: VerifyQuote never reports them (the registrar
    // checks the AIK and the EK certificate before an agent can attest).
    // Should one reach a verdict, the quote's signature is only as good as
    // the AIK's admission and the EK vouching for it. (Matched by no name
    // before, they would have been FAILURE_CODE_UNSPECIFIED.)
    case Rule::kAikRestricted:
    case Rule::kAikSign:
    case Rule::kAikDecrypt:
    case Rule::kAikFixedTpm:
    case Rule::kAikFixedParent:
    case Rule::kAikSensitiveDataOrigin:
    case Rule::kAikNameAlg:
    case Rule::kAikAlgorithm:
    case Rule::kAikAttributes:
    case Rule::kEkCertParse:
    case Rule::kEkCertKey:
    case Rule::kEkCertChain:
      return v1::FAILURE_CODE_QUOTE_SIGNATURE_INVALID;
    case Rule::kImaBadTemplateHash:
      return v1::FAILURE_CODE_IMA_TEMPLATE_HASH_MISMATCH;
    case Rule::kImaPcrMismatch:
      return v1::FAILURE_CODE_IMA_REPLAY_MISMATCH;
    case Rule::kImaNotInPolicy:
      return v1::FAILURE_CODE_IMA_FILE_NOT_IN_POLICY;
    case Rule::kImaDigestMismatch:
      return v1::FAILURE_CODE_IMA_DIGEST_NOT_ALLOWED;
    case Rule::kImaBadSignature:
      return v1::FAILURE_CODE_IMA_SIGNATURE_INVALID;
    case Rule::kImaKeyringNotAllowed:
      return v1::FAILURE_CODE_IMA_BUFFER_NOT_ALLOWED;
    case Rule::kImaRejected:
      return v1::FAILURE_CODE_IMA_REJECTED;
    case Rule::kImaWrongPcr:
    case Rule::kImaViolation:
      return v1::FAILURE_CODE_IMA_LOG_MALFORMED;
    case Rule::kBootPcrQuote:
      return v1::FAILURE_CODE_BOOT_LOG_REPLAY_MISMATCH;
    case Rule::kBootRefstate:
      return v1::FAILURE_CODE_BOOT_POLICY_EMPTY;
    case Rule::kBootSecureboot:
      return v1::FAILURE_CODE_SECURE_BOOT_DISABLED;
    case Rule::kBootKernels:
    case Rule::kBootFirmwareApps:
      return v1::FAILURE_CODE_BOOT_COMPONENT_NOT_ALLOWED;
    case Rule::kBootPk:
    case Rule::kBootKek:
    case Rule::kBootDb:
    case Rule::kBootDbx:
      return v1::FAILURE_CODE_BOOT_VARIABLE_NOT_ALLOWED;
    case Rule::kBootPcrs:
    case Rule::kBootEventUnexpected:
    case Rule::kBootEventRepeated:
    case Rule::kBootEventDigest:
    case Rule::kBootEventData:
    case Rule::kBootSeparator:
    case Rule::kBootEfiAction:
    case Rule::kBootScrtmAndBios:
    case Rule::kBootVendorDb:
    case Rule::kBootMokdig:
    case Rule::kBootMokxdig:
      return v1::FAILURE_CODE_BOOT_POLICY_VIOLATION;
  }
  return v1::FAILURE_CODE_UNSPECIFIED;  // Not a Rule value.
}

std::string EncodeBootPcrs(const ctpm::PcrBank& pcrs) {
  std::string out;
  for (uint32_t p : kBootPcrs) {
    auto v = pcrs.find(p);
    if (v == pcrs.end() || v->second.size() != kBootPcrBytes) return "";
    out.append(v->second.begin(), v->second.end());
  }
  return out;
}

absl::StatusOr<std::optional<ctpm::PcrBank>> DecodeBootPcrs(
    absl::string_view stored) {
  if (stored.empty()) return std::optional<ctpm::PcrBank>();
  if (stored.size() != kBootPcrCount * kBootPcrBytes) {
    return absl::InvalidArgumentError(
        "boot_pcrs: not 11 SHA-256 values (PCRs 0-9 and 14)");
  }
  ctpm::PcrBank bank;
  for (size_t i = 0; i < kBootPcrCount; ++i) {
    bank.emplace(kBootPcrs[i],
                 ToBytes(stored.substr(i * kBootPcrBytes, kBootPcrBytes)));
  }
  return std::optional<ctpm::PcrBank>(std::move(bank));
}

absl::Status ValidateEvidence(const v1::Evidence& ev,
                              const IssuedChallenge& challenge) {
  if (ev.quote().empty() || ev.quote().size() > kMaxQuoteBytes) {
    return absl::InvalidArgumentError("quote: 1..1024 bytes");
  }
  if (ev.signature().empty() || ev.signature().size() > kMaxSignatureBytes) {
    return absl::InvalidArgumentError("signature: 1..1024 bytes");
  }
  if (ev.pcr_values_size() > kMaxPcrBanks) {
    return absl::InvalidArgumentError("pcr_values: at most 8 banks");
  }
  if (ev.has_ima_entries() != challenge.ima_from.has_value()) {
    return absl::InvalidArgumentError(
        challenge.ima_from ? "ima_entries: required by the challenge"
                           : "ima_entries: not asked for");
  }
  if (ev.has_ima_entries()) {
    const v1::ImaLogChunk& chunk = ev.ima_entries();
    if (chunk.first_index() != *challenge.ima_from) {
      return absl::InvalidArgumentError(
          absl::StrCat("ima_entries.first_index is ", chunk.first_index(),
                       ", the challenge asked from ", *challenge.ima_from));
    }
    if (chunk.data().size() > kMaxImaChunkBytes) {
      return absl::InvalidArgumentError("ima_entries.data: over 4 MiB");
    }
    if (chunk.format() != v1::IMA_LOG_FORMAT_ASCII &&
        chunk.format() != v1::IMA_LOG_FORMAT_BINARY) {
      return absl::InvalidArgumentError("ima_entries.format: not set");
    }
    if (chunk.template_hash_alg() != v1::HASH_ALGORITHM_UNSPECIFIED &&
        chunk.template_hash_alg() != v1::HASH_ALGORITHM_SHA1) {
      return absl::InvalidArgumentError(
          "ima_entries.template_hash_alg: only SHA1 lists are accepted");
    }
  }
  if (!ev.boot_log().empty() && !challenge.want_boot_log) {
    return absl::InvalidArgumentError("boot_log: not asked for");
  }
  if (ev.boot_log().size() > kMaxBootLogBytes) {
    return absl::InvalidArgumentError("boot_log: over 1 MiB");
  }
  return PcrValuesFromProto(ev.pcr_values()).status();
}

namespace {

// The PCR policy on the verified quote: every PCR it names quoted and
// holding an allowed value (the top-level values are of the challenged
// bank).
void EvaluatePcrPolicy(const EvidenceInput& in, const VerifiedPcrs& pcrs,
                       EvidenceOutcome& out) {
  for (const boot::PcrMismatch& m :
       in.pcr_policy->Evaluate(in.challenge->hash_alg, pcrs.values())) {
    v1::Failure f = Simple(v1::FAILURE_CODE_PCR_VALUE_NOT_ALLOWED, m.reason);
    f.set_pcr_index(m.pcr);
    for (v1::HashAlgorithm a :
         {v1::HASH_ALGORITHM_SHA1, v1::HASH_ALGORITHM_SHA256,
          v1::HASH_ALGORITHM_SHA384, v1::HASH_ALGORITHM_SHA512}) {
      if (TpmHashAlg(a) == m.alg) f.set_pcr_bank(a);
    }
    AddFailure(out, std::move(f));
  }
}

// The boot rules, on the verified quote: with a boot log, the log against
// the boot policy, replayed to the verified PCRs (the quoted boot PCRs are
// kept when it is accepted); without one, the quoted boot PCRs against those
// kept from the last accepted log. Anything short of that fails closed.
void EvaluateBoot(const v1::Evidence& ev, const EvidenceInput& in,
                  const VerifiedPcrs& pcrs, EvidenceOutcome& out) {
  const IssuedChallenge& ch = *in.challenge;
  if (!ev.boot_log().empty()) {
    out.boot_log_evaluated = true;
    out.boot_pcrs = ctpm::PcrBank{};  // Not accepted unless it passes below.
  }
  auto bank = pcrs.values().find(TPM2_ALG_SHA256);
  ctpm::PcrBank quoted;
  for (uint32_t p : kBootPcrs) {
    auto v = bank == pcrs.values().end() ? ctpm::PcrBank::const_iterator()
                                         : bank->second.find(p);
    if (bank == pcrs.values().end() || v == bank->second.end()) {
      AddFailure(out, Simple(v1::FAILURE_CODE_BOOT_EVALUATION_INCOMPLETE,
                             absl::StrCat("the quote does not cover boot PCR ",
                                          p, " (SHA-256)")));
      return;
    }
    quoted.emplace(p, v->second);
  }
  if (ev.boot_log().empty()) {
    if (ch.want_boot_log) {
      AddFailure(out, Simple(v1::FAILURE_CODE_EVIDENCE_MISSING,
                             "the boot log was asked for and not sent"));
    } else if (!in.progress.boot_pcrs.has_value()) {
      AddFailure(out, Simple(v1::FAILURE_CODE_BOOT_EVALUATION_INCOMPLETE,
                             "no boot log of this boot was accepted to "
                             "compare the boot PCRs with"));
    } else {
      for (const auto& [p, value] : quoted) {
        auto kept = in.progress.boot_pcrs->find(p);
        if (kept == in.progress.boot_pcrs->end() || kept->second != value) {
          AddFailure(out, Simple(v1::FAILURE_CODE_BOOT_PCRS_CHANGED,
                                 absl::StrCat("PCR ", p,
                                              " changed since the boot log "
                                              "was accepted")));
        }
      }
    }
    return;
  }
  absl::StatusOr<core::Verdict> verdict = boot::VerifyBootLog(
      AsBytes(ev.boot_log()), boot::kAlgSha256, bank->second, *in.boot_policy);
  if (!verdict.ok()) {
    AddFailure(out, Simple(v1::FAILURE_CODE_BOOT_LOG_MALFORMED,
                           std::string(verdict.status().message())));
    return;
  }
  AddVerdictFailures(out, *verdict);
  if (!verdict->complete()) {
    AddFailure(out, Simple(v1::FAILURE_CODE_BOOT_EVALUATION_INCOMPLETE,
                           "the boot policy evaluation did not complete"));
    return;
  }
  if (verdict->passed()) out.boot_pcrs = std::move(quoted);
}

// Whether an evaluation failed only because a truncated chunk did not reach
// the quoted PCR 10 yet (then the verifier asks for more).
bool OnlyShortOfTheQuote(const v1::ImaLogChunk& chunk,
                         const cima::ImaEvaluation& r) {
  return chunk.truncated() && !r.pcr_matched &&
         r.failures.size() == r.failure_count &&
         std::all_of(r.failures.begin(), r.failures.end(),
                     [](const cima::ImaFailure& f) {
                       return f.reason == core::Rule::kImaPcrMismatch;
                     });
}

v1::Failure ImaFailureProto(const cima::ImaFailure& f) {
  v1::Failure p;
  p.set_code(FailureCodeFor(f.reason));
  p.set_detail(f.detail.substr(0, kMaxFailureDetailBytes));
  p.set_ima_entry_index(f.index);
  p.set_path(cima::DisplayPath(f.path).substr(0, kMaxFailurePathBytes));
  return p;
}

void AddImaFailures(const cima::ImaEvaluation& r, EvidenceOutcome& out) {
  for (const cima::ImaFailure& f : r.failures) {
    AddFailure(out, ImaFailureProto(f));
  }
  out.ima_window_accepted = r.window_accepted;
  out.shadow_checked = r.shadow_checked;
  out.shadow_failure_count = r.shadow_failure_count;
  // Already at most kMaxListedFailures (EvaluateIma's options).
  for (const cima::ImaFailure& f : r.shadow_failures) {
    out.shadow_failures.push_back(ImaFailureProto(f));
  }
  if (r.failure_count > r.failures.size()) out.failures_truncated = true;
  if (!r.verdict.complete() && r.failures.empty()) {
    AddFailure(out, Simple(v1::FAILURE_CODE_IMA_LOG_MALFORMED,
                           "IMA evaluation did not complete"));
  }
}

// The IMA chunk (after any held entries) replayed from the stored position
// to the verified PCR 10, then the proven entries against the policy.
// Returns false when the outcome is final without a verdict (kNeedMore).
bool EvaluateIma(const v1::Evidence& ev, const EvidenceInput& in,
                 const VerifiedPcrs& pcrs, EvidenceOutcome& out) {
  const v1::ImaLogChunk& chunk = ev.ima_entries();
  auto bank = pcrs.values().find(TPM2_ALG_SHA256);
  auto pcr10 = bank == pcrs.values().end() ? ctpm::PcrBank::const_iterator()
                                           : bank->second.find(cima::kImaPcr);
  if (bank == pcrs.values().end() || pcr10 == bank->second.end()) {
    AddFailure(out, Simple(v1::FAILURE_CODE_EVIDENCE_MISSING,
                           "the quote does not cover PCR 10 (SHA-256)"));
    return true;
  }
  std::string data;
  absl::string_view chunk_bytes = chunk.data();
  if (!in.held_ima.empty()) {
    data = absl::StrCat(in.held_ima, chunk.data());
    chunk_bytes = data;
  }
  cima::QuotedPcr10 quoted;
  std::array<uint8_t, 32> v{};
  std::memcpy(v.data(), pcr10->second.data(), v.size());
  quoted.sha256 = v;
  cima::ImaEvalOptions opts;
  opts.replay_sha1 = false;  // The pool replays the SHA-256 bank.
  opts.max_listed_failures = kMaxListedFailures;
  opts.rollout.window = in.window_policy;
  opts.rollout.shadow = in.shadow_policy;
  absl::StatusOr<cima::ImaEvaluation> r = cima::EvaluateImaLog(
      in.progress.ima, chunk_bytes, quoted, in.runtime_policy, opts);
  if (!r.ok()) {
    AddFailure(out, Simple(v1::FAILURE_CODE_IMA_LOG_MALFORMED,
                           std::string(r.status().message())));
    return true;
  }
  if (!OnlyShortOfTheQuote(chunk, *r)) {
    // Only the proven entries count: entries past the quoted PCR 10 come
    // again with the next quote and are counted then, once.
    out.ima_entries_received = r->entries_accepted;
    out.ima = r->state;
    out.ima_bytes_accepted = r->bytes_accepted;
    AddImaFailures(*r, out);
    return true;
  }
  if (chunk_bytes.size() > kMaxHeldImaBytes) {
    AddFailure(out, Simple(v1::FAILURE_CODE_IMA_LOG_TOO_LARGE,
                           "over 64 MiB of unproven IMA entries"));
    return true;
  }
  out.kind = EvidenceOutcome::Kind::kNeedMore;
  out.held_ima = std::string(chunk_bytes);
  out.next_ima_from = in.progress.ima.next_entry_index + r->entries_parsed;
  return false;
}

// A reboot (TPM 2.0 Part 1, 36.6: resetCount counts TPM Resets): PCR 10
// and the IMA list start over; true when this challenge did not already
// ask for both logs from their start.
bool UnaskedReboot(const EvidenceInput& in, const ctpm::ClockInfo& clock) {
  const IssuedChallenge& ch = *in.challenge;
  if (!in.progress.clock.has_value() ||
      clock.reset_count <= in.progress.clock->reset_count) {
    return false;
  }
  const bool ima_from_zero =
      in.runtime_policy == nullptr || (ch.ima_from && *ch.ima_from == 0 &&
                                       in.progress.ima.next_entry_index == 0);
  const bool boot_ok = in.boot_policy == nullptr || ch.want_boot_log;
  return !ima_from_zero || !boot_ok;
}

}  // namespace

EvidenceOutcome CheckEvidence(const v1::Evidence& ev, const EvidenceInput& in,
                              absl::Time now) {
  EvidenceOutcome out;
  out.ima = in.progress.ima;
  const IssuedChallenge& ch = *in.challenge;
  if (now > ch.expires_at) {
    out.kind = EvidenceOutcome::Kind::kExpired;
    return out;
  }
  absl::StatusOr<ctpm::PcrValues> pcrs = PcrValuesFromProto(ev.pcr_values());
  if (!pcrs.ok()) {
    AddFailure(out, Simple(v1::FAILURE_CODE_QUOTE_MALFORMED,
                           std::string(pcrs.status().message())));
    return out;
  }
  ctpm::QuotePolicy qp;
  if (in.allow_sha1) qp.allowed_hash_algs.push_back(TPM2_ALG_SHA1);
  qp.required_selection = ch.selection;
  ctpm::QuoteEvidence qe;
  qe.attest = AsBytes(ev.quote());
  qe.signature = AsBytes(ev.signature());
  qe.nonce = ch.nonce;
  qe.pcr_values = &*pcrs;
  qe.previous = in.progress.clock;
  absl::StatusOr<ctpm::QuoteResult> quote = in.aik->VerifyQuote(qe, qp);
  if (!quote.ok()) {
    AddFailure(out, Simple(v1::FAILURE_CODE_QUOTE_MALFORMED,
                           std::string(quote.status().message())));
    return out;
  }
  bool signature_ok = true;
  for (const core::Failure& f : quote->verdict.failures()) {
    if (f.rule == core::Rule::kQuoteSignature ||
        f.rule == core::Rule::kQuoteSignatureAlg ||
        f.rule == core::Rule::kQuoteMagic || f.rule == core::Rule::kQuoteType) {
      signature_ok = false;
    }
  }
  if (signature_ok) out.clock = quote->clock;
  if (!quote->verdict.passed()) {
    AddVerdictFailures(out, quote->verdict);
    return out;  // Nothing else is proven without a verified quote.
  }
  if (UnaskedReboot(in, quote->clock)) {
    out.kind = EvidenceOutcome::Kind::kNewBoot;
    return out;
  }
  const VerifiedPcrs verified(*std::move(pcrs));
  if (in.pcr_policy != nullptr) EvaluatePcrPolicy(in, verified, out);
  if (in.boot_policy != nullptr) EvaluateBoot(ev, in, verified, out);
  if (in.runtime_policy != nullptr && !EvaluateIma(ev, in, verified, out)) {
    return out;
  }
  out.passed = out.failures.empty() && !out.failures_truncated;
  return out;
}

}  // namespace vouch::core::attest
