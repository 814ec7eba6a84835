#include "core/tpm/public_key.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/bytes.h"

namespace vouch::core::tpm {
namespace {

using ParamBldPtr = CHandle<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using ParamPtr = CHandle<OSSL_PARAM, OSSL_PARAM_free>;

absl::StatusOr<EvpPkeyPtr> FromData(const char* type, OSSL_PARAM_BLD* bld) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) !=
          1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TPM public area: not a valid ", type, " key: ", DrainOpenSslErrors()));
  }
  return EvpPkeyPtr(key);
}

absl::StatusOr<EvpPkeyPtr> RsaKey(const TPMT_PUBLIC& p) {
  const TPMS_RSA_PARMS& parms = p.parameters.rsaDetail;
  const TPM2B_PUBLIC_KEY_RSA& n = p.unique.rsa;
  if (n.size == 0 || n.size * 8u != parms.keyBits || n.buffer[0] == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "TPM public area: RSA modulus of %d bytes does not match keyBits %d",
        n.size, parms.keyBits));
  }
  const uint32_t exponent = parms.exponent == 0 ? 65537 : parms.exponent;
  BignumPtr bn_n(BN_bin2bn(n.buffer, n.size, nullptr));
  BignumPtr bn_e(BN_new());
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld || BN_set_word(bn_e.get(), exponent) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) !=
          1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) !=
          1) {
    return absl::InternalError("out of memory building an RSA key");
  }
  return FromData("RSA", bld.get());
}

absl::StatusOr<EvpPkeyPtr> EccKey(const TPMT_PUBLIC& p) {
  const TPMI_ECC_CURVE curve = p.parameters.eccDetail.curveID;
  const std::string group = CurveName(curve);
  const size_t field = CurveBytes(curve);
  if (group.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "TPM public area: ECC curve 0x%04x is not supported", curve));
  }
  const TPMS_ECC_POINT& q = p.unique.ecc;
  if (q.x.size == 0 || q.y.size == 0 || q.x.size > field || q.y.size > field) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "TPM public area: ECC point coordinates of %d and %d bytes do not "
        "fit %s",
        q.x.size, q.y.size, group));
  }
  // SEC 1, 2.3.3: uncompressed point 0x04 || X || Y, each left-padded.
  Bytes point(1 + 2 * field, 0);
  point[0] = 0x04;
  std::copy(q.x.buffer, q.x.buffer + q.x.size,
            point.begin() + 1 + field - q.x.size);
  std::copy(q.y.buffer, q.y.buffer + q.y.size, point.end() - q.y.size);
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                      group.c_str(), 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY,
                                       point.data(), point.size()) != 1) {
    return absl::InternalError("out of memory building an EC key");
  }
  return FromData("EC", bld.get());
}

}  // namespace

std::string CurveName(TPMI_ECC_CURVE curve) {
  switch (curve) {
    case TPM2_ECC_NIST_P256:
      return "P-256";
    case TPM2_ECC_NIST_P384:
      return "P-384";
    case TPM2_ECC_NIST_P521:
      return "P-521";
    default:
      return "";
  }
}

size_t CurveBytes(TPMI_ECC_CURVE curve) {
  switch (curve) {
    case TPM2_ECC_NIST_P256:
      return 32;
    case TPM2_ECC_NIST_P384:
      return 48;
    case TPM2_ECC_NIST_P521:
      return 66;
    default:
      return 0;
  }
}

absl::StatusOr<EvpPkeyPtr> PublicKeyFromTpm(const TPMT_PUBLIC& public_area) {
  switch (public_area.type) {
    case TPM2_ALG_RSA:
      return RsaKey(public_area);
    case TPM2_ALG_ECC:
      return EccKey(public_area);
    default:
      return absl::InvalidArgumentError(absl::StrFormat(
          "TPM public area: type 0x%04x is not RSA or ECC", public_area.type));
  }
}

absl::StatusOr<bool> SameKey(const TPMT_PUBLIC& public_area,
                             const EVP_PKEY* key) {
  absl::StatusOr<EvpPkeyPtr> tpm_key = PublicKeyFromTpm(public_area);
  if (!tpm_key.ok()) return tpm_key.status();
  return EVP_PKEY_eq(tpm_key->get(), key) == 1;
}

absl::StatusOr<EvpPkeyPtr> PublicKeyFromPem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr)
                     : nullptr);
  if (!key) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError(
        "not a PEM public key (expected -----BEGIN PUBLIC KEY-----)");
  }
  const int id = EVP_PKEY_get_base_id(key.get());
  if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC) {
    return absl::InvalidArgumentError("PEM public key is not RSA or EC");
  }
  return key;
}

absl::StatusOr<Bytes> SpkiSha256(const TPMT_PUBLIC& public_area) {
  absl::StatusOr<EvpPkeyPtr> key = PublicKeyFromTpm(public_area);
  if (!key.ok()) return key.status();
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key->get(), &der);
  if (len <= 0) {
    DrainOpenSslErrors();
    return absl::InternalError("cannot encode the public key");
  }
  Bytes digest(32);
  const bool ok = EVP_Digest(der, static_cast<size_t>(len), digest.data(),
                             nullptr, EVP_sha256(), nullptr) == 1;
  OPENSSL_free(der);
  if (!ok) return absl::InternalError("SHA-256 failed");
  return digest;
}

}  // namespace vouch::core::tpm
