// File: core/ima/dsse.h
// DSSE envelopes (github.com/secure-systems-lab/dsse, envelope.md and
// protocol.md): {"payload": base64, "payloadType": ..., "signatures":
// [{"keyid", "sig": base64}]}, each signature over
// PAE = "DSSEv1" SP len(type) SP type SP len(body) SP body. Keylime signs
// runtime policies this way with an ECDSA key or an X.509 certificate's key.
// Envelope is untrusted, the key trusted. Pure and thread-safe.
#ifndef VOUCH_CORE_IMA_DSSE_H_
#define VOUCH_CORE_IMA_DSSE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vouch::core::ima {

struct DsseVerification {
  bool valid = false;  // Some signature verifies with the key.
  std::string payload_type;
  std::string payload;  // Decoded; trust it only when valid.
};

// Pre-authentication encoding of DSSE v1.
std::string DssePae(absl::string_view payload_type, absl::string_view payload);

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
