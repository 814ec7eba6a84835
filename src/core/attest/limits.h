// File: core/attest/limits.h
// The protocol's size limits, in one place: what proto/vouch/v1/*.proto
// promises in its field comments. The agent builds messages within them,
// and the verifier, registrar and Admin API refuse anything over them
// (INVALID_ARGUMENT or RESOURCE_EXHAUSTED) before parsing further.
// Constants only; thread-safe.
//
//   if (ev.quote().size() > attest::kMaxQuoteBytes) return Invalid(...);
#ifndef VOUCH_CORE_ATTEST_LIMITS_H_
#define VOUCH_CORE_ATTEST_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace vouch::core::attest {

// attestation.proto: Hello.
inline constexpr size_t kMaxBootIdBytes = 64;
inline constexpr size_t kMaxAgentVersionBytes = 64;
inline constexpr size_t kMinAikNameBytes = 34;  // nameAlg + SHA-256
inline constexpr size_t kMaxAikNameBytes = 66;  // nameAlg + SHA-512
inline constexpr int kMaxCapabilityEntries = 16;

// attestation.proto: Evidence.
inline constexpr size_t kMaxQuoteBytes = 1024;
inline constexpr size_t kMaxSignatureBytes = 1024;
inline constexpr int kMaxPcrBanks = 8;
inline constexpr int kMaxPcrIndex = 23;
inline constexpr size_t kMaxImaChunkBytes = size_t{4} << 20;
inline constexpr size_t kMaxImaChunkEntries = 100000;
inline constexpr size_t kMaxBootLogBytes = size_t{1} << 20;
// Unverified IMA bytes a verifier holds per agent across truncated chunks.
inline constexpr size_t kMaxHeldImaBytes = size_t{64} << 20;
// Trailing metadata of an Attest stream a verifier refused or ended for
// lack of room (RESOURCE_EXHAUSTED): after how many milliseconds, in
// decimal, the agent may come back. Agents wait at least that, jittered,
// and at most kMaxRetryAfterMs (the value comes from the network).
inline constexpr char kRetryAfterMetadata[] = "vouch-retry-after-ms";
inline constexpr int64_t kMaxRetryAfterMs = 10 * 60 * 1000;
// AgentError.message and StreamError.message.
inline constexpr size_t kMaxErrorMessageBytes = 256;

// attestation.proto / common.proto: Verdict and Failure.
inline constexpr int kMaxListedFailures = 100;
inline constexpr size_t kMaxFailureDetailBytes = 512;  // common.proto
inline constexpr size_t kMaxFailurePathBytes = 4096;

// Nonces the verifier issues (16..32 bytes on the wire; it issues 32).
inline constexpr size_t kNonceBytes = 32;

// registrar.proto.
inline constexpr size_t kMaxPublicBytes = 1024;
inline constexpr size_t kMaxCertificateBytes = 8 * 1024;
inline constexpr int kMaxIntermediates = 8;
inline constexpr size_t kMaxCredentialBlobBytes = 1024;

// admin.proto.
inline constexpr size_t kMaxPolicyBytes = size_t{16} << 20;
inline constexpr int kMaxPageSize = 1000;
inline constexpr size_t kMaxPageTokenBytes = 1024;
inline constexpr size_t kMaxAttestationIdBytes = 64;
inline constexpr int kMaxAdminReplyBytes = 20 << 20;
// An enrollment's push interval, in seconds, wherever it is set
// (EnrollAgent, UpdateAgents, enrollment rules); 0 or unset means 60 s.
inline constexpr int64_t kMinIntervalSeconds = 1;
inline constexpr int64_t kMaxIntervalSeconds = 86400;
inline constexpr int64_t kDefaultIntervalSeconds = 60;

}  // namespace vouch::core::attest

#endif  // VOUCH_CORE_ATTEST_LIMITS_H_
