// File: core/tpm/public_key.h
// Turns a TPM public area (RSA or ECC) into an OpenSSL EVP_PKEY, and checks
// that another key (from a certificate or PEM) is the same key. Inputs are
// untrusted public areas; sizes and curves are checked. Pure; thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr key, PublicKeyFromTpm(area.public_area));
#ifndef VOUCH_CORE_TPM_PUBLIC_KEY_H_
#define VOUCH_CORE_TPM_PUBLIC_KEY_H_

#include <tss2/tss2_tpm2_types.h>

#include <string>

#include "absl/status/statusor.h"
#include "common/bytes.h"
#include "common/openssl_handle.h"

namespace vouch::core::tpm {

// RSA: modulus from unique.rsa, exponent from rsaDetail (0 means 65537,
// TPM 2.0 Part 2, 12.2.3.5). ECC: point (x, y) from unique.ecc on NIST
// P-256/P-384/P-521. kInvalidArgument for anything else or an inconsistent
// size (modulus length != keyBits, coordinate longer than the field).
absl::StatusOr<EvpPkeyPtr> PublicKeyFromTpm(const TPMT_PUBLIC& public_area);

// OpenSSL group name ("P-256") of a TPM curve; "" if unsupported.
std::string CurveName(TPMI_ECC_CURVE curve);
// Field size in bytes of a supported curve; 0 otherwise.
size_t CurveBytes(TPMI_ECC_CURVE curve);

// True when `key` is the same public key as `public_area` (EVP_PKEY_eq).
absl::StatusOr<bool> SameKey(const TPMT_PUBLIC& public_area,
                             const EVP_PKEY* key);

// SHA-256 of the key's DER SubjectPublicKeyInfo (RFC 5280): the EK's
// `ek_sha256`, and the derived agent_id in lower-case hex.
absl::StatusOr<Bytes> SpkiSha256(const TPMT_PUBLIC& public_area);

// A public key in PEM (SubjectPublicKeyInfo), e.g. `tpm2_readpublic -f pem`.
absl::StatusOr<EvpPkeyPtr> PublicKeyFromPem(const std::string& pem);

}  // namespace vouch::core::tpm

#endif  // VOUCH_CORE_TPM_PUBLIC_KEY_H_
