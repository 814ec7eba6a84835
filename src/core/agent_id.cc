#include "core/agent_id.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace vouch::core {

absl::Status ValidateAgentId(absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError("agent_id is empty");
  if (id.size() > kMaxAgentIdLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "agent_id is longer than ", kMaxAgentIdLength, " characters"));
  }
  if (!absl::ascii_isalnum(static_cast<unsigned char>(id[0]))) {
    return absl::InvalidArgumentError(
        "agent_id must start with a letter or digit");
  }
  for (size_t i = 0; i < id.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(id[i]);
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          "agent_id has a character outside [A-Za-z0-9._-] at offset ", i));
    }
  }
  return absl::OkStatus();
}

std::string AgentIdFromEk(absl::string_view ek_sha256) {
  return absl::BytesToHexString(ek_sha256);  // lower case
}

}  // namespace vouch::core
