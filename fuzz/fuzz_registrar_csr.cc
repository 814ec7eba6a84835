// libFuzzer: the onboarding input of an agent without a certificate: its
// PKCS#10 request and join token (core/attest/join.h).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/attest/join.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  (void)vouch::core::attest::CsrPublicKey(input);
  (void)vouch::core::attest::ValidateJoinToken(input);
  return 0;
}
