// File: tpm/esys_tpm.h
// Tpm backed by tpm2-tss ESAPI over a TCTI named in config:
// "device:/dev/tpmrm0" on a host, "swtpm:host=127.0.0.1,port=N" in tests.
// Trusts the TPM's answers only as far as TPM 2.0 Part 3 lets it (sizes are
// still bounded). Not thread-safe. It keeps at most two transient objects
// loaded (the EK and the AIK) and flushes every session and every other
// transient handle before the call returns; all are flushed on destruction.
//
//   VOUCH_ASSIGN_OR_RETURN(auto tpm, EsysTpm::Open("device:/dev/tpmrm0"));
//   VOUCH_ASSIGN_OR_RETURN(Bytes ek, tpm->LoadEk(EkType::kRsa2048));
//   VOUCH_ASSIGN_OR_RETURN(Bytes aik,
//                          tpm->LoadOrCreateAik(dir, AikType::kRsa2048));
#ifndef VOUCH_TPM_ESYS_TPM_H_
#define VOUCH_TPM_ESYS_TPM_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tpm/tpm.h"

namespace vouch::tpm {

class EsysTpm : public Tpm {
 public:
  // Loads the TCTI and initialises ESAPI. Does not send TPM2_Startup: the
  // kernel (or swtpm's startup-clear flag) has done that already.
  static absl::StatusOr<std::unique_ptr<EsysTpm>> Open(absl::string_view tcti);
  ~EsysTpm() override;

  // Flushes every transient object the TPM holds that this connection can
  // see, and returns how many there were. Behind a resource manager
  // (/dev/tpmrm0, tpm2-abrmd) a new connection sees none of another's, so
  // this does nothing; on a TPM reached directly (/dev/tpm0, swtpm's
  // socket) they are what a process stopped mid-command left behind, and
  // they fill the TPM's few object slots (TPM_RC_OBJECT_MEMORY) until
  // flushed. Sessions and persistent handles are left alone. Call it right
  // after Open, before loading anything.
  absl::StatusOr<int> FlushTransientObjects();

  absl::StatusOr<Bytes> GetRandom(size_t count) override;
  absl::StatusOr<Bytes> ReadNv(uint32_t nv_index) override;
  absl::StatusOr<Bytes> LoadEk(EkType type) override;
  absl::StatusOr<Bytes> ReadEkCertificate(EkType type) override;
  absl::StatusOr<Bytes> LoadOrCreateAik(const std::string& state_dir,
                                        AikType type) override;
  absl::StatusOr<Bytes> ActivateCredential(ByteSpan credential_blob,
                                           ByteSpan encrypted_secret) override;
  absl::StatusOr<QuoteBlob> Quote(ByteSpan nonce,
                                  const TPML_PCR_SELECTION& selection) override;
  absl::StatusOr<core::tpm::PcrValues> PcrRead(
      const TPML_PCR_SELECTION& selection) override;
  absl::Status PcrExtend(uint32_t pcr, TPMI_ALG_HASH alg,
                         ByteSpan digest) override;

 private:
  struct Handles;
  explicit EsysTpm(std::unique_ptr<Handles> handles);
  absl::StatusOr<uint32_t> NvBufferMax();

  std::unique_ptr<Handles> handles_;
};

}  // namespace vouch::tpm

#endif  // VOUCH_TPM_ESYS_TPM_H_
