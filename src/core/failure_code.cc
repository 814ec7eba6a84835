#include "core/failure_code.h"

#include <google/protobuf/descriptor.h>

#include "absl/strings/str_cat.h"

namespace vouch::core {
namespace {

// Empty for a value outside the enum.
absl::string_view KnownName(v1::FailureCode code) {
  // No default: -Wswitch makes a code without a name a compile error.
  switch (code) {
    case v1::FAILURE_CODE_UNSPECIFIED:
      return "unspecified";
    case v1::FAILURE_CODE_QUOTE_MALFORMED:
      return "quote.malformed";
    case v1::FAILURE_CODE_QUOTE_NOT_TPM_GENERATED:
      return "quote.not_tpm_generated";
    case v1::FAILURE_CODE_QUOTE_WRONG_TYPE:
      return "quote.wrong_type";
    case v1::FAILURE_CODE_QUOTE_SIGNATURE_INVALID:
      return "quote.signature_invalid";
    case v1::FAILURE_CODE_QUOTE_SCHEME_NOT_ALLOWED:
      return "quote.scheme_not_allowed";
    case v1::FAILURE_CODE_NONCE_MISMATCH:
      return "quote.nonce_mismatch";
    case v1::FAILURE_CODE_PCR_SELECTION_MISMATCH:
      return "quote.pcr_selection_mismatch";
    case v1::FAILURE_CODE_PCR_DIGEST_MISMATCH:
      return "quote.pcr_digest_mismatch";
    case v1::FAILURE_CODE_CLOCK_NOT_SAFE:
      return "quote.clock_not_safe";
    case v1::FAILURE_CODE_CLOCK_ROLLBACK:
      return "quote.clock_rollback";
    case v1::FAILURE_CODE_PCR_VALUE_NOT_ALLOWED:
      return "pcr.value_not_allowed";
    case v1::FAILURE_CODE_IMA_LOG_MALFORMED:
      return "ima.log_malformed";
    case v1::FAILURE_CODE_IMA_TEMPLATE_UNSUPPORTED:
      return "ima.template_unsupported";
    case v1::FAILURE_CODE_IMA_TEMPLATE_HASH_MISMATCH:
      return "ima.template_hash_mismatch";
    case v1::FAILURE_CODE_IMA_REPLAY_MISMATCH:
      return "ima.replay_mismatch";
    case v1::FAILURE_CODE_IMA_BOOT_AGGREGATE_MISMATCH:
      return "ima.boot_aggregate_mismatch";
    case v1::FAILURE_CODE_IMA_FILE_NOT_IN_POLICY:
      return "ima.file_not_in_policy";
    case v1::FAILURE_CODE_IMA_DIGEST_NOT_ALLOWED:
      return "ima.digest_not_allowed";
    case v1::FAILURE_CODE_IMA_SIGNATURE_INVALID:
      return "ima.signature_invalid";
    case v1::FAILURE_CODE_IMA_BUFFER_NOT_ALLOWED:
      return "ima.buffer_not_allowed";
    case v1::FAILURE_CODE_IMA_LOG_TOO_LARGE:
      return "ima.log_too_large";
    case v1::FAILURE_CODE_IMA_REJECTED:
      return "ima.rejected";
    case v1::FAILURE_CODE_BOOT_LOG_MALFORMED:
      return "boot.log_malformed";
    case v1::FAILURE_CODE_BOOT_LOG_REPLAY_MISMATCH:
      return "boot.log_replay_mismatch";
    case v1::FAILURE_CODE_BOOT_POLICY_EMPTY:
      return "boot.policy_empty";
    case v1::FAILURE_CODE_SECURE_BOOT_DISABLED:
      return "boot.secure_boot_disabled";
    case v1::FAILURE_CODE_BOOT_VARIABLE_NOT_ALLOWED:
      return "boot.variable_not_allowed";
    case v1::FAILURE_CODE_BOOT_COMPONENT_NOT_ALLOWED:
      return "boot.component_not_allowed";
    case v1::FAILURE_CODE_KERNEL_CMDLINE_NOT_ALLOWED:
      return "boot.kernel_cmdline_not_allowed";
    case v1::FAILURE_CODE_BOOT_POLICY_VIOLATION:
      return "boot.policy_violation";
    case v1::FAILURE_CODE_BOOT_PCRS_CHANGED:
      return "boot.pcrs_changed";
    case v1::FAILURE_CODE_BOOT_EVALUATION_INCOMPLETE:
      return "boot.evaluation_incomplete";
    case v1::FAILURE_CODE_EVIDENCE_MISSING:
      return "evidence.missing";
    case v1::FAILURE_CODE_POLICY_UNAVAILABLE:
      return "policy.unavailable";
    case v1::FailureCode_INT_MIN_SENTINEL_DO_NOT_USE_:
    case v1::FailureCode_INT_MAX_SENTINEL_DO_NOT_USE_:
      break;
  }
  return "";
}

}  // namespace

std::string FailureCodeName(int code) {
  if (v1::FailureCode_IsValid(code)) {
    absl::string_view name = KnownName(static_cast<v1::FailureCode>(code));
    if (!name.empty()) return std::string(name);
  }
  return absl::StrCat("code_", code);
}

v1::FailureCode ParseFailureCodeName(absl::string_view name) {
  for (int i = 0; i < v1::FailureCode_descriptor()->value_count(); ++i) {
    const int code = v1::FailureCode_descriptor()->value(i)->number();
    if (KnownName(static_cast<v1::FailureCode>(code)) == name) {
      return static_cast<v1::FailureCode>(code);
    }
  }
  return v1::FAILURE_CODE_UNSPECIFIED;
}

}  // namespace vouch::core
