// File: core/boot/boot_policy.h
// The measured-boot policy: a Keylime-compatible reference state (secure
// boot state, S-CRTM and firmware, PK/KEK/db/dbx, MOK lists, shim/grub/kernel
// Authenticode digests, initrd digest, kernel command line pattern) plus a
// plain map of allowed PCR values, evaluated natively. Reference states come
// from operators (bounded, validated on load); event logs are untrusted. A
// BootPolicy is immutable after FromJson and may be shared between threads.
//
//   VOUCH_ASSIGN_OR_RETURN(BootPolicy policy, BootPolicy::FromJson(text));
//   Verdict v = policy.Evaluate(log, replayed);  // after CheckQuotedPcrs
#ifndef VOUCH_CORE_BOOT_BOOT_POLICY_H_
#define VOUCH_CORE_BOOT_BOOT_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/boot/event_log.h"
#include "core/boot/replay.h"
#include "core/verdict.h"

namespace vouch::core::boot {

// Reference states above this size are refused (a real one with a full dbx
// is well under 100 KiB).
inline constexpr size_t kMaxReferenceStateBytes = 8u << 20;

class BootPolicy {
 public:
  // Parses a reference state (JSON object; format in docs/boot.md).
  // kInvalidArgument names the field for malformed JSON, a missing Keylime
  // field when any is present, an unknown field, bad hex, or a kernel_cmdline
  // pattern RE2 cannot compile. An empty object is a valid, empty policy
  // that rejects every log (fail closed).
  static absl::StatusOr<BootPolicy> FromJson(absl::string_view json);

  // Evaluates an event log whose replay is `replayed`. The caller must have
  // checked the quoted PCRs in UsedPcrs() against `replayed`
  // (CheckQuotedPcrs) — without that the log proves nothing. Each failure
  // names the event number, PCR and field. Always complete.
  Verdict Evaluate(const EventLog& log, const PcrBanks& replayed) const;

  // The PCRs whose quoted values must equal the replayed ones: 0-9 and 14
  // with a Keylime reference state, plus every PCR of the `pcrs` map.
  std::set<uint32_t> UsedPcrs() const;

  // True when the reference state holds nothing to check.
  bool empty() const;

  struct State;  // Defined in boot_policy.cc.

 private:
  explicit BootPolicy(std::shared_ptr<const State> state)
      : state_(std::move(state)) {}
  std::shared_ptr<const State> state_;
};

// The whole measured-boot check a verifier runs on what an agent sent:
// ParseEventLog, Replay, CheckQuotedPcrs on the policy's UsedPcrs() in bank
// `alg` of the (already verified) quote, then Evaluate; one merged verdict.
// kInvalidArgument for a malformed log (could not evaluate).
absl::StatusOr<Verdict> VerifyBootLog(ByteSpan log_bytes, uint16_t alg,
                                      const PcrValues& quoted,
                                      const BootPolicy& policy);

// Learns a reference state from a known-good log (like Keylime's
// create_mb_refstate): the secure boot state, S-CRTM and PCR 0 firmware
// digests, PK/KEK/db/dbx/vendor_db entries, MokList/MokListX digests,
// firmware applications, and one `kernels` entry (shim, grub, kernel
// Authenticode digests, initrd digest, the exact kernel command line as a
// quoted pattern). Returns pretty JSON. kInvalidArgument, naming what is
// missing, when the log lacks a SHA-256 bank, an S-CRTM version event, or the
// boot chain a kernels entry needs.
absl::StatusOr<std::string> CreateReferenceState(const EventLog& log);

}  // namespace vouch::core::boot

#endif  // VOUCH_CORE_BOOT_BOOT_POLICY_H_
