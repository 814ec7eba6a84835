#include "core/agent_state.h"

namespace vouch::core {
namespace {

struct Name {
  AgentState state;
  absl::string_view name;
};
constexpr Name kNames[] = {
    {v1::ATTESTATION_STATE_PENDING, "pending"},
    {v1::ATTESTATION_STATE_PASS, "pass"},
    {v1::ATTESTATION_STATE_FAIL, "fail"},
    {v1::ATTESTATION_STATE_TIMEOUT, "timeout"},
    {v1::ATTESTATION_STATE_UNENROLLED, "unenrolled"},
};

}  // namespace

absl::string_view AgentStateName(int state) {
  for (const Name& n : kNames) {
    if (n.state == state) return n.name;
  }
  return "unspecified";
}

AgentState ParseAgentState(absl::string_view name) {
  for (const Name& n : kNames) {
    if (name == n.name) return n.state;
  }
  return v1::ATTESTATION_STATE_UNSPECIFIED;
}

}  // namespace vouch::core
