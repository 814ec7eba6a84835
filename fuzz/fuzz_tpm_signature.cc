// Fuzzes TPMT_SIGNATURE parsing (core/tpm/tpm_wire.h).
#include <cstddef>
#include <cstdint>

#include "core/tpm/tpm_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)vouch::core::tpm::ParseSignature(vouch::ByteSpan(data, size));
  return 0;
}
