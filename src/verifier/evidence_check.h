// File: verifier/evidence_check.h
// What the verifier does with one Evidence, apart from I/O: shape and bound
// checks against the outstanding Challenge (a violation is a StreamError,
// nothing is evaluated), then the evaluation through src/core — quote and
// clock rules first, and only for a verified quote the IMA log (integrity,
// then policy, from the stored replay position) and the boot log. Evidence
// is untrusted; the AIK, policies and stored state are trusted. Pure: time
// comes in as an argument; thread-safe for distinct inputs.
//
//   VOUCH_RETURN_IF_ERROR(ValidateEvidence(ev, challenge));  // StreamError
//   EvidenceOutcome out = CheckEvidence(ev, input);
#ifndef VOUCH_VERIFIER_EVIDENCE_CHECK_H_
#define VOUCH_VERIFIER_EVIDENCE_CHECK_H_

#include <tss2/tss2_tpm2_types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/bytes.h"
#include "core/boot/boot_policy.h"
#include "core/ima/ima_evaluator.h"
#include "core/ima/runtime_policy.h"
#include "core/rule.h"
#include "core/tpm/quote.h"
#include "vouch/v1/attestation.pb.h"

namespace vouch::verifier {

// Protocol bounds (attestation.proto).
inline constexpr size_t kMaxQuoteBytes = 1024;
inline constexpr size_t kMaxSignatureBytes = 1024;
inline constexpr int kMaxPcrBanks = 8;
inline constexpr size_t kMaxImaChunkBytes = 4 << 20;
inline constexpr size_t kMaxBootLogBytes = 1 << 20;
// Unverified IMA bytes held per agent across truncated chunks.
inline constexpr size_t kMaxHeldImaBytes = 64 << 20;
inline constexpr int kMaxListedFailures = 100;

struct IssuedChallenge {
  Bytes nonce;
  absl::Time expires_at;
  TPMI_ALG_HASH hash_alg = TPM2_ALG_SHA256;
  TPML_PCR_SELECTION selection{};
  std::optional<uint64_t> ima_from;
  bool want_boot_log = false;
};

// What the pool stored for the agent (the replay position to continue).
struct AgentProgress {
  std::optional<core::tpm::ClockInfo> clock;  // Of the last accepted quote.
  core::ima::ImaReplayState ima;
};

struct EvidenceInput {
  const core::tpm::AikVerifier* aik = nullptr;
  const IssuedChallenge* challenge = nullptr;
  AgentProgress progress;
  // Null when not enrolled.
  const core::ima::RuntimePolicy* runtime_policy = nullptr;
  const core::boot::BootPolicy* boot_policy = nullptr;
  // Entries of earlier truncated chunks, not yet proven (prepended).
  absl::string_view held_ima;
  bool allow_sha1 = false;
};

struct EvidenceOutcome {
  enum class Kind {
    kVerdict,   // Evaluated: commit, then send a Verdict.
    kNewBoot,   // The quote shows a reboot the Challenge did not ask for:
                // send a Challenge from IMA entry 0 (and for the boot log).
    kNeedMore,  // Truncated IMA chunk: hold `held_ima`, ask from
                // `next_ima_from`.
  };
  Kind kind = Kind::kVerdict;
  bool passed = false;
  std::vector<v1::Failure> failures;  // At most kMaxListedFailures.
  bool failures_truncated = false;
  // Set when the quote's signature verified (the clock is then the TPM's).
  std::optional<core::tpm::ClockInfo> clock;
  // The replay position after this evidence (unchanged when nothing was
  // proven); meaningful when a runtime policy is enrolled.
  core::ima::ImaReplayState ima;
  uint64_t ima_entries_received = 0;
  std::string held_ima;
  uint64_t next_ima_from = 0;
};

// kInvalidArgument naming the violated bound or rule (the reply is a
// StreamError; the Challenge stays outstanding).
absl::Status ValidateEvidence(const v1::Evidence& evidence,
                              const IssuedChallenge& challenge);

// Evaluates evidence that passed ValidateEvidence; see the file comment.
EvidenceOutcome CheckEvidence(const v1::Evidence& evidence,
                              const EvidenceInput& input);

// The FailureCode for a failed core rule (never FAILURE_CODE_UNSPECIFIED for
// an enumerator). An exhaustive switch: a rule added without a code does not
// compile.
v1::FailureCode FailureCodeFor(core::Rule rule);

// The v1 hash enum <-> TPM_ALG_ID (same numbers, checked).
std::optional<TPMI_ALG_HASH> TpmHashAlg(v1::HashAlgorithm alg);

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_EVIDENCE_CHECK_H_
