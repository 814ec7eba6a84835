#include "core/ima/ima_signature.h"

#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "absl/status/status.h"
#include "common/bytes.h"
#include "common/openssl_handle.h"

namespace vouch::core::ima {

absl::StatusOr<uint32_t> ImaKeyIdV2(EVP_PKEY* key) {
  int id = EVP_PKEY_get_base_id(key);
  if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC) {
    return absl::InvalidArgumentError("IMA keys must be RSA or EC");
  }
  // i2d_PublicKey: PKCS#1 RSAPublicKey for RSA, the X9.62 point for EC.
  unsigned char* der = nullptr;
  int len = i2d_PublicKey(key, &der);
  if (len <= 0) {
    return absl::InvalidArgumentError("cannot encode public key: " +
                                      DrainOpenSslErrors());
  }
  Digester sha1(HashAlg::kSha1);
  uint8_t d[20];
  bool ok = sha1.Digest(
      absl::string_view(reinterpret_cast<const char*>(der), len), d);
  OPENSSL_free(der);
  if (!ok) return absl::InternalError("SHA-1 failed");
  return LoadBigEndian32(d + 16);
}

namespace {
const EVP_MD* Md(HashAlg alg) {
  switch (alg) {
    case HashAlg::kSha1:
      return EVP_sha1();
    case HashAlg::kSha256:
      return EVP_sha256();
    case HashAlg::kSha384:
      return EVP_sha384();
    case HashAlg::kSha512:
      return EVP_sha512();
  }
  return nullptr;
}
}  // namespace

SignatureCheck VerifyImaSignature(const std::vector<VerificationKey>& keys,
                                  absl::string_view signature,
                                  HashAlg digest_alg, const uint8_t* digest,
                                  size_t digest_size) {
  constexpr size_t kHeader = 9;  // type, version, hash_algo, keyid, sig_size
  if (signature.size() < kHeader) return SignatureCheck::kMalformed;
  const auto* s = reinterpret_cast<const uint8_t*>(signature.data());
  if ((s[0] != 3 && s[0] != 5) || s[1] != 2) return SignatureCheck::kMalformed;
  std::optional<HashAlg> alg = HashAlgFromKernelId(s[2]);
  if (!alg) return SignatureCheck::kMalformed;
  uint32_t key_id = LoadBigEndian32(s + 3);
  size_t sig_size = LoadBigEndian16(s + 7);
  if (kHeader + sig_size != signature.size()) return SignatureCheck::kMalformed;
  if (*alg != digest_alg || digest_size != DigestSize(digest_alg)) {
    return SignatureCheck::kAlgMismatch;
  }
  bool found = false;
  for (const VerificationKey& k : keys) {
    if (k.key_id != key_id) continue;
    found = true;
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(k.key.get(), nullptr));
    if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1) continue;
    if (EVP_PKEY_get_base_id(k.key.get()) == EVP_PKEY_RSA &&
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1) {
      continue;
    }
    if (EVP_PKEY_CTX_set_signature_md(ctx.get(), Md(*alg)) != 1) continue;
    if (EVP_PKEY_verify(ctx.get(), s + kHeader, sig_size, digest,
                        digest_size) == 1) {
      return SignatureCheck::kValid;
    }
  }
  DrainOpenSslErrors();
  return found ? SignatureCheck::kInvalid : SignatureCheck::kNoKey;
}

}  // namespace vouch::core::ima
