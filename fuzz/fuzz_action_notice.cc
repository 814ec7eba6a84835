// libFuzzer target: action notices (core/ear/notice.h), what the agent
// parses from the verifier's ActionNotice before any local action runs.
// Each input is verified as a token (with the key of
// fuzz_ear_token_jwks.inc at a fixed time, for the audience the seeds name,
// so seeds from fuzz/seedgen/make_notice_seeds.py reach the claims) and
// parsed as a claims set.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/ear/notice.h"

namespace {

#include "fuzz_ear_token_jwks.inc"

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

const vouch::core::ear::KeySet& Keys() {
  static const auto* keys = [] {
    auto parsed = vouch::core::ear::KeySet::FromJwks(kEarFuzzJwks);
    if (!parsed.ok()) __builtin_trap();
    return new vouch::core::ear::KeySet(*std::move(parsed));
  }();
  return *keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto verified = vouch::core::ear::VerifyNotice(text, Keys(), "node-1", kNow);
  if (verified.ok()) {
    // A verified notice is for its audience and round-trips.
    if (verified->audience != "node-1") __builtin_trap();
    auto again = vouch::core::ear::ParseNoticeClaims(
        vouch::core::ear::NoticeClaimsJson(*verified));
    if (!again.ok() || again->subject != verified->subject ||
        again->kind != verified->kind) {
      __builtin_trap();
    }
  }
  (void)vouch::core::ear::ParseNoticeClaims(text);
  return 0;
}
