// File: tpm/esys_tpm.h
// Tpm backed by tpm2-tss ESAPI over a TCTI named in config:
// "device:/dev/tpmrm0" on a host, "swtpm:host=127.0.0.1,port=N" in tests.
// Trusts the TPM's answers only as far as TPM 2.0 Part 3 lets it (sizes are
// still bounded). Not thread-safe; every transient handle it creates is
// flushed before the call returns.
//
//   VOUCH_ASSIGN_OR_RETURN(auto tpm, EsysTpm::Open("device:/dev/tpmrm0"));
//   VOUCH_ASSIGN_OR_RETURN(Bytes nonce, tpm->GetRandom(16));
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

  absl::StatusOr<Bytes> GetRandom(size_t count) override;
  absl::StatusOr<Bytes> ReadNv(uint32_t nv_index) override;

 private:
  struct Handles;
  explicit EsysTpm(std::unique_ptr<Handles> handles);
  absl::StatusOr<uint32_t> NvBufferMax();

  std::unique_ptr<Handles> handles_;
};

}  // namespace vouch::tpm

#endif  // VOUCH_TPM_ESYS_TPM_H_
