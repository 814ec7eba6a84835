// File: tpm/tpm.h
// The TPM as the agent sees it: a small interface so agent logic can be
// unit-tested against a fake, with EsysTpm (esys_tpm.h) as the real device.
// The agent's flow: LoadEk, ReadEkCertificate, LoadOrCreateAik (kept across
// restarts in a state dir), ActivateCredential once at registration, then
// Quote / PcrRead on every challenge. Implementations are not thread-safe;
// one owner thread drives a Tpm.
#ifndef VOUCH_TPM_TPM_H_
#define VOUCH_TPM_TPM_H_

#include <tss2/tss2_tpm2_types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/bytes.h"
#include "core/tpm/quote.h"

namespace vouch::tpm {

// TCG EK Credential Profile 2.0, section 2.2.1.4: NV indices of the EK
// certificates provisioned by the manufacturer (or by swtpm_setup).
inline constexpr uint32_t kEkCertNvIndexRsa2048 = 0x01c00002;
inline constexpr uint32_t kEkCertNvIndexEccP256 = 0x01c0000a;

// The EK templates of the TCG EK Credential Profile 2.0, B.3.3 (L-1, RSA
// 2048) and B.3.4 (L-2, ECC NIST P-256); both AES-128-CFB, policy A.
enum class EkType { kRsa2048, kEccP256 };
// The AIK: a restricted signing key, RSASSA-SHA256 or ECDSA-SHA256.
enum class AikType { kRsa2048, kEccP256 };

uint32_t EkCertNvIndex(EkType type);

struct QuoteBlob {
  Bytes attest;     // TPMS_ATTEST, exactly the bytes that were signed.
  Bytes signature;  // Marshalled TPMT_SIGNATURE.
};

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

  // Creates the EK from its TCG template (TPM2_CreatePrimary in the
  // endorsement hierarchy; the same key every time) and keeps it loaded for
  // the calls below. Returns its TPM2B_PUBLIC. Unloads the AIK (an AIK is
  // loaded under its EK): call LoadOrCreateAik again afterwards.
  virtual absl::StatusOr<Bytes> LoadEk(EkType type) = 0;

  // The EK certificate from its NV index (DER, possibly NV padding after
  // it; core::tpm::ParseCertificate copes). kNotFound if not provisioned.
  virtual absl::StatusOr<Bytes> ReadEkCertificate(EkType type) = 0;

  // Loads the AIK saved in `state_dir` (TPM2B_PUBLIC and TPM2B_PRIVATE blobs,
  // wrapped by the EK) or, when there is none, creates one under the loaded
  // EK and saves it (files 0600, written atomically). Keeps it loaded.
  // Returns its TPM2B_PUBLIC. Needs LoadEk first (kFailedPrecondition).
  virtual absl::StatusOr<Bytes> LoadOrCreateAik(const std::string& state_dir,
                                                AikType type) = 0;

  // TPM2_ActivateCredential with the loaded AIK and EK (the EK authorised by
  // a PolicySecret(endorsement) session): the secret MakeCredential sealed.
  virtual absl::StatusOr<Bytes> ActivateCredential(
      ByteSpan credential_blob, ByteSpan encrypted_secret) = 0;

  // TPM2_Quote with the loaded AIK over `selection`, with `nonce` (at most
  // 64 bytes) as qualifyingData, in the AIK's own scheme.
  virtual absl::StatusOr<QuoteBlob> Quote(
      ByteSpan nonce, const TPML_PCR_SELECTION& selection) = 0;

  // TPM2_PCR_Read of every PCR in `selection` (several calls: a TPM returns
  // at most 8 values at a time).
  virtual absl::StatusOr<core::tpm::PcrValues> PcrRead(
      const TPML_PCR_SELECTION& selection) = 0;

  // TPM2_PCR_Extend of one bank of one PCR.
  virtual absl::Status PcrExtend(uint32_t pcr, TPMI_ALG_HASH alg,
                                 ByteSpan digest) = 0;
};

}  // namespace vouch::tpm

#endif  // VOUCH_TPM_TPM_H_
