// libFuzzer target: attestation result tokens, JWKS and EAR claims sets
// (core/ear/ear.h), what `vouchctl results verify` parses from untrusted
// files. Each input goes through all three parsers; tokens are verified
// with the key of fuzz_ear_token_jwks.inc at a fixed time, so the seeds
// (fuzz/seedgen/make_ear_seeds.py) get past the signature into the claims.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/ear/ear.h"

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
  auto verified = vouch::core::ear::Verify(text, Keys(), kNow);
  if (verified.ok()) {
    // What verified re-serialises to claims that parse to the same subject.
    auto again =
        vouch::core::ear::ParseClaims(vouch::core::ear::ClaimsJson(*verified));
    if (!again.ok() || again->agent_id != verified->agent_id ||
        again->appraisal.status != verified->appraisal.status) {
      __builtin_trap();
    }
  }
  (void)vouch::core::ear::ParseClaims(text);
  auto keys = vouch::core::ear::KeySet::FromJwks(text);
  if (keys.ok()) (void)keys->ToJwks();
  return 0;
}
