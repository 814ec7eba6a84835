#include "core/attest/register.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/openssl_handle.h"
#include "common/status_macros.h"
#include "core/agent_id.h"
#include "core/attest/join.h"
#include "core/rule.h"
#include "core/tpm/public_key.h"
#include "core/tpm/quote.h"

namespace vouch::core::attest {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

std::string VerdictText(const core::Verdict& v) {
  std::vector<std::string> parts;
  for (const core::Failure& f : v.failures()) {
    parts.push_back(absl::StrCat(core::RuleName(f.rule), " (", f.detail, ")"));
  }
  return absl::StrJoin(parts, "; ");
}

// TCG EK Credential Profile templates: a restricted decryption storage key
// bound to this TPM (TPM 2.0 Part 2, 8.3 TPMA_OBJECT).
absl::Status CheckEkAttributes(const TPMT_PUBLIC& ek) {
  const TPMA_OBJECT need = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
                           TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT;
  if ((ek.objectAttributes & need) != need ||
      (ek.objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT) != 0) {
    return Invalid("ek_public",
                   "not an endorsement key (must be restricted, decrypt, "
                   "fixedTPM, fixedParent, not sign)");
  }
  if (ek.type != TPM2_ALG_RSA && ek.type != TPM2_ALG_ECC) {
    return Invalid("ek_public", "must be an RSA or ECC key");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ValidRegistration> ValidateRegister(
    const v1::RegisterRequest& req, const core::tpm::EkCertVerifier* ek_cas,
    bool require_ek_cert, absl::Time now) {
  if (absl::Status s = core::ValidateAgentId(req.agent_id()); !s.ok()) {
    return Invalid("agent_id", s.message());
  }
  if (req.ek_public().empty() || req.ek_public().size() > kMaxPublicBytes) {
    return Invalid("ek_public", "must be 1..1024 bytes");
  }
  if (req.aik_public().empty() || req.aik_public().size() > kMaxPublicBytes) {
    return Invalid("aik_public", "must be 1..1024 bytes");
  }
  if (req.ek_certificate().size() > kMaxCertificateBytes) {
    return Invalid("ek_certificate", "larger than 8 KiB");
  }
  if (req.ek_intermediates_size() > kMaxIntermediates) {
    return Invalid("ek_intermediates", "more than 8 certificates");
  }
  for (const std::string& c : req.ek_intermediates()) {
    if (c.empty() || c.size() > kMaxCertificateBytes) {
      return Invalid("ek_intermediates", "each must be 1..8192 bytes");
    }
  }
  if (req.agent_version().size() > kMaxAgentVersionBytes) {
    return Invalid("agent_version", "longer than 64 bytes");
  }
  for (char c : req.agent_version()) {
    if (!absl::ascii_isprint(static_cast<unsigned char>(c))) {
      return Invalid("agent_version", "must be printable ASCII");
    }
  }

  ValidRegistration v;
  if (!req.join_token().empty()) {
    VOUCH_RETURN_IF_ERROR(ValidateJoinToken(req.join_token()));
  }
  if (!req.csr().empty()) {
    VOUCH_ASSIGN_OR_RETURN(v.csr_spki, CsrPublicKey(req.csr()));
  }
  if (req.labels_size() > kMaxLabels) {
    return Invalid("labels", "at most 16 labels");
  }
  v.labels.insert(req.labels().begin(), req.labels().end());
  VOUCH_RETURN_IF_ERROR(ValidateLabels(v.labels, "labels"));
  absl::StatusOr<core::tpm::PublicArea> ek =
      core::tpm::ParsePublic(AsBytes(req.ek_public()));
  if (!ek.ok()) return Invalid("ek_public", ek.status().message());
  v.ek = *std::move(ek);
  VOUCH_RETURN_IF_ERROR(CheckEkAttributes(v.ek.public_area));
  absl::StatusOr<Bytes> ek_sha = core::tpm::SpkiSha256(v.ek.public_area);
  if (!ek_sha.ok()) return Invalid("ek_public", ek_sha.status().message());
  v.ek_sha256 = std::string(AsString(*ek_sha));

  absl::StatusOr<core::tpm::PublicArea> aik =
      core::tpm::ParsePublic(AsBytes(req.aik_public()));
  if (!aik.ok()) return Invalid("aik_public", aik.status().message());
  v.aik = *std::move(aik);
  const core::Verdict admission =
      core::tpm::CheckAikAttributes(v.aik.public_area);
  if (!admission.passed()) {
    return Invalid("aik_public", absl::StrCat("not an acceptable AIK: ",
                                              VerdictText(admission)));
  }
  absl::StatusOr<Bytes> name = core::tpm::ObjectName(v.aik);
  if (!name.ok()) return Invalid("aik_public", name.status().message());
  v.aik_name = std::string(AsString(*name));

  if (req.ek_certificate().empty()) {
    if (require_ek_cert) {
      return Invalid("ek_certificate",
                     "required (this registrar has require_ek_cert = true)");
    }
    return v;
  }
  if (ek_cas == nullptr) {
    return absl::PermissionDeniedError(
        "EK certificates cannot be checked: no EK CA is configured");
  }
  std::vector<std::string> intermediates(req.ek_intermediates().begin(),
                                         req.ek_intermediates().end());
  const core::Verdict cert = ek_cas->Verify(
      AsBytes(req.ek_certificate()), intermediates, v.ek.public_area, now);
  if (!cert.passed()) {
    for (const core::Failure& f : cert.failures()) {
      if (f.rule == core::Rule::kEkCertParse) {
        return Invalid("ek_certificate", "not a readable X.509 certificate");
      }
      if (f.rule == core::Rule::kEkCertKey) {
        return Invalid("ek_certificate", "its key is not the key in ek_public");
      }
    }
    return absl::PermissionDeniedError(
        "the EK certificate does not chain to a trusted TPM manufacturer CA");
  }
  absl::StatusOr<X509Ptr> parsed =
      core::tpm::ParseCertificate(AsBytes(req.ek_certificate()));
  if (parsed.ok()) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (bio &&
        X509_NAME_print_ex(bio.get(), X509_get_issuer_name(parsed->get()), 0,
                           XN_FLAG_RFC2253) >= 0) {
      char* data = nullptr;
      const long len = BIO_get_mem_data(bio.get(), &data);
      v.ek_certificate_issuer =
          std::string(data, static_cast<size_t>(len)).substr(0, 1024);
    }
  }
  return v;
}

}  // namespace vouch::core::attest
