// Fuzzes TPMS_ATTEST / TPM2B_ATTEST parsing (core/tpm/tpm_wire.h).
#include <cstddef>
#include <cstdint>

#include "core/tpm/tpm_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const vouch::ByteSpan bytes(data, size);
  (void)vouch::core::tpm::ParseAttest(bytes);
  (void)vouch::core::tpm::AttestBody(bytes);
  return 0;
}
