// File: fuzz/verifier_evidence_fixture.h
// The verifier's side of fuzz_verifier_evidence, shared with the seed
// generator (fuzz/seedgen) and the test that keeps the seeds verifying: a
// pinned AIK, a runtime policy, a boot reference state learned from a real
// event log, the outstanding Challenge (nonce 01..08, SHA-256 PCRs 0-10 and
// 14, IMA entries from 0, the boot log asked for exactly when one is sent)
// and the stored progress (clock 5 in boot 1, IMA replay at its start).
// Seeds made for this fixture pass the quote check, so the fuzzer mutates
// past it into the IMA and boot evaluation. Header-only; the AIK and the
// policy come from verifier_evidence_inputs.inc, which the generator writes.
// Fuzz and test code only. Run() is thread-safe.
//
//   auto fx = EvidenceFixture::Create(aik, policy, reference_log);
//   std::optional<EvidenceOutcome> out = fx->Run(evidence);
#ifndef VOUCH_FUZZ_VERIFIER_EVIDENCE_FIXTURE_H_
#define VOUCH_FUZZ_VERIFIER_EVIDENCE_FIXTURE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/bytes.h"
#include "common/status_macros.h"
#include "core/attest/evidence.h"
#include "core/boot/boot_policy.h"
#include "core/boot/event_log.h"
#include "core/ima/runtime_policy.h"
#include "core/tpm/quote.h"
#include "core/tpm/tpm_wire.h"
#include "vouch/v1/attestation.pb.h"

namespace vouch::fuzzing {

// What the checked-in seeds were made for (verifier_evidence_inputs.inc
// holds kEvidenceAikPublicHex and kEvidenceRuntimePolicy).
#include "verifier_evidence_inputs.inc"

// The real event log the boot reference state is learned from (relative to
// the repository's tests/data).
inline constexpr char kEvidenceReferenceLog[] =
    "keylime/binary_bios_measurements-secureboot";

inline Bytes EvidenceNonce() { return {1, 2, 3, 4, 5, 6, 7, 8}; }

// The last accepted quote's clock: a seed quotes a later clock in boot 1.
inline core::tpm::ClockInfo EvidencePreviousClock() {
  return core::tpm::ClockInfo{5, 1, 0, true};
}

// SHA-256 PCRs 0-9 and 14 (a reference state's UsedPcrs) and 10 (IMA).
inline TPML_PCR_SELECTION EvidenceSelection() {
  TPML_PCR_SELECTION s{};
  for (uint32_t pcr : {0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 10u, 14u}) {
    (void)core::tpm::SelectPcr(s, TPM2_ALG_SHA256, pcr);
  }
  return s;
}

class EvidenceFixture {
 public:
  // `aik_public`: TPM2B_PUBLIC; `runtime_policy`: Keylime JSON;
  // `reference_log`: the event log a reference state is learned from.
  static absl::StatusOr<std::unique_ptr<EvidenceFixture>> Create(
      ByteSpan aik_public, absl::string_view runtime_policy,
      ByteSpan reference_log) {
    auto fx = std::unique_ptr<EvidenceFixture>(new EvidenceFixture());
    VOUCH_ASSIGN_OR_RETURN(fx->aik_,
                           core::tpm::AikVerifier::Create(aik_public));
    VOUCH_ASSIGN_OR_RETURN(fx->runtime_,
                           core::ima::RuntimePolicy::FromJson(runtime_policy));
    VOUCH_ASSIGN_OR_RETURN(core::boot::EventLog log,
                           core::boot::ParseEventLog(reference_log));
    VOUCH_ASSIGN_OR_RETURN(std::string refstate,
                           core::boot::CreateReferenceState(log));
    VOUCH_ASSIGN_OR_RETURN(core::boot::BootPolicy boot,
                           core::boot::BootPolicy::FromJson(refstate));
    fx->boot_.emplace(std::move(boot));
    return fx;
  }

  // What the verifier does with `ev` against the fixed Challenge: nullopt
  // when ValidateEvidence refuses it (a StreamError), else the outcome.
  std::optional<core::attest::EvidenceOutcome> Run(
      const v1::Evidence& ev) const {
    core::attest::IssuedChallenge ch;
    ch.nonce = EvidenceNonce();
    ch.expires_at = absl::InfiniteFuture();
    ch.selection = EvidenceSelection();
    ch.ima_from = 0;
    ch.want_boot_log = !ev.boot_log().empty();
    if (!core::attest::ValidateEvidence(ev, ch).ok()) return std::nullopt;
    core::attest::EvidenceInput in;
    in.aik = aik_.get();
    in.challenge = &ch;
    in.progress.clock = EvidencePreviousClock();
    in.runtime_policy = runtime_.get();
    in.boot_policy = ch.want_boot_log ? &*boot_ : nullptr;
    in.allow_sha1 = true;
    return core::attest::CheckEvidence(ev, in, absl::FromUnixSeconds(1000));
  }

 private:
  EvidenceFixture() = default;
  std::unique_ptr<core::tpm::AikVerifier> aik_;
  std::shared_ptr<const core::ima::RuntimePolicy> runtime_;
  std::optional<core::boot::BootPolicy> boot_;
};

}  // namespace vouch::fuzzing

#endif  // VOUCH_FUZZ_VERIFIER_EVIDENCE_FIXTURE_H_
