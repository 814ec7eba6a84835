// Fuzzes tpm2-tools PCR files (core/tpm/pcr_file.h), both layouts.
#include <cstddef>
#include <cstdint>

#include "core/tpm/pcr_file.h"
#include "core/tpm/tpm_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace t = vouch::core::tpm;
  const vouch::ByteSpan bytes(data, size);
  absl::StatusOr<t::Tpm2ToolsPcrs> pcrs = t::ParseTpm2ToolsPcrs(bytes);
  if (pcrs.ok()) {
    (void)t::PcrDigest(TPM2_ALG_SHA256, pcrs->selection, pcrs->values);
  }
  static const TPML_PCR_SELECTION kSelection =
      *t::ParsePcrSelectionText("sha256:0,1,16+sha1:2");
  (void)t::ParsePcrValuesForSelection(bytes, kSelection);
  return 0;
}
