// File: core/failure_code.h
// The short names of the wire's v1::FailureCode that people read: vouchctl
// prints "ima.file_not_in_policy" where the enum says
// FAILURE_CODE_IMA_FILE_NOT_IN_POLICY. Group (quote, pcr, ima, boot,
// evidence, policy) dot reason. One table for the whole product; a name
// never changes for an existing code. Pure functions; thread-safe.
//
//   absl::string_view s =
//       FailureCodeName(v1::FAILURE_CODE_NONCE_MISMATCH);  //
//       quote.nonce_mismatch
#ifndef VOUCH_CORE_FAILURE_CODE_H_
#define VOUCH_CORE_FAILURE_CODE_H_

#include <string>

#include "absl/strings/string_view.h"
#include "vouch/v1/common.pb.h"

namespace vouch::core {

// "unspecified" for FAILURE_CODE_UNSPECIFIED; "code_<n>" for a value this
// build does not know (a newer server): still a failure.
std::string FailureCodeName(int code);
// FAILURE_CODE_UNSPECIFIED for a name that is not one of the above.
v1::FailureCode ParseFailureCodeName(absl::string_view name);

}  // namespace vouch::core

#endif  // VOUCH_CORE_FAILURE_CODE_H_
