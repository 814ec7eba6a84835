// File: core/ear/ear.h
// Signed attestation results in the EAR format (IETF RATS "EAT Attestation
// Results", draft-ietf-rats-ear, with the AR4SI trustworthiness vector of
// draft-ietf-rats-ar4si) as a JWT (RFC 7519) signed ES256 (RFC 7518 3.4:
// the JWS signature is the raw r || s, 32 bytes each). Pure: time comes in
// as an argument. Tokens and key sets given to Verify/ParseJwks are
// untrusted (bounded sizes, typed checks, never a crash). Thread-safe: a
// Signer and a KeySet are immutable after construction.
//
//   VOUCH_ASSIGN_OR_RETURN(Signer signer, Signer::FromPem(pem));
//   Appraisal a = Appraise(state, failure_codes, runtime, boot);
//   VOUCH_ASSIGN_OR_RETURN(std::string jwt, signer.Sign(result));
//   VOUCH_ASSIGN_OR_RETURN(KeySet keys, KeySet::FromJwks(jwks_json));
//   VOUCH_ASSIGN_OR_RETURN(Result r, Verify(jwt, keys, now));
#ifndef VOUCH_CORE_EAR_EAR_H_
#define VOUCH_CORE_EAR_EAR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vouch::core::ear {

// The EAR profile this verifier issues (draft-ietf-rats-ear, "eat_profile").
inline constexpr char kProfile[] = "tag:github.com,2023:veraison/ear";
inline constexpr char kDeveloper[] = "vouch";
// Bounds on untrusted input.
inline constexpr size_t kMaxTokenBytes = 16 * 1024;
inline constexpr size_t kMaxJwksBytes = 64 * 1024;
inline constexpr size_t kMaxJwksKeys = 16;
inline constexpr size_t kMaxJsonDepth = 8;
// EAT nonce (draft-ietf-rats-eat, "eat_nonce"): 8..64 bytes; here printable
// ASCII so it travels as a plain JSON string.
inline constexpr size_t kMinNonceBytes = 8;
inline constexpr size_t kMaxNonceBytes = 64;

// ear.status: the tier of the worst trust claim (AR4SI section 2.3.1).
enum class Status { kNone, kAffirming, kWarning, kContraindicated };
absl::string_view StatusName(Status status);
std::optional<Status> ParseStatus(absl::string_view name);
// The tier of one AR4SI trust claim value: -1..1 none, 2..31 affirming,
// 32..95 warning, 96..127 contraindicated; anything else is not a claim
// value (nullopt).
std::optional<Status> TierOf(int value);

// AR4SI trust claim values (draft-ietf-rats-ar4si section 2.3) Vouch uses.
inline constexpr int kAffirming = 2;  // recognized, genuine, approved
inline constexpr int kContraindicated = 96;
inline constexpr int kCryptoFailed = 99;  // evidence failed cryptographic
                                          // validation (any claim)

// The trustworthiness vector; nullopt = no claim (omitted from the token).
struct TrustVector {
  std::optional<int> instance_identity;
  std::optional<int> configuration;
  std::optional<int> executables;
  std::optional<int> file_system;
  std::optional<int> hardware;
  std::optional<int> runtime_opaque;
  std::optional<int> storage_opaque;
  std::optional<int> sourced_data;
  bool operator==(const TrustVector& o) const {
    return instance_identity == o.instance_identity &&
           configuration == o.configuration && executables == o.executables &&
           file_system == o.file_system && hardware == o.hardware &&
           runtime_opaque == o.runtime_opaque &&
           storage_opaque == o.storage_opaque && sourced_data == o.sourced_data;
  }
};

struct Appraisal {
  Status status = Status::kNone;
  TrustVector vector;
};

