#include "core/attest/hello.h"

#include "core/agent_id.h"
#include "core/attest/limits.h"

namespace vouch::core::attest {

absl::Status ValidateHello(const v1::Hello& hello,
                           absl::string_view authenticated_agent) {
  if (authenticated_agent.empty() || hello.agent_id() != authenticated_agent) {
    return absl::PermissionDeniedError(
        "agent_id is not the identity of the client certificate");
  }
  if (absl::Status s = ValidateAgentId(hello.agent_id()); !s.ok()) return s;
  const v1::Capabilities& caps = hello.capabilities();
  if (hello.boot_id().size() > kMaxBootIdBytes ||
      hello.agent_version().size() > kMaxAgentVersionBytes ||
      hello.aik_name().size() < kMinAikNameBytes ||
      hello.aik_name().size() > kMaxAikNameBytes ||
      caps.hash_algs_size() > kMaxCapabilityEntries ||
      caps.sign_schemes_size() > kMaxCapabilityEntries ||
      caps.pcr_banks_size() > kMaxCapabilityEntries ||
      caps.ima_formats_size() > kMaxCapabilityEntries) {
    return absl::InvalidArgumentError("Hello: a field is over its bound");
  }
  for (int bank : caps.pcr_banks()) {
    if (bank == v1::HASH_ALGORITHM_SHA256) return absl::OkStatus();
  }
  return absl::FailedPreconditionError("the TPM has no SHA-256 PCR bank");
}

}  // namespace vouch::core::attest
