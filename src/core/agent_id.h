// File: core/agent_id.h
// The one rule for what an agent_id may be, applied to every agent_id that
// arrives from the network before it reaches a log, a query or a map, and
// the agent_id derived from a TPM's EK. Pure; thread-safe.
//
//   VOUCH_RETURN_IF_ERROR(core::ValidateAgentId(request.agent_id()));
//   std::string id = core::AgentIdFromEk(ek_sha256);  // 64 hex digits
#ifndef VOUCH_CORE_AGENT_ID_H_
#define VOUCH_CORE_AGENT_ID_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace vouch::core {

inline constexpr size_t kMaxAgentIdLength = 128;

// OK when `id` is 1..128 characters of [A-Za-z0-9._-] and starts with a
// letter or digit (so it is never "." or "..", nor looks like a flag).
// Otherwise kInvalidArgument; the message never echoes the id.
absl::Status ValidateAgentId(absl::string_view id);

// The agent_id derived from an EK: the lower-case hex of `ek_sha256`, the
// SHA-256 of the EK's DER SubjectPublicKeyInfo (RFC 5280, 4.1.2.7;
// core::tpm::SpkiSha256). What an agent uses when none is configured, and
// what registrar.require_agent_id_is_ek_hash demands.
std::string AgentIdFromEk(absl::string_view ek_sha256);

}  // namespace vouch::core

#endif  // VOUCH_CORE_AGENT_ID_H_
