// File: core/boot/digest.h
// Hashing by TPM_ALG_ID through OpenSSL 3 (EVP), for PCR replay and for
// checking that an event's digest covers its data. Pure; thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(Bytes d, ComputeDigest(kAlgSha256, data));
#ifndef VOUCH_CORE_BOOT_DIGEST_H_
#define VOUCH_CORE_BOOT_DIGEST_H_

#include <openssl/evp.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/bytes.h"

namespace vouch::core::boot {

// The OpenSSL digest for a TPM_ALG_ID (sha1, sha256, sha384, sha512,
// sm3_256 when the provider has it); nullptr otherwise.
const EVP_MD* DigestMd(uint16_t alg);

// H(data). kInvalidArgument for an algorithm DigestMd lacks; kInternal if
// OpenSSL fails.
absl::StatusOr<Bytes> ComputeDigest(uint16_t alg, ByteSpan data);

}  // namespace vouch::core::boot

#endif  // VOUCH_CORE_BOOT_DIGEST_H_
