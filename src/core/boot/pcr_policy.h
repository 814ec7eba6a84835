// File: core/boot/pcr_policy.h
// The PCR policy: expected PCR values, as Keylime's `tpm_policy` writes them
// (a PCR index "0".."23" maps to the list of allowed hex values of the
// quoted bank), optionally per bank ("sha256": {"7": [...]}). Documents come
// from operators but are parsed as hostile input (bounded, validated on
// load); the values it is evaluated against must come from a verified quote.
// A PcrPolicy is immutable after FromJson and may be shared between threads.
//
//   VOUCH_ASSIGN_OR_RETURN(PcrPolicy policy, PcrPolicy::FromJson(text));
//   for (const PcrMismatch& m : policy.Evaluate(kAlgSha256, verified)) ...
#ifndef VOUCH_CORE_BOOT_PCR_POLICY_H_
#define VOUCH_CORE_BOOT_PCR_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/bytes.h"
#include "core/boot/replay.h"

namespace vouch::core::boot {

// Bounds on a PCR policy document: at most 1 MiB and 64 allowed values per
// PCR (a real one has a handful).
inline constexpr size_t kMaxPcrPolicyBytes = 1u << 20;
inline constexpr size_t kMaxPcrPolicyValues = 64;

// One PCR whose quoted value the policy does not allow.
struct PcrMismatch {
  uint16_t alg = 0;
  uint32_t pcr = 0;
  // Why, for the verdict: "quoted value <hex> is not allowed", "not quoted",
  // "the policy has no values for bank sha256". Never echoes the expected
  // values.
  std::string reason;
};

class PcrPolicy {
 public:
  // Parses a PCR policy (JSON object; format in docs/policies.md).
  // kInvalidArgument naming the member for malformed JSON, a key that is
  // neither a PCR index 0-23, a bank name nor "mask", a value that is not
  // hex of a digest length (20, 32, 48 or 64 bytes; all values of a bank
  // alike, and of the bank's size when the bank is named), an empty or
  // over-long list, or a document with no PCR at all.
  static absl::StatusOr<PcrPolicy> FromJson(absl::string_view json);

  // Compares the PCR values of a verified quote (`quoted`, by bank) with the
  // policy. Values at the top level apply to bank `alg` (the bank the
  // Challenge quoted); values under a bank name apply to that bank. Every
  // PCR the policy names must be quoted and hold one of its allowed values;
  // each that does not is listed. An empty result means the policy passes.
  std::vector<PcrMismatch> Evaluate(uint16_t alg, const PcrBanks& quoted) const;

  // The PCRs the policy names, per bank, with the top-level ones under `alg`
  // (what a Challenge must select).
  std::map<uint16_t, std::vector<uint32_t>> Selection(uint16_t alg) const;

  struct State;  // Defined in pcr_policy.cc.

 private:
  explicit PcrPolicy(std::shared_ptr<const State> state)
      : state_(std::move(state)) {}
  std::shared_ptr<const State> state_;
};

}  // namespace vouch::core::boot

#endif  // VOUCH_CORE_BOOT_PCR_POLICY_H_
