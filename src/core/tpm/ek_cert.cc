#include "core/tpm/ek_cert.h"

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/rule.h"
#include "core/tpm/public_key.h"

namespace vouch::core::tpm {
namespace {

// Length of the DER TLV at the start of `b` (X.690, 8.1.2-8.1.3: a
// constructed SEQUENCE with a definite length in at most 4 length bytes), or
// 0 if it is not one or does not fit.
size_t DerSequenceLength(ByteSpan b) {
  if (b.size() < 2 || b[0] != 0x30) return 0;
  size_t len = b[1];
  size_t header = 2;
  if (len & 0x80) {
    const size_t n = len & 0x7f;
    if (n == 0 || n > 4 || b.size() < 2 + n) return 0;
    len = 0;
    for (size_t i = 0; i < n; ++i) len = (len << 8) | b[2 + i];
    header += n;
  }
  if (len > b.size() - header) return 0;
  return header + len;
}

bool LooksLikePem(ByteSpan b) {
  return absl::StrContains(AsString(b), "-----BEGIN ");
}

// All certificates in a PEM text.
absl::StatusOr<std::vector<X509Ptr>> ParsePemCertificates(ByteSpan b) {
  BioPtr bio(BIO_new_mem_buf(b.data(), static_cast<int>(b.size())));
  std::vector<X509Ptr> out;
  while (bio) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    out.push_back(std::move(cert));
    if (out.size() > 64) {
      return absl::InvalidArgumentError("PEM: more than 64 certificates");
    }
  }
  DrainOpenSslErrors();  // The end of the text reads as an error.
  if (out.empty()) {
    return absl::InvalidArgumentError("PEM: no certificate found");
  }
  return out;
}

}  // namespace

absl::StatusOr<X509Ptr> ParseCertificate(ByteSpan bytes) {
  if (bytes.size() > kMaxCertBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "certificate: ", bytes.size(), " bytes is more than ", kMaxCertBytes));
  }
  if (LooksLikePem(bytes)) {
    VOUCH_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs,
                           ParsePemCertificates(bytes));
    if (certs.size() != 1) {
      return absl::InvalidArgumentError("PEM: expected one certificate");
    }
    return std::move(certs.front());
  }
  const size_t len = DerSequenceLength(bytes);
  if (len == 0) {
    return absl::InvalidArgumentError(
        "certificate: not a DER SEQUENCE that fits the bytes given");
  }
  const uint8_t* p = bytes.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(len)));
  if (!cert || p != bytes.data() + len) {
    return absl::InvalidArgumentError(absl::StrCat(
        "certificate: DER does not parse: ", DrainOpenSslErrors()));
  }
  return cert;
}

absl::StatusOr<EvpPkeyPtr> CertificateKey(X509* cert) {
  if (EVP_PKEY* key = X509_get_pubkey(cert)) return EvpPkeyPtr(key);
  DrainOpenSslErrors();
  // Quirk: RSA EK certificates whose key algorithm is id-RSAES-OAEP (some
  // vendors follow TCG's old guidance). The key bits are a PKCS#1
  // RSAPublicKey either way (RFC 4055, 1.2).
  const X509_PUBKEY* spki = X509_get_X509_PUBKEY(cert);
  ASN1_OBJECT* alg = nullptr;
  const unsigned char* key_bytes = nullptr;
  int key_len = 0;
  if (spki == nullptr ||
      X509_PUBKEY_get0_param(&alg, &key_bytes, &key_len, nullptr, spki) != 1 ||
      OBJ_obj2nid(alg) != NID_rsaesOaep) {
    return absl::InvalidArgumentError(
        "certificate: public key cannot be loaded");
  }
  EvpPkeyPtr key(d2i_PublicKey(EVP_PKEY_RSA, nullptr, &key_bytes, key_len));
  if (!key) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError(
        "certificate: RSAES-OAEP public key does not parse");
  }
  return key;
}

absl::StatusOr<std::unique_ptr<EkCertVerifier>> EkCertVerifier::Create(
    const std::vector<std::string>& ca_certificates) {
  std::unique_ptr<EkCertVerifier> v(new EkCertVerifier());
  v->store_.reset(X509_STORE_new());
  if (!v->store_) return absl::InternalError("X509_STORE_new failed");
  size_t added = 0;
  for (size_t i = 0; i < ca_certificates.size(); ++i) {
    const ByteSpan bytes = AsBytes(ca_certificates[i]);
    std::vector<X509Ptr> certs;
    if (LooksLikePem(bytes)) {
      absl::StatusOr<std::vector<X509Ptr>> pem = ParsePemCertificates(bytes);
      if (!pem.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("CA certificate ", i, ": ", pem.status().message()));
      }
      certs = std::move(*pem);
    } else {
      absl::StatusOr<X509Ptr> der = ParseCertificate(bytes);
      if (!der.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("CA certificate ", i, ": ", der.status().message()));
      }
      certs.push_back(*std::move(der));
    }
    for (X509Ptr& cert : certs) {
      if (X509_STORE_add_cert(v->store_.get(), cert.get()) != 1) {
        DrainOpenSslErrors();  // A duplicate is harmless.
      }
      ++added;
    }
  }
  if (added == 0) {
    return absl::InvalidArgumentError("no CA certificates configured");
  }
  return v;
}

Verdict EkCertVerifier::Verify(ByteSpan ek_cert,
                               const std::vector<std::string>& intermediates,
                               const TPMT_PUBLIC& ek, absl::Time now) const {
  Verdict v;
  v.MarkComplete();
  absl::StatusOr<X509Ptr> cert = ParseCertificate(ek_cert);
  if (!cert.ok()) {
    v.AddFailure(Rule::kEkCertParse, std::string(cert.status().message()));
    return v;
  }
  // The key first: it needs no chain.
  absl::StatusOr<EvpPkeyPtr> key = CertificateKey(cert->get());
  absl::StatusOr<bool> same =
      key.ok() ? SameKey(ek, key->get()) : absl::StatusOr<bool>(key.status());
  if (!same.ok()) {
    v.AddFailure(Rule::kEkCertKey, std::string(same.status().message()));
  } else if (!*same) {
    v.AddFailure(Rule::kEkCertKey,
                 "the certified key is not the EK public area presented");
  }

  if (intermediates.size() > kMaxIntermediates) {
    v.AddFailure(Rule::kEkCertParse,
                 absl::StrCat(intermediates.size(), " intermediates; at most ",
                              kMaxIntermediates));
    return v;
  }
  std::vector<X509Ptr> owned;
  X509StackPtr untrusted(sk_X509_new_null());
  for (size_t i = 0; i < intermediates.size(); ++i) {
    absl::StatusOr<X509Ptr> c = ParseCertificate(AsBytes(intermediates[i]));
    if (!c.ok()) {
      v.AddFailure(Rule::kEkCertParse, absl::StrCat("intermediate ", i, ": ",
                                                    c.status().message()));
      return v;
    }
    sk_X509_push(untrusted.get(), c->get());
    owned.push_back(*std::move(c));
  }
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || !untrusted ||
      X509_STORE_CTX_init(ctx.get(), store_.get(), cert->get(),
                          untrusted.get()) != 1) {
    v.AddFailure(Rule::kEkCertChain, "could not set up chain verification");
    return v;
  }
  // The time is an argument (core reads no clock).
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, absl::ToTimeT(now));
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    v.AddFailure(Rule::kEkCertChain,
                 absl::StrCat("no valid chain to a configured CA: ",
                              X509_verify_cert_error_string(err)));
  }
  DrainOpenSslErrors();
  return v;
}

}  // namespace vouch::core::tpm
