// libFuzzer: RegisterRequest bytes from an agent through everything the
// registrar checks before its database (core/attest/register.h).
#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"
#include "core/attest/register.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vouch::v1::RegisterRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  const absl::Time now = absl::FromUnixSeconds(1800000000);
  (void)vouch::core::attest::ValidateRegister(request, nullptr,
                                              /*require_ek_cert=*/false, now);
  (void)vouch::core::attest::ValidateRegister(request, nullptr,
                                              /*require_ek_cert=*/true, now);
  return 0;
}
