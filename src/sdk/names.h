// File: sdk/names.h
// The lower-case names of attestation states that vouchctl prints
// ("pending", "pass", "fail", "timeout", "unenrolled"), for SDK users. The
// table itself is core::AgentStateName, shared with the verifier and the
// store. Pure functions; thread-safe.
//
//   std::string s = StateName(v1::ATTESTATION_STATE_PASS);  // "pass"
#ifndef VOUCH_SDK_NAMES_H_
#define VOUCH_SDK_NAMES_H_

#include <string>

#include "absl/strings/string_view.h"
#include "core/agent_state.h"
#include "vouch/v1/common.pb.h"

namespace vouch::sdk {

// "unspecified" for UNSPECIFIED and values this build does not know.
inline std::string StateName(int state) {
  return std::string(core::AgentStateName(state));
}
// ATTESTATION_STATE_UNSPECIFIED for an unknown name.
inline v1::AttestationState ParseStateName(absl::string_view name) {
  return core::ParseAgentState(name);
}

}  // namespace vouch::sdk

#endif  // VOUCH_SDK_NAMES_H_
