// File: core/agent_id.h
// The one rule for what an agent_id may be, applied to every agent_id that
// arrives from the network before it reaches a log, a query or a map.
// Pure; thread-safe.
//
//   VOUCH_RETURN_IF_ERROR(core::ValidateAgentId(request.agent_id()));
#ifndef VOUCH_CORE_AGENT_ID_H_
#define VOUCH_CORE_AGENT_ID_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace vouch::core {

inline constexpr size_t kMaxAgentIdLength = 128;

// OK when `id` is 1..128 characters of [A-Za-z0-9._-] and starts with a
// letter or digit (so it is never "." or "..", nor looks like a flag).
// Otherwise kInvalidArgument; the message never echoes the id.
absl::Status ValidateAgentId(absl::string_view id);

}  // namespace vouch::core

#endif  // VOUCH_CORE_AGENT_ID_H_
