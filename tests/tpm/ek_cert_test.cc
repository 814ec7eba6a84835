// [core] tests of EK certificate parsing and chain/key checks on
// certificates made here with OpenSSL: a throwaway EC CA certifies the RSA
// key of the golden AIK (standing in for an EK public area).
#include "core/tpm/ek_cert.h"

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/rule.h"
#include "core/tpm/public_key.h"
#include "core/tpm/tpm_wire.h"
#include "test_util.h"

namespace vouch::core::tpm {
namespace {

EvpPkeyPtr NewEcKey() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  REQUIRE(key);
  return key;
}

// A certificate for `subject_key`, signed by `issuer_key` (self-signed when
// they are the same), valid 2020..2040.
X509Ptr MakeCert(EVP_PKEY* subject_key, EVP_PKEY* issuer_key,
                 const char* subject, const char* issuer, bool ca) {
  X509Ptr cert(X509_new());
  REQUIRE(cert);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 7);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), 1577836800);  // 2020
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), 2208988800);   // 2040
  auto name = [](const char* cn) {
    X509_NAME* n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn), -1,
                               -1, 0);
    return n;
  };
  X509_NAME* s = name(subject);
  X509_NAME* i = name(issuer);
  X509_set_subject_name(cert.get(), s);
  X509_set_issuer_name(cert.get(), i);
  X509_NAME_free(s);
  X509_NAME_free(i);
  X509_set_pubkey(cert.get(), subject_key);
  if (ca) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(
        nullptr, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  REQUIRE(X509_sign(cert.get(), issuer_key, EVP_sha256()) > 0);
  return cert;
}

Bytes Der(X509* cert) {
  const int len = i2d_X509(cert, nullptr);
  Bytes out(static_cast<size_t>(len));
  uint8_t* p = out.data();
  i2d_X509(cert, &p);
  return out;
}

std::string Pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

using RuleList = std::vector<Rule>;

RuleList Rules(const Verdict& v) {
  RuleList rules;
  for (const Failure& f : v.failures()) rules.push_back(f.rule);
  return rules;
}

struct Fixture {
  EvpPkeyPtr ca_key = NewEcKey();
  X509Ptr ca;
  TPMT_PUBLIC ek{};
  TPMT_PUBLIC other_ek{};
  Bytes ek_cert;
  const absl::Time now = absl::FromUnixSeconds(1800000000);  // 2027

  Fixture() {
    ca = MakeCert(ca_key.get(), ca_key.get(), "Test EK CA", "Test EK CA", true);
    auto area = ParsePublic(tpmtest::ReadGolden("tpm2-tools/ak-rsa.pub"));
    REQUIRE(area.ok());
    ek = area->public_area;
    auto other = ParsePublic(tpmtest::ReadGolden("tpm2-tools/ak-ecc.pub"));
    REQUIRE(other.ok());
    other_ek = other->public_area;
    auto key = PublicKeyFromTpm(ek);
    REQUIRE(key.ok());
    X509Ptr cert =
        MakeCert(key->get(), ca_key.get(), "EK", "Test EK CA", false);
    ek_cert = Der(cert.get());
  }
};

TEST_CASE("EK certificate: chain, key and validity", "[core]") {
  Fixture f;
  auto v = EkCertVerifier::Create({Pem(f.ca.get())});
  REQUIRE(v.ok());
  CHECK(Rules((*v)->Verify(f.ek_cert, {}, f.ek, f.now)) == RuleList{});
  CHECK((*v)->Verify(f.ek_cert, {}, f.ek, f.now).passed());
  CHECK(Rules((*v)->Verify(f.ek_cert, {}, f.other_ek, f.now)) ==
        RuleList{Rule::kEkCertKey});
  CHECK(Rules((*v)->Verify(f.ek_cert, {}, f.ek,
                           absl::FromUnixSeconds(2300000000))) ==
        RuleList{Rule::kEkCertChain});
  // Another CA (DER this time) does not vouch for it.
  EvpPkeyPtr other_key = NewEcKey();
  X509Ptr other_ca = MakeCert(other_key.get(), other_key.get(), "Test EK CA",
                              "Test EK CA", true);
  const Bytes other_der = Der(other_ca.get());
  auto other = EkCertVerifier::Create({std::string(AsString(other_der))});
  REQUIRE(other.ok());
  CHECK(Rules((*other)->Verify(f.ek_cert, {}, f.ek, f.now)) ==
        RuleList{Rule::kEkCertChain});
}

TEST_CASE("EK certificate quirks and malformed input", "[core]") {
  Fixture f;
  auto v = EkCertVerifier::Create({Pem(f.ca.get())});
  REQUIRE(v.ok());
  // NV padding after the DER (zeros or 0xff) is tolerated.
  for (uint8_t pad : {0x00, 0xff}) {
    Bytes padded = f.ek_cert;
    padded.resize(padded.size() + 100, pad);
    CHECK((*v)->Verify(padded, {}, f.ek, f.now).passed());
  }
  CHECK(Rules((*v)->Verify(Bytes{0x30, 0x82, 0x10}, {}, f.ek, f.now)) ==
        RuleList{Rule::kEkCertParse});
  CHECK(Rules((*v)->Verify(Bytes(100, 0xff), {}, f.ek, f.now)) ==
        RuleList{Rule::kEkCertParse});
  Bytes truncated(f.ek_cert.begin(), f.ek_cert.end() - 1);
  CHECK(Rules((*v)->Verify(truncated, {}, f.ek, f.now)) ==
        RuleList{Rule::kEkCertParse});
  CHECK(Rules((*v)->Verify(f.ek_cert, {"junk"}, f.ek, f.now)) ==
        RuleList{Rule::kEkCertParse});
  CHECK(Rules((*v)->Verify(f.ek_cert,
                           std::vector<std::string>(9, Pem(f.ca.get())), f.ek,
                           f.now)) == RuleList{Rule::kEkCertParse});
  CHECK_FALSE(EkCertVerifier::Create({}).ok());
  CHECK_FALSE(EkCertVerifier::Create({"-----BEGIN nonsense"}).ok());

  // Quirk: an RSA key labelled id-RSAES-OAEP (1.2.840.113549.1.1.7).
  Bytes oaep = f.ek_cert;
  const Bytes rsa_oid = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                         0xf7, 0x0d, 0x01, 0x01, 0x01};
  auto at =
      std::search(oaep.begin(), oaep.end(), rsa_oid.begin(), rsa_oid.end());
  REQUIRE(at != oaep.end());
  at[10] = 0x07;
  auto cert = ParseCertificate(oaep);
  REQUIRE(cert.ok());
  auto key = CertificateKey(cert->get());
  REQUIRE(key.ok());
  auto same = SameKey(f.ek, key->get());
  REQUIRE(same.ok());
  CHECK(*same);
}

}  // namespace
}  // namespace vouch::core::tpm
