// libFuzzer target: the PCR policy (Keylime tpm_policy JSON from operators,
// still never a crash or an exception on any bytes), and its evaluation:
// against no quoted values every PCR it names fails (never a pass), and
// against values taken from the input nothing outside its selection fails.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "core/boot/event_log.h"
#include "core/boot/pcr_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vouch::core::boot::kAlgSha256;
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto policy = vouch::core::boot::PcrPolicy::FromJson(text);
  if (!policy.ok()) return 0;
  const auto selection = policy->Selection(kAlgSha256);
  size_t named = 0;
  for (const auto& [bank, pcrs] : selection) named += pcrs.size();
  if (named == 0) __builtin_trap();
  // A PCR named both at the top level and under "sha256" fails twice.
  const auto none = policy->Evaluate(kAlgSha256, {});
  if (none.size() < named) __builtin_trap();
  for (const auto& m : none) {
    if (m.reason.empty()) __builtin_trap();
  }
  vouch::core::boot::PcrBanks quoted;
  for (const auto& [bank, pcrs] : selection) {
    for (uint32_t p : pcrs) {
      quoted[bank][p] = vouch::Bytes(data, data + (size < 32 ? size : 32));
    }
  }
  for (const auto& m : policy->Evaluate(kAlgSha256, quoted)) {
    auto it = selection.find(m.alg);
    if (it == selection.end()) __builtin_trap();
  }
  return 0;
}
