// File: core/attest/join.h
// Onboarding input from an agent that has no certificate yet: its PKCS#10
// certificate request (RFC 2986), its join token and its labels. Both are
// untrusted (fuzzed by fuzz_registrar_csr): bounded, parsed, never crashes.
// Pure; thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(std::string spki, CsrPublicKey(request.csr()));
//   VOUCH_RETURN_IF_ERROR(ValidateJoinToken(request.join_token()));
#ifndef VOUCH_CORE_ATTEST_JOIN_H_
#define VOUCH_CORE_ATTEST_JOIN_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vouch::core::attest {

inline constexpr size_t kMaxCsrBytes = 4096;
inline constexpr size_t kMaxJoinTokenBytes = 128;

// The DER SubjectPublicKeyInfo (RFC 5280 4.1.2.7) of a DER PKCS#10 request
// whose self-signature verifies (proof of possession, RFC 2986 section 3)
// and whose key is ECDSA P-256. kInvalidArgument "csr: ..." otherwise.
absl::StatusOr<std::string> CsrPublicKey(absl::string_view der);

// 1..128 bytes of printable ASCII without spaces; kInvalidArgument
// "join_token: ..." otherwise. (Its value is checked against the database.)
absl::Status ValidateJoinToken(absl::string_view token);

// Labels (registrar.proto): at most kMaxLabels; keys 1..63 bytes of
// [a-z0-9._/-] starting with [a-z0-9]; values 0..63 bytes of
// [A-Za-z0-9._-]. kInvalidArgument "<field>: ..." otherwise. The character
// sets need no quoting in JSON or in `key=value` lists.
inline constexpr int kMaxLabels = 16;
absl::Status ValidateLabels(const std::map<std::string, std::string>& labels,
                            absl::string_view field);

// The labels as a flat JSON object ({"k":"v",...}); `labels` must be valid.
std::string LabelsJson(const std::map<std::string, std::string>& labels);

}  // namespace vouch::core::attest

#endif  // VOUCH_CORE_ATTEST_JOIN_H_
