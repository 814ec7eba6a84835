// File: core/agent_state.h
// The one agent-state enum of the whole product is the wire's
// v1::AttestationState; these are its lower-case names, which vouchctl
// prints, the database stores and logs show ("pending", "pass", "fail",
// "timeout", "unenrolled"). The verifier, the store, the Admin API and the
// SDK all use these. Pure functions; thread-safe.
//
//   absl::string_view s = AgentStateName(v1::ATTESTATION_STATE_PASS);  //
//   "pass"
#ifndef VOUCH_CORE_AGENT_STATE_H_
#define VOUCH_CORE_AGENT_STATE_H_

#include "absl/strings/string_view.h"
#include "vouch/v1/common.pb.h"

namespace vouch::core {

using AgentState = v1::AttestationState;

// "unspecified" for UNSPECIFIED and values this build does not know.
absl::string_view AgentStateName(int state);
// ATTESTATION_STATE_UNSPECIFIED for an unknown name.
AgentState ParseAgentState(absl::string_view name);

}  // namespace vouch::core

#endif  // VOUCH_CORE_AGENT_STATE_H_
