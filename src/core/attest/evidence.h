// File: core/attest/evidence.h
// What the verifier does with one Evidence, apart from I/O: shape and bound
// checks against the outstanding Challenge (a violation is a StreamError,
// nothing is evaluated), then the evaluation through src/core — the nonce's
// expiry, quote and clock rules first, and only for a verified quote
// (`VerifiedPcrs`, which nothing else can make) the PCR policy, the IMA
// log (integrity, then policy, from the stored replay position) and the
// boot log. Evidence
// is untrusted; the AIK, policies and stored state are trusted. Pure: time
// comes in as an argument; thread-safe for distinct inputs.
//
//   VOUCH_RETURN_IF_ERROR(ValidateEvidence(ev, challenge));  // StreamError
//   EvidenceOutcome out = CheckEvidence(ev, input, now);
#ifndef VOUCH_CORE_ATTEST_EVIDENCE_H_
#define VOUCH_CORE_ATTEST_EVIDENCE_H_

#include <tss2/tss2_tpm2_types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/bytes.h"
#include "core/attest/limits.h"
#include "core/boot/boot_policy.h"
#include "core/boot/pcr_policy.h"
#include "core/ima/ima_evaluator.h"
#include "core/ima/runtime_policy.h"
#include "core/rule.h"
#include "core/tpm/quote.h"
#include "vouch/v1/attestation.pb.h"

namespace vouch::core::attest {

struct IssuedChallenge {
  Bytes nonce;
  absl::Time expires_at;
  TPMI_ALG_HASH hash_alg = TPM2_ALG_SHA256;
  TPML_PCR_SELECTION selection{};
  std::optional<uint64_t> ima_from;
  bool want_boot_log = false;
};

// The boot PCRs: 0-9 and 14 (SHA-256 bank), the PCRs the platform
// firmware, boot loader and shim extend during boot (TCG PC Client PFP,
// section 3.3.4). A boot policy makes every Challenge select them.
inline constexpr uint32_t kBootPcrs[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14};
inline constexpr size_t kBootPcrCount = sizeof(kBootPcrs) / sizeof(uint32_t);
inline constexpr size_t kBootPcrBytes = 32;

// What the pool stored for the agent (the replay position to continue).
struct AgentProgress {
  std::optional<tpm::ClockInfo> clock;  // Of the last accepted quote.
  ima::ImaReplayState ima;
  // The boot PCRs (kBootPcrs, SHA-256) of the quote whose boot log was last
  // accepted in this boot; unset when none is. A later quote without a boot
  // log must show exactly these.
  std::optional<tpm::PcrBank> boot_pcrs;
};

// The stored form of AgentProgress::boot_pcrs: the kBootPcrs values in
// order, 32 bytes each (352 bytes); "" for none. DecodeBootPcrs refuses
// anything else with kInvalidArgument (a damaged row is not trusted).
std::string EncodeBootPcrs(const tpm::PcrBank& pcrs);
absl::StatusOr<std::optional<tpm::PcrBank>> DecodeBootPcrs(
    absl::string_view stored);

struct EvidenceInput {
  const tpm::AikVerifier* aik = nullptr;
  const IssuedChallenge* challenge = nullptr;
  AgentProgress progress;
  // Null when not enrolled.
  const ima::RuntimePolicy* runtime_policy = nullptr;
  const boot::BootPolicy* boot_policy = nullptr;
  const boot::PcrPolicy* pcr_policy = nullptr;
  // A roll-out of the runtime policy (ima::ImaRollout): an update window's
  // candidate and a shadow version; null when none applies to the agent.
  const ima::RuntimePolicy* window_policy = nullptr;
  const ima::RuntimePolicy* shadow_policy = nullptr;
  // Entries of earlier truncated chunks, not yet proven (prepended).
  absl::string_view held_ima;
  bool allow_sha1 = false;
};

struct EvidenceOutcome {
  enum class Kind {
    kVerdict,   // Evaluated: commit, then send a Verdict.
    kExpired,   // The challenge's nonce expired before the evidence came:
                // nothing evaluated; send a fresh Challenge.
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
  std::optional<tpm::ClockInfo> clock;
  // The replay position after this evidence (unchanged when nothing was
  // proven); meaningful when a runtime policy is enrolled.
  ima::ImaReplayState ima;
  // IMA entries this evidence proved (the replay position advanced by as
  // many); entries past the quote are not counted until a quote covers them.
  uint64_t ima_entries_received = 0;
  // Bytes of the IMA data (held entries, then the chunk) the accepted
  // entries took: what a kept record stores.
  size_t ima_bytes_accepted = 0;
  // Proven entries the update window's candidate accepted (they passed).
  uint64_t ima_window_accepted = 0;
  // The shadow version's would-be failures on the proven entries (at most
  // kMaxListedFailures listed, all counted); never part of `failures`.
  bool shadow_checked = false;
  std::vector<v1::Failure> shadow_failures;
  uint64_t shadow_failure_count = 0;
  // True when a boot log came with this evidence and was evaluated.
  bool boot_log_evaluated = false;
  // Set when a boot log was evaluated: the quoted boot PCRs when it was
  // accepted, an empty bank when it was not (the next Challenge asks for
  // the log again). Unset: the kept boot PCRs are unchanged.
  std::optional<tpm::PcrBank> boot_pcrs;
  std::string held_ima;
  uint64_t next_ima_from = 0;
};

// PCR values whose quote verified (signature by the pinned AIK, nonce,
// digest, clock). Only CheckEvidence makes one, after the quote passed; the
// log evaluations below take it, so no log is judged against PCRs that a
// quote did not prove.
class VerifiedPcrs {
 public:
  const tpm::PcrValues& values() const { return values_; }

 private:
  explicit VerifiedPcrs(tpm::PcrValues values) : values_(std::move(values)) {}
  tpm::PcrValues values_;
  friend EvidenceOutcome CheckEvidence(const v1::Evidence&,
                                       const EvidenceInput&, absl::Time);
};

// kInvalidArgument naming the violated bound or rule (the reply is a
// StreamError; the Challenge stays outstanding).
absl::Status ValidateEvidence(const v1::Evidence& evidence,
                              const IssuedChallenge& challenge);

// Evaluates evidence that passed ValidateEvidence at time `now`; see the
// file comment. A challenge past its expiry is kExpired, whatever the
// evidence holds.
EvidenceOutcome CheckEvidence(const v1::Evidence& evidence,
                              const EvidenceInput& input, absl::Time now);

// The FailureCode for a failed core rule (never FAILURE_CODE_UNSPECIFIED for
// an enumerator). An exhaustive switch: a rule added without a code does not
// compile.
v1::FailureCode FailureCodeFor(core::Rule rule);

}  // namespace vouch::core::attest

#endif  // VOUCH_CORE_ATTEST_EVIDENCE_H_
