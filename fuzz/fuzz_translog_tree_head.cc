// libFuzzer target: signed tree heads from untrusted bytes. Parsing never
// crashes; verification under a fixed Ed25519 key never accepts what that
// key did not sign (a fuzzer cannot forge Ed25519: any acceptance traps).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "core/translog/tree_head.h"

namespace {
// A throw-away Ed25519 public key (RFC 8032 test 1), never used to sign.
constexpr char kPublicPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
    "-----END PUBLIC KEY-----\n";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace tl = vouch::core::translog;
  static const auto* key =
      new absl::StatusOr<tl::LogKey>(tl::LogKey::FromPublicPem(kPublicPem));
  if (!key->ok()) __builtin_trap();
  absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = tl::ParseSignedTreeHead(bytes);
  if (parsed.ok() && parsed->signature.size() > tl::kMaxSignatureBytes) {
    __builtin_trap();
  }
  if ((*key)->Verify(bytes).ok()) __builtin_trap();
  return 0;
}
