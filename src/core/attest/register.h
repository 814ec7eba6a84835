// File: core/attest/register.h
// Everything the registrar checks in a RegisterRequest before it touches the
// database, as one pure function (fuzzed by fuzz_registrar_register): field
// bounds, agent_id syntax, EK and AIK public areas, AIK admission rules, the
// EK certificate chain against the configured CAs and the certificate's key
// equal to the EK. The request is untrusted; never crashes. Thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(ValidRegistration v,
//       ValidateRegister(request, verifier.get(), require_cert, now));
#ifndef VOUCH_CORE_ATTEST_REGISTER_H_
#define VOUCH_CORE_ATTEST_REGISTER_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/attest/limits.h"
#include "core/tpm/ek_cert.h"
#include "core/tpm/tpm_wire.h"
#include "vouch/v1/registrar.pb.h"

namespace vouch::core::attest {

struct ValidRegistration {
  core::tpm::PublicArea ek;
  core::tpm::PublicArea aik;
  std::string aik_name;   // TPM Name of the AIK
  std::string ek_sha256;  // SHA-256 of the EK's DER SubjectPublicKeyInfo
  std::string ek_certificate_issuer;  // RFC 4514; empty without certificate
  // The DER SubjectPublicKeyInfo of the request's csr (core/attest/join.h);
  // empty when it carries none.
  std::string csr_spki;
  std::map<std::string, std::string> labels;  // valid (join.h)
};

// kInvalidArgument names the field and the rule; kPermissionDenied when the
// EK certificate does not chain to `ek_cas` (never saying which CA was
// expected). The csr and join_token are checked too (join.h): bounds,
// syntax, the csr's self-signature. `ek_cas` may be null only when
// !require_ek_cert; a certificate that is sent is always checked when `ek_cas`
// is set.
absl::StatusOr<ValidRegistration> ValidateRegister(
    const v1::RegisterRequest& request, const core::tpm::EkCertVerifier* ek_cas,
    bool require_ek_cert, absl::Time now);

}  // namespace vouch::core::attest

#endif  // VOUCH_CORE_ATTEST_REGISTER_H_
