// File: tpm/tss_status.h
// The one place where TSS2_RC becomes absl::Status (house rule: translate at
// the boundary). Pure function, thread-safe.
#ifndef VOUCH_TPM_TSS_STATUS_H_
#define VOUCH_TPM_TSS_STATUS_H_

#include <tss2/tss2_common.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace vouch::tpm {

// OK for TSS2_RC_SUCCESS. Otherwise: TCTI/transport failures and the TPM's
// RETRY/YIELDED/TESTING warnings are kUnavailable (try again); an undefined
// handle or NV index is kNotFound; anything else kInternal. The message holds
// `what` and Tss2_RC_Decode's text.
absl::Status TssStatus(TSS2_RC rc, absl::string_view what);

}  // namespace vouch::tpm

#endif  // VOUCH_TPM_TSS_STATUS_H_
