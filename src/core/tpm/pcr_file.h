// File: core/tpm/pcr_file.h
// The PCR values files of tpm2-tools 5.x: `tpm2_quote -o` (default
// "serialized" layout), `tpm2_pcrread -F serialized -o`, and the "values"
// layout (`tpm2_quote -F values -o`, plain `tpm2_pcrread -o`).
// Operator-supplied bytes: bounded, every count checked, kInvalidArgument with
// the offset on malformed input. Pure; thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(Tpm2ToolsPcrs pcrs, ParseTpm2ToolsPcrs(bytes));
#ifndef VOUCH_CORE_TPM_PCR_FILE_H_
#define VOUCH_CORE_TPM_PCR_FILE_H_

#include <tss2/tss2_tpm2_types.h>

#include "absl/status/statusor.h"
#include "common/bytes.h"
#include "core/tpm/quote.h"

namespace vouch::core::tpm {

struct Tpm2ToolsPcrs {
  TPML_PCR_SELECTION selection{};
  PcrValues values;
};

// tpm2-tools' "serialized" layout is the in-memory C structs of a
// little-endian 64-bit host (tpm2-tools lib/pcr.c, pcr_fwrite_serialized):
//   TPML_PCR_SELECTION  132 bytes: UINT32 count, 16 x {UINT16 hash,
//                       UINT8 sizeofSelect, BYTE pcrSelect[4], 1 pad byte}
//   UINT32 n            number of TPML_DIGEST that follow (1..16)
//   n x TPML_DIGEST     532 bytes each: UINT32 count (<= 8), 8 x
//                       {UINT16 size, BYTE buffer[64]}
// The digests are the selected PCRs in selection order (bank by bank, PCR
// numbers ascending), 8 per TPML_DIGEST.
absl::StatusOr<Tpm2ToolsPcrs> ParseTpm2ToolsPcrs(ByteSpan bytes);

// The "values" layout (`-F values`): the selected PCR values concatenated;
// the selection comes from the quote.
absl::StatusOr<PcrValues> ParsePcrValuesForSelection(
    ByteSpan bytes, const TPML_PCR_SELECTION& selection);

}  // namespace vouch::core::tpm

#endif  // VOUCH_CORE_TPM_PCR_FILE_H_
