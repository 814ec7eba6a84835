#include "harness/soft_aik.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <tss2/tss2_mu.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "core/tpm/tpm_wire.h"

namespace vouch::testing {
namespace {

[[noreturn]] void Die(const char* what) {
  std::cerr << "SoftAik: " << what << "\n";
  std::abort();
}

}  // namespace

SoftAik SoftAik::Create() {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  if (key == nullptr) Die("EVP_RSA_gen");
  return FromKey(key);
}

SoftAik SoftAik::FromPem(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key =
      bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA ||
      EVP_PKEY_get_bits(key) != 2048) {
    Die("FromPem: not an RSA-2048 private key");
  }
  return FromKey(key);
}

SoftAik SoftAik::FromKey(EVP_PKEY* key) {
  SoftAik aik;
  aik.key_ = std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free);
  BIGNUM* n = nullptr;
  if (EVP_PKEY_get_bn_param(key, "n", &n) != 1) Die("modulus");
  TPMT_PUBLIC pub{};
  pub.type = TPM2_ALG_RSA;
  pub.nameAlg = TPM2_ALG_SHA256;
  pub.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                         TPMA_OBJECT_SENSITIVEDATAORIGIN |
                         TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED |
                         TPMA_OBJECT_SIGN_ENCRYPT;
  pub.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
  pub.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
  pub.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
  pub.parameters.rsaDetail.keyBits = 2048;
  pub.unique.rsa.size = 256;
  BN_bn2binpad(n, pub.unique.rsa.buffer, 256);
  BN_free(n);
  absl::StatusOr<Bytes> marshalled = core::tpm::MarshalPublic(pub);
  if (!marshalled.ok()) Die("marshal AIK");
  aik.tpm2b_public_ = *marshalled;
  absl::StatusOr<core::tpm::PublicArea> area =
      core::tpm::ParsePublic(aik.tpm2b_public_);
  if (!area.ok()) Die("parse AIK");
  absl::StatusOr<Bytes> name = core::tpm::ObjectName(*area);
  if (!name.ok()) Die("AIK name");
  aik.name_ = *name;
  return aik;
}

std::pair<std::string, std::string> SoftAik::Quote(
    const TPML_PCR_SELECTION& selection, const core::tpm::PcrValues& values,
    const std::string& nonce, const core::tpm::ClockInfo& clock) const {
  TPMS_ATTEST a{};
  a.magic = TPM2_GENERATED_VALUE;
  a.type = TPM2_ST_ATTEST_QUOTE;
  a.qualifiedSigner.size = static_cast<UINT16>(name_.size());
  std::memcpy(a.qualifiedSigner.name, name_.data(), name_.size());
  if (nonce.size() > sizeof a.extraData.buffer) Die("nonce too long");
  a.extraData.size = static_cast<UINT16>(nonce.size());
  std::memcpy(a.extraData.buffer, nonce.data(), nonce.size());
  a.clockInfo.clock = clock.clock;
  a.clockInfo.resetCount = clock.reset_count;
  a.clockInfo.restartCount = clock.restart_count;
  a.clockInfo.safe = clock.safe ? 1 : 0;
  a.attested.quote.pcrSelect = selection;
  absl::StatusOr<Bytes> digest =
      core::tpm::PcrDigest(TPM2_ALG_SHA256, selection, values);
  if (!digest.ok()) Die("pcr digest");
  a.attested.quote.pcrDigest.size = static_cast<UINT16>(digest->size());
  std::memcpy(a.attested.quote.pcrDigest.buffer, digest->data(),
              digest->size());
  uint8_t buf[4096];
  size_t off = 0;
  if (Tss2_MU_TPMS_ATTEST_Marshal(&a, buf, sizeof buf, &off) != 0) {
    Die("marshal attest");
  }
  std::string attest(reinterpret_cast<char*>(buf), off);
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  size_t sig_len = 256;
  uint8_t sig[256];
  if (EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(md, sig, &sig_len, buf, off) != 1) {
    Die("sign");
  }
  EVP_MD_CTX_free(md);
  TPMT_SIGNATURE s{};
  s.sigAlg = TPM2_ALG_RSASSA;
  s.signature.rsassa.hash = TPM2_ALG_SHA256;
  s.signature.rsassa.sig.size = static_cast<UINT16>(sig_len);
  std::memcpy(s.signature.rsassa.sig.buffer, sig, sig_len);
  off = 0;
  if (Tss2_MU_TPMT_SIGNATURE_Marshal(&s, buf, sizeof buf, &off) != 0) {
    Die("marshal signature");
  }
  return {attest, std::string(reinterpret_cast<char*>(buf), off)};
}

}  // namespace vouch::testing
