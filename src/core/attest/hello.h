// File: core/attest/hello.h
// The checks of an agent's Hello (attestation.proto), the first message of
// every Attest stream: the agent_id is the authenticated identity of the
// client certificate and well formed, every field is within its bound, and
// the TPM has a SHA-256 PCR bank. The Hello is untrusted; the identity comes
// from the TLS layer. Pure; thread-safe.
//
//   absl::Status s = ValidateHello(hello, /*authenticated_agent=*/"web-1");
//   // PERMISSION_DENIED, INVALID_ARGUMENT or FAILED_PRECONDITION
#ifndef VOUCH_CORE_ATTEST_HELLO_H_
#define VOUCH_CORE_ATTEST_HELLO_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "vouch/v1/attestation.pb.h"

namespace vouch::core::attest {

// kPermissionDenied: agent_id is not `authenticated_agent` (the agent name
// of the caller's certificate; empty when the caller is not an agent);
// kInvalidArgument: a malformed agent_id or a field over its bound;
// kFailedPrecondition: no SHA-256 PCR bank among the capabilities.
absl::Status ValidateHello(const v1::Hello& hello,
                           absl::string_view authenticated_agent);

}  // namespace vouch::core::attest

#endif  // VOUCH_CORE_ATTEST_HELLO_H_
