// File: core/audit/reverify.h
// Re-verification of a kept attestation record without its agent: the
// record's quote, PCR values, the IMA entries of its boot from entry 0 and
// its boot's log are judged again by core/attest's CheckEvidence, from the
// start of the boot (no stored replay position, no earlier clock), with
// the record's nonce as the challenge and the record's time as `now`.
// Inputs are untrusted bytes (an audit bundle, or rows a database
// returned); policies are parsed by the caller. Pure and thread-safe.
//
//   ReverifyInput in{.aik_public = aik, .nonce = nonce, .evidence = &ev,
//                    .runtime_policy = policy.get(), .at = record_time};
//   VOUCH_ASSIGN_OR_RETURN(ReverifyOutcome out, Reverify(in));
#ifndef VOUCH_CORE_AUDIT_REVERIFY_H_
#define VOUCH_CORE_AUDIT_REVERIFY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/boot/boot_policy.h"
#include "core/boot/pcr_policy.h"
#include "core/ima/runtime_policy.h"
#include "vouch/v1/attestation.pb.h"
#include "vouch/v1/common.pb.h"

namespace vouch::core::audit {

// The most IMA data of one boot a re-verification reads.
inline constexpr size_t kMaxReverifyImaBytes = size_t{256} << 20;

struct ReverifyInput {
  std::string aik_public;  // TPM2B_PUBLIC
  std::string nonce;       // The record's nonce.
  // quote, signature, pcr_values; ima_entries from entry 0 of the boot
  // (empty without a runtime policy); boot_log ("" when none is kept).
  const v1::Evidence* evidence = nullptr;
  const ima::RuntimePolicy* runtime_policy = nullptr;  // Null: none.
  const boot::BootPolicy* boot_policy = nullptr;
  const boot::PcrPolicy* pcr_policy = nullptr;
  absl::Time at;  // The record's time (checks that depend on time).
};

struct ReverifyOutcome {
  bool passed = false;
  std::vector<v1::Failure> failures;  // At most attest::kMaxListedFailures.
  bool failures_truncated = false;
};

// kInvalidArgument when the AIK does not parse or the evidence is out of
// the protocol's bounds (naming which); otherwise the verdict, failing on
// any rule (never a pass for what could not be evaluated).
absl::StatusOr<ReverifyOutcome> Reverify(const ReverifyInput& in);

// Where a failure points when its evidence, not the machine, is at fault:
// "evidence.quote" (signature, nonce, PCR digest: the quote does not prove
// its PCRs), "evidence.ima_entries" (template hashes or replay do not
// match the quote), "evidence.boot_log", "evidence" (a part is missing);
// "" for a verdict on the machine (policy violations).
std::string EvidencePart(v1::FailureCode code);

}  // namespace vouch::core::audit

#endif  // VOUCH_CORE_AUDIT_REVERIFY_H_
