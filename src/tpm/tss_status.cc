#include "tpm/tss_status.h"

#include <tss2/tss2_rc.h>
#include <tss2/tss2_tpm2_types.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vouch::tpm {

absl::Status TssStatus(TSS2_RC rc, absl::string_view what) {
  if (rc == TSS2_RC_SUCCESS) return absl::OkStatus();
  const std::string message = absl::StrCat(what, ": ", Tss2_RC_Decode(rc),
                                           absl::StrFormat(" (0x%08x)", rc));
  const TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
  if (layer == TSS2_TCTI_RC_LAYER) return absl::UnavailableError(message);
  if (layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER) {
    const TSS2_RC base = rc & ~TSS2_RC_LAYER_MASK;
    // TPM 2.0 Part 2, 6.6: format-zero warnings.
    if (base == TPM2_RC_RETRY || base == TPM2_RC_YIELDED ||
        base == TPM2_RC_TESTING) {
      return absl::UnavailableError(message);
    }
    // Format-one codes carry a parameter/handle number in bits 8..11; the
    // error itself is in the low 6 bits plus the format bit.
    if ((base & TPM2_RC_FMT1) != 0 &&
        (base & (TPM2_RC_FMT1 | 0x3f)) == TPM2_RC_HANDLE) {
      return absl::NotFoundError(message);
    }
  }
  if ((rc & ~TSS2_RC_LAYER_MASK) == TSS2_BASE_RC_IO_ERROR ||
      (rc & ~TSS2_RC_LAYER_MASK) == TSS2_BASE_RC_NO_CONNECTION ||
      (rc & ~TSS2_RC_LAYER_MASK) == TSS2_BASE_RC_TRY_AGAIN) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

}  // namespace vouch::tpm
