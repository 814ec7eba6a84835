// File: core/ima/dsse.h
// DSSE envelopes (github.com/secure-systems-lab/dsse, envelope.md and
// protocol.md): {"payload": base64, "payloadType": ..., "signatures":
// [{"keyid", "sig": base64}]}, each signature over
// PAE = "DSSEv1" SP len(type) SP type SP len(body) SP body. Keylime signs
// runtime policies this way with an ECDSA key or an X.509 certificate's key
// (keylime/dsse/dsse.py, ecdsa.py, x509.py): payloadType
// "application/vnd.keylime+json", standard base64 with padding, ECDSA
// signatures DER-encoded over SHA-256. Building an envelope lives here too,
// so signing (vouchctl policy sign) and verifying share one encoding; the
// signature itself is made by the caller. Envelope is untrusted, the key
// trusted. Pure and thread-safe.
//
//   std::string pae = DssePae(kKeylimePolicyPayloadType, policy_json);
//   ... sign pae with the private key ...
//   std::string env = DsseEnvelopeJson(kKeylimePolicyPayloadType,
//                                      policy_json, {{keyid, der_sig}});
#ifndef VOUCH_CORE_IMA_DSSE_H_
#define VOUCH_CORE_IMA_DSSE_H_

#include <openssl/evp.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vouch::core::ima {

struct DsseVerification {
  bool valid = false;  // Some signature verifies with the key.
  std::string payload_type;
  std::string payload;  // Decoded; trust it only when valid.
};

// The payloadType Keylime signs runtime policies with
// (keylime/policy/sign_runtime_policy.py KEYLIME_PAYLOAD_TYPE).
inline constexpr absl::string_view kKeylimePolicyPayloadType =
    "application/vnd.keylime+json";

// Pre-authentication encoding of DSSE v1.
std::string DssePae(absl::string_view payload_type, absl::string_view payload);

struct DsseSignature {
  std::string keyid;  // Omitted from the envelope when empty.
  std::string sig;    // Raw signature bytes (DER for ECDSA).
};

// The envelope as Keylime's dsse.Sign writes it: {"payload": base64,
// "payloadType": ..., "signatures": [{"keyid": ..., "sig": base64}]}.
std::string DsseEnvelopeJson(absl::string_view payload_type,
                             absl::string_view payload,
                             const std::vector<DsseSignature>& signatures);

// Keylime's key ids: for a key, the lower-case hex SHA-256 of its PEM
// SubjectPublicKeyInfo (ecdsa.Verifier.keyid); for a certificate, the
// base64 of its PEM (x509.Verifier.keyid), which Keylime's verifier reads
// back as the certificate to check with.
absl::StatusOr<std::string> DssePublicKeyId(EVP_PKEY* key);
// The PEM SubjectPublicKeyInfo of `key` (what DssePublicKeyId hashes).
absl::StatusOr<std::string> PublicKeyPem(EVP_PKEY* key);
absl::StatusOr<std::string> DsseCertificateKeyId(absl::string_view cert_pem);
// DssePublicKeyId of a PEM public key or of a PEM certificate's key;
// kInvalidArgument when `pem` is neither.
absl::StatusOr<std::string> DssePemKeyId(absl::string_view pem);

// True when `json` is a JSON object with "payload" and "signatures" keys
// (a DSSE envelope rather than a bare policy).
bool IsDsseEnvelope(absl::string_view json);

// `key_pem`: a PEM public key (EC or RSA) or a PEM X.509 certificate.
// kInvalidArgument for a malformed envelope or key; a signature that is
// well-formed JSON but does not verify (or is not base64) is valid=false.
absl::StatusOr<DsseVerification> VerifyDsseEnvelope(
    absl::string_view envelope_json, absl::string_view key_pem);

}  // namespace vouch::core::ima

#endif  // VOUCH_CORE_IMA_DSSE_H_
