// File: core/tpm/credential.h
// Software TPM2_MakeCredential (TPM 2.0 Part 1, 24 "Credential Protection";
// Part 3, 12.6) so that the registrar needs no TPM: seals a secret to an EK
// and an AIK Name; only the TPM holding both can ActivateCredential it. RSA
// EKs use OAEP with label "IDENTITY\0"; ECC EKs use ECDH with KDFe. The EK
// public area is untrusted input (checked). Randomness comes in as an
// argument (core draws none), so the function is pure and thread-safe.
//
//   Bytes random(CredentialRandomBytes(ek.public_area));  // fill: RAND_bytes
//   VOUCH_ASSIGN_OR_RETURN(Credential c,
//                          MakeCredential(ek, aik->name(), secret, random));
#ifndef VOUCH_CORE_TPM_CREDENTIAL_H_
#define VOUCH_CORE_TPM_CREDENTIAL_H_

#include <tss2/tss2_tpm2_types.h>

#include <cstddef>

#include "absl/status/statusor.h"
#include "common/bytes.h"
#include "core/tpm/tpm_wire.h"

namespace vouch::core::tpm {

struct Credential {
  Bytes credential_blob;   // TPM2B_ID_OBJECT, as TPM2_ActivateCredential takes.
  Bytes encrypted_secret;  // TPM2B_ENCRYPTED_SECRET.
};

// How many random bytes MakeCredential consumes for this EK (0 if the EK is
// not usable): RSA: 2 x digest size of nameAlg (the seed, then the OAEP
// seed); ECC: field size + 16 (the ephemeral private key, reduced mod n).
size_t CredentialRandomBytes(const TPMT_PUBLIC& ek);

// `ek`: a restricted decryption key (TCG EK template) with AES-CFB symmetric
// parameters, RSA 2048 or ECC P-256/P-384. `aik_name`: the AIK's Name
// (ObjectName). `secret`: 1..digest-size-of-nameAlg bytes. `randomness`:
// exactly CredentialRandomBytes(ek) fresh random bytes.
absl::StatusOr<Credential> MakeCredential(const PublicArea& ek,
                                          ByteSpan aik_name, ByteSpan secret,
                                          ByteSpan randomness);

// The proof an agent sends in Activate (registrar.proto): RFC 2104
// HMAC-SHA256 keyed with the secret ActivateCredential recovered, over the
// bytes of agent_id. The agent computes it; the registrar recomputes and
// compares it in constant time.
absl::StatusOr<Bytes> ActivationProof(ByteSpan secret,
                                      absl::string_view agent_id);

// The proof when the registration requests a certificate: HMAC-SHA256 keyed
// with the secret over agent_id, one zero byte, and the SHA-256 of the
// requested key's DER SubjectPublicKeyInfo (registrar.proto,
// ActivateRequest.hmac). The secret reaches only the TPM holding the EK and
// the AIK, so a valid proof says that TPM asked for this key.
absl::StatusOr<Bytes> ActivationProofForKey(ByteSpan secret,
                                            absl::string_view agent_id,
                                            absl::string_view spki_der);

// TPM 2.0 Part 1, 11.4.10.2 KDFa (SP 800-108 counter mode with HMAC), via
// OpenSSL's KBKDF. `label` without its terminating zero (the KDF adds it).
absl::StatusOr<Bytes> KdfA(TPMI_ALG_HASH alg, ByteSpan key,
                           absl::string_view label, ByteSpan context_u,
                           ByteSpan context_v, size_t bits);

// TPM 2.0 Part 1, 11.4.10.3 KDFe (SP 800-56A concatenation KDF), via
// OpenSSL's SSKDF. `label` without its terminating zero (added here).
absl::StatusOr<Bytes> KdfE(TPMI_ALG_HASH alg, ByteSpan z,
                           absl::string_view label, ByteSpan party_u,
                           ByteSpan party_v, size_t bits);

}  // namespace vouch::core::tpm

#endif  // VOUCH_CORE_TPM_CREDENTIAL_H_