// Maps an agent's committed state to an appraisal (docs/results.md): PASS
// is affirming with instance-identity 2 and, for the enrolled policies,
// executables 2 (runtime/IMA) and hardware 2 (boot log); FAIL is
// contraindicated with the claims its failure codes name; every other
// state (pending, timeout, unenrolled) is none with no claims, so a stale
// or unevaluated agent is never affirming. `state` is a
// v1::AttestationState value, `failure_codes` v1::FailureCode values.
Appraisal Appraise(int state, const std::vector<int>& failure_codes,
                   bool runtime_policy, bool boot_policy);

// The claims of one token.
struct Result {
  std::string agent_id;  // "sub" and the name of the one submod
  std::string tenant;    // "vouch.tenant"
  Appraisal appraisal;
  std::string state;                     // the agent state name ("vouch.state")
  std::string verifier_build;            // ear.verifier-id.build
  std::optional<absl::Time> verdict_at;  // "vouch.verdict-at"
  std::string attestation_id;            // "vouch.attestation-id"
  absl::Time issued_at;                  // "iat"
  absl::Time expires_at;                 // "exp"
  std::string nonce;                     // "eat_nonce"; empty: none
};

// The JSON claims set of `r` (what Sign signs).
std::string ClaimsJson(const Result& r);
// Parses a claims set (untrusted); checks types, the profile, and bounds.
absl::StatusOr<Result> ParseClaims(absl::string_view json);
// kInvalidArgument unless `nonce` is 8..64 printable ASCII bytes.
absl::Status ValidateNonce(absl::string_view nonce);

// A public key in the JWKS: RFC 7517 JWK, kty EC, crv P-256, with kid the
// RFC 7638 thumbprint.
struct PublicKey {
  std::string kid;
  std::string jwk_json;        // the JWK object
  std::shared_ptr<void> pkey;  // EVP_PKEY, opaque here
};

// The JWK of a PEM public key (or certificate, or private key: only its
// public half is used). kInvalidArgument unless it is a P-256 key.
absl::StatusOr<PublicKey> PublicKeyFromPem(absl::string_view pem);

// The keys a relying party accepts.
class KeySet {
 public:
  KeySet() = default;
  explicit KeySet(std::vector<PublicKey> keys) : keys_(std::move(keys)) {}
  // Parses an untrusted JWKS ({"keys":[...]}): EC P-256 keys only (others
  // are skipped), at most kMaxJwksKeys, kMaxJwksBytes.
  static absl::StatusOr<KeySet> FromJwks(absl::string_view json);
  // {"keys":[...]} with each key's JWK.
  std::string ToJwks() const;
  const PublicKey* Find(absl::string_view kid) const;
  const std::vector<PublicKey>& keys() const { return keys_; }

 private:
  std::vector<PublicKey> keys_;
};

// Signs results with one P-256 private key.
class Signer {
 public:
  // kInvalidArgument unless `pem` is a P-256 private key.
  static absl::StatusOr<Signer> FromPem(absl::string_view pem);
  const PublicKey& public_key() const { return public_; }
  // The compact JWS (header {"alg":"ES256","typ":"JWT","kid":...}).
  absl::StatusOr<std::string> Sign(const Result& r) const;
  // The compact JWS of any claims set (a JSON object's text).
  absl::StatusOr<std::string> SignClaims(absl::string_view claims_json) const;

 private:
  std::shared_ptr<void> pkey_;
  PublicKey public_;
};

// Verifies an untrusted compact JWS: alg ES256, a kid in `keys`, the
// signature, the claims, and iat <= now + 1 min < exp + 0. Returns the
// claims; kInvalidArgument for a malformed token, kPermissionDenied for a
// bad signature, unknown key or an expired token.
absl::StatusOr<Result> Verify(absl::string_view token, const KeySet& keys,
                              absl::Time now);

// The signature part of Verify for any claims set: alg ES256, a kid in
// `keys`, the signature; returns the claims text (unparsed, not checked).
absl::StatusOr<std::string> VerifySignature(absl::string_view token,
                                            const KeySet& keys);

}  // namespace vouch::core::ear

#endif  // VOUCH_CORE_EAR_EAR_H_
