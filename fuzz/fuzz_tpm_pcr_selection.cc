// Fuzzes TPML_PCR_SELECTION (binary) and the "sha256:0,1+sha1:2" text form
// (core/tpm/tpm_wire.h), and the PCR digest over a parsed selection.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/tpm/quote.h"
#include "core/tpm/tpm_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace t = vouch::core::tpm;
  const vouch::ByteSpan bytes(data, size);
  absl::StatusOr<TPML_PCR_SELECTION> sel = t::ParsePcrSelection(bytes);
  if (sel.ok()) {
    (void)t::MarshalPcrSelection(*sel);
    (void)t::SelectionText(*sel);
    (void)t::PcrDigest(TPM2_ALG_SHA256, *sel, t::PcrValues{});
  }
  absl::StatusOr<TPML_PCR_SELECTION> text =
      t::ParsePcrSelectionText(vouch::AsString(bytes));
  if (text.ok()) (void)t::SelectionText(*text);
  return 0;
}
