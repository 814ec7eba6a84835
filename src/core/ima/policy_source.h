// File: core/ima/policy_source.h
// The pure rules of runtime policies fetched from a URL (docs/ima.md
// "Policy lifecycle"): which addresses and refresh periods are accepted,
// how a fetched document is read (a DSSE envelope verified with a trusted
// key, or a bare policy when no signature is required), and the downgrade
// rule on release numbers. The release number is a Keylime runtime
// policy's top-level "release" (meta.version is the format version, always
// 1). Documents are untrusted, keys trusted. Pure and thread-safe.
//
//   VOUCH_RETURN_IF_ERROR(ValidatePolicyUrl(url));
//   VOUCH_ASSIGN_OR_RETURN(FetchedPolicy p,
//                          ReadFetchedPolicy(body, keys, require_signature));
//   VOUCH_RETURN_IF_ERROR(CheckRelease(p.release, active.release));
#ifndef VOUCH_CORE_IMA_POLICY_SOURCE_H_
#define VOUCH_CORE_IMA_POLICY_SOURCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vouch::core::ima {

inline constexpr size_t kMaxPolicyUrlBytes = 2048;
// The shortest refresh period (tests use it; production wants hours) and
// the longest.
inline constexpr absl::Duration kMinPolicyRefresh = absl::Seconds(1);
inline constexpr absl::Duration kMaxPolicyRefresh = absl::Hours(24 * 7);

// kInvalidArgument unless `url` is an absolute https:// address of at most
// kMaxPolicyUrlBytes printable ASCII bytes, with a host and no user
// information (credentials do not belong in a stored address).
absl::Status ValidatePolicyUrl(absl::string_view url);

// kInvalidArgument unless `refresh` is zero (fetch once) or within
// kMinPolicyRefresh..kMaxPolicyRefresh.
absl::Status ValidatePolicyRefresh(absl::Duration refresh);

// kFailedPrecondition when `incoming` is lower than `active` (a downgrade);
// an equal release is accepted (a corrected document of the same release).
absl::Status CheckRelease(int64_t incoming, int64_t active);

// A trusted policy-signing key: PEM public key or certificate, and the id
// reported for the versions it verified.
struct TrustedPolicyKey {
  std::string key_id;
  std::string pem;
};

struct VerifiedEnvelope {
  std::string payload;
  std::string key_id;  // Of the key that verified it.
};

// The payload of a DSSE envelope that one of `keys` verifies;
// kInvalidArgument for a malformed envelope or when no key verifies it
// (the message says whether any key was configured).
absl::StatusOr<VerifiedEnvelope> VerifyWithAnyKey(
    absl::string_view envelope, const std::vector<TrustedPolicyKey>& keys);

struct FetchedPolicy {
  std::string policy;  // The runtime policy JSON (an envelope's payload).
  int64_t release = 0;
  bool signed_by_key = false;
  std::string key_id;  // When signed_by_key.
};

// Reads a fetched document: a DSSE envelope must verify with one of `keys`
// and its payload is the policy; a bare policy is accepted only when
// `require_signature` is false (else kFailedPrecondition). The policy must
// parse as a Keylime runtime policy (kInvalidArgument with the first
// schema error). `max_bytes` bounds the document.
absl::StatusOr<FetchedPolicy> ReadFetchedPolicy(
    absl::string_view document, const std::vector<TrustedPolicyKey>& keys,
    bool require_signature, size_t max_bytes);

}  // namespace vouch::core::ima

#endif  // VOUCH_CORE_IMA_POLICY_SOURCE_H_
