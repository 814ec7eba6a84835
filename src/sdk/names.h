// File: sdk/names.h
// The lower-case names of attestation states that vouchctl prints, the
// database stores and logs show ("pending", "pass", "fail", "timeout",
// "unenrolled"). Pure functions; thread-safe.
//
//   std::string s = StateName(v1::ATTESTATION_STATE_PASS);  // "pass"
#ifndef VOUCH_SDK_NAMES_H_
#define VOUCH_SDK_NAMES_H_

#include <string>

#include "absl/strings/string_view.h"
#include "vouch/v1/common.pb.h"

namespace vouch::sdk {

// "unspecified" for UNSPECIFIED and values this build does not know.
std::string StateName(int state);
// ATTESTATION_STATE_UNSPECIFIED for an unknown name.
v1::AttestationState ParseStateName(absl::string_view name);

}  // namespace vouch::sdk

#endif  // VOUCH_SDK_NAMES_H_
