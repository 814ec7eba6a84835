// libFuzzer target: Keylime runtime policy JSON (On-Demand loader, schema
// checks, RE2 excludes, verification keys, Vouch's reject list) and DSSE
// envelopes. A policy the loader accepts must be JSON by another parser
// (nlohmann-json's), and the in-place and copying reads must agree.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/string_view.h"
#include "core/ima/dsse.h"
#include "core/ima/runtime_policy.h"

namespace {
// Keylime's test signing key (tests/data/keylime/runtime-policy-pubkey.pub).
constexpr char kKey[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEXIgsNuIpHj5ogMLDd+u/lxsAyKjv\n"
    "toXL1efXBUQ/MbCHlqnhUnn4I31sp6zBFrSYQJ1Bzz5OHLf1UqsOgy0Cpw==\n"
    "-----END PUBLIC KEY-----\n";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  auto policy = vouch::core::ima::RuntimePolicy::FromJson(in);
  constexpr size_t kPadding = 64;  // simdjson's SIMDJSON_PADDING.
  std::string padded(in);
  padded.append(kPadding, '\0');
  vouch::core::ima::PolicyLoadOptions in_place;
  in_place.readable_padding = kPadding;
  auto again = vouch::core::ima::RuntimePolicy::FromJson(
      absl::string_view(padded.data(), size), in_place);
  if (policy.ok() != again.ok()) __builtin_trap();
  if (policy.ok()) {
    if (!nlohmann::json::accept(in.begin(), in.end())) {
      __builtin_trap();  // Accepted a text that is not JSON.
    }
    (*policy)->IsExcluded("/tmp/x");
    (*policy)->IsKeyringIgnored(".ima");
    uint8_t digest[32] = {};
    for (size_t i = 0; i < sizeof digest && i < size; ++i) digest[i] = data[i];
    (*policy)->Rejects((*policy)->HashPath("/tmp/payload"),
                       vouch::core::ima::HashAlg::kSha256, digest,
                       sizeof digest);
  }
  auto v = vouch::core::ima::VerifyDsseEnvelope(in, kKey);
  if (v.ok() && v->valid) {
    vouch::core::ima::RuntimePolicy::FromJson(v->payload).IgnoreError();
  }
  return 0;
}
