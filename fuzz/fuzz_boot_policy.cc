// libFuzzer target: the measured-boot reference state (JSON from operators,
// still never a crash or an exception on any bytes).
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "core/boot/boot_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto policy = vouch::core::boot::BootPolicy::FromJson(text);
  if (policy.ok()) {
    auto used = policy->UsedPcrs();
    if (policy->empty() != used.empty()) __builtin_trap();
  }
  return 0;
}
