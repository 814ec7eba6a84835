// File: core/ima/ima_signature.h
// IMA file signatures (the `sig` field of ima-sig): the v2 header
// `struct signature_v2_hdr` {type=3 EVM_IMA_XATTR_DIGSIG (or 5 portable),
// version=2, hash_algo, be32 keyid, be16 sig_size} + signature
// (security/integrity/integrity.h, digsig_asymmetric.c), verified over the
// file digest with RSA PKCS#1 v1.5 or ECDSA. Signature bytes are untrusted;
// keys come from the operator's policy. Pure and thread-safe.
#ifndef VOUCH_CORE_IMA_IMA_SIGNATURE_H_
#define VOUCH_CORE_IMA_IMA_SIGNATURE_H_

#include <openssl/evp.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/ima/hash_alg.h"
#include "core/ima/runtime_policy.h"

namespace vouch::core::ima {

// keyidv2 of a public key: the last 4 bytes (big-endian) of SHA-1 over the
// PKCS#1 RSAPublicKey DER (RSA) or the uncompressed EC point (ECDSA), as
// ima-evm-utils and Keylime compute it.
absl::StatusOr<uint32_t> ImaKeyIdV2(EVP_PKEY* key);

enum class SignatureCheck : uint8_t {
  kValid,
  kInvalid,      // Well-formed, a key with its id exists, does not verify.
  kNoKey,        // No key with the signature's key id.
  kMalformed,    // Header wrong, lengths inconsistent, unsupported algo.
  kAlgMismatch,  // Header hash algo differs from the file digest's.
};

SignatureCheck VerifyImaSignature(const std::vector<VerificationKey>& keys,
                                  absl::string_view signature,
                                  HashAlg digest_alg, const uint8_t* digest,
                                  size_t digest_size);

}  // namespace vouch::core::ima

#endif  // VOUCH_CORE_IMA_IMA_SIGNATURE_H_
