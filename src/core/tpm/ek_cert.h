// File: core/tpm/ek_cert.h
// EK certificates (TCG EK Credential Profile for TPM Family 2.0): parsing the
// DER read from NV, verifying the chain to configured CAs plus intermediates
// the agent supplies, and requiring the certified key to be the EK public
// area used for MakeCredential. Certificates and intermediates are untrusted
// input (bounded, never crash); the CA list is trusted configuration. The
// verifier is immutable after Create and safe to share between threads.
//
//   VOUCH_ASSIGN_OR_RETURN(auto cas, EkCertVerifier::Create(ca_pem_files));
//   Verdict v = cas->Verify(ek_cert_der, agent_intermediates, ek, now);
#ifndef VOUCH_CORE_TPM_EK_CERT_H_
#define VOUCH_CORE_TPM_EK_CERT_H_

#include <tss2/tss2_tpm2_types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/bytes.h"
#include "common/openssl_handle.h"
#include "core/verdict.h"

namespace vouch::core::tpm {

inline constexpr size_t kMaxCertBytes = 16 * 1024;
inline constexpr size_t kMaxIntermediates = 8;

// Parses one certificate, DER or PEM. For DER, tolerates the vendor quirk of
// NV indices larger than the certificate: bytes after the end of the outer
// DER SEQUENCE (zero or 0xff padding, as seen on real TPMs) are ignored.
// Any other malformation is kInvalidArgument.
absl::StatusOr<X509Ptr> ParseCertificate(ByteSpan bytes);

// The certificate's public key. Tolerates the quirk of EK certificates whose
// SubjectPublicKeyInfo says id-RSAES-OAEP (1.2.840.113549.1.1.7, which
// OpenSSL does not load) by reading the RSAPublicKey inside.
absl::StatusOr<EvpPkeyPtr> CertificateKey(X509* cert);

class EkCertVerifier {
 public:
  // Trust anchors: each entry one DER certificate or PEM text holding one
  // or more certificates (a CA directory's files, read by the caller).
  static absl::StatusOr<std::unique_ptr<EkCertVerifier>> Create(
      const std::vector<std::string>& ca_certificates);

  // Rules (Rule::kEkCert*, by name): ek_cert.parse (the certificate or an
  // intermediate is malformed), ek_cert.chain (no valid path to a configured
  // CA at `now`), ek_cert.key (the certified key is not `ek`'s public key).
  Verdict Verify(ByteSpan ek_cert,
                 const std::vector<std::string>& intermediates,
                 const TPMT_PUBLIC& ek, absl::Time now) const;

 private:
  EkCertVerifier() = default;
  X509StorePtr store_;
};

}  // namespace vouch::core::tpm

#endif  // VOUCH_CORE_TPM_EK_CERT_H_
