// File: tpm/tpm.h
// The TPM as the agent sees it: a small interface so agent logic can be
// unit-tested against a fake, with EsysTpm (esys_tpm.h) as the real device.
// Implementations are not thread-safe; one owner thread drives a Tpm.
#ifndef VOUCH_TPM_TPM_H_
#define VOUCH_TPM_TPM_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "common/bytes.h"

namespace vouch::tpm {

// TCG EK Credential Profile 2.0, section 2.2.1.4: NV indices of the EK
// certificates provisioned by the manufacturer (or by swtpm_setup).
inline constexpr uint32_t kEkCertNvIndexRsa2048 = 0x01c00002;
inline constexpr uint32_t kEkCertNvIndexEccP256 = 0x01c0000a;

class Tpm {
 public:
  virtual ~Tpm() = default;

  // TPM2_GetRandom, repeated until `count` bytes are gathered (the TPM may
  // return fewer than asked). `count` is at most 1024.
  virtual absl::StatusOr<Bytes> GetRandom(size_t count) = 0;

  // The whole contents of an NV index (TPM2_NV_ReadPublic for its size, then
  // TPM2_NV_Read in chunks of the TPM's TPM_PT_NV_BUFFER_MAX). kNotFound when
  // the index is not defined.
  virtual absl::StatusOr<Bytes> ReadNv(uint32_t nv_index) = 0;
};

}  // namespace vouch::tpm

#endif  // VOUCH_TPM_TPM_H_
