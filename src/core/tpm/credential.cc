#include "core/tpm/credential.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/openssl_handle.h"
#include "common/status_macros.h"
#include "core/tpm/public_key.h"

namespace vouch::core::tpm {
namespace {

using EvpKdfPtr = CHandle<EVP_KDF, EVP_KDF_free>;
using EvpKdfCtxPtr = CHandle<EVP_KDF_CTX, EVP_KDF_CTX_free>;
using EcGroupPtr = CHandle<EC_GROUP, EC_GROUP_free>;
using EcPointPtr = CHandle<EC_POINT, EC_POINT_free>;
using BnCtxPtr = CHandle<BN_CTX, BN_CTX_free>;

void AppendBe16(Bytes& out, size_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
void AppendTpm2b(Bytes& out, ByteSpan b) {
  AppendBe16(out, b.size());
  out.insert(out.end(), b.begin(), b.end());
}

absl::Status SslError(const char* what) {
  return absl::InternalError(absl::StrCat(what, ": ", DrainOpenSslErrors()));
}

absl::StatusOr<Bytes> RunKdf(const char* name, OSSL_PARAM* params,
                             size_t bits) {
  EvpKdfPtr kdf(EVP_KDF_fetch(nullptr, name, nullptr));
  EvpKdfCtxPtr ctx(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr);
  Bytes out((bits + 7) / 8);
  if (!ctx || EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return SslError(name);
  }
  return out;
}

const TPMT_SYM_DEF_OBJECT& Symmetric(const TPMT_PUBLIC& ek) {
  return ek.type == TPM2_ALG_RSA ? ek.parameters.rsaDetail.symmetric
                                 : ek.parameters.eccDetail.symmetric;
}

// RFC 8017, B.2.1 MGF1.
Bytes Mgf1(const EVP_MD* md, ByteSpan seed, size_t len) {
  Bytes out;
  Bytes block(seed.begin(), seed.end());
  block.resize(seed.size() + 4);
  uint8_t digest[EVP_MAX_MD_SIZE];
  for (uint32_t counter = 0; out.size() < len; ++counter) {
    for (int i = 0; i < 4; ++i) {
      block[seed.size() + i] = static_cast<uint8_t>(counter >> (24 - 8 * i));
    }
    unsigned int n = 0;
    EVP_Digest(block.data(), block.size(), digest, &n, md, nullptr);
    out.insert(out.end(), digest, digest + n);
  }
  out.resize(len);
  return out;
}

// RFC 8017, 7.1.1 RSAES-OAEP-ENCRYPT with the seed given (TPM 2.0 Part 1,
// B.10.3: label "IDENTITY" with its zero, hash = the EK's nameAlg). OAEP
// encoding is written out here only because OpenSSL draws the OAEP seed
// itself; the RSA operation is OpenSSL's.
absl::StatusOr<Bytes> OaepEncrypt(const TPMT_PUBLIC& ek, ByteSpan message,
                                  ByteSpan oaep_seed) {
  const EVP_MD* md = HashMd(ek.nameAlg);
  const size_t h = HashSize(ek.nameAlg);
  const size_t k = ek.unique.rsa.size;
  if (message.size() + 2 * h + 2 > k) {
    return absl::InvalidArgumentError("EK modulus too small for OAEP");
  }
  static constexpr char kLabel[] = "IDENTITY";  // Includes its zero.
  Bytes db(k - h - 1, 0);
  unsigned int n = 0;
  EVP_Digest(kLabel, sizeof(kLabel), db.data(), &n, md, nullptr);
  db[k - h - 2 - message.size()] = 0x01;
  std::copy(message.begin(), message.end(), db.end() - message.size());
  const Bytes db_mask = Mgf1(md, oaep_seed, db.size());
  for (size_t i = 0; i < db.size(); ++i) db[i] ^= db_mask[i];
  const Bytes seed_mask = Mgf1(md, db, h);
  Bytes em(1, 0);
  for (size_t i = 0; i < h; ++i) em.push_back(oaep_seed[i] ^ seed_mask[i]);
  em.insert(em.end(), db.begin(), db.end());

  VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr key, PublicKeyFromTpm(ek));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  Bytes out(k);
  size_t out_len = out.size();
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_NO_PADDING) != 1 ||
      EVP_PKEY_encrypt(ctx.get(), out.data(), &out_len, em.data(), em.size()) !=
          1) {
    return SslError("RSA encryption of the credential seed");
  }
  out.resize(out_len);
  return out;
}

int CurveNid(TPMI_ECC_CURVE curve) {
  switch (curve) {
    case TPM2_ECC_NIST_P256:
      return NID_X9_62_prime256v1;
    case TPM2_ECC_NIST_P384:
      return NID_secp384r1;
    default:
      return NID_undef;
  }
}

Bytes BnBytes(const BIGNUM* bn, size_t size) {
  Bytes out(size);
  BN_bn2binpad(bn, out.data(), static_cast<int>(size));
  return out;
}

struct EccSeed {
  Bytes seed;
  Bytes encrypted;  // Marshalled TPMS_ECC_POINT of the ephemeral key.
};

// TPM 2.0 Part 1, C.6.4 / 11.4.10.3: one-pass Diffie-Hellman with an
// ephemeral key d_e (from `random`), Z = x(d_e * Q_ek), seed = KDFe(nameAlg,
// Z, "IDENTITY", x(Q_e), x(Q_ek)).
absl::StatusOr<EccSeed> EccMakeSeed(const TPMT_PUBLIC& ek, ByteSpan random) {
  const size_t field = CurveBytes(ek.parameters.eccDetail.curveID);
  EcGroupPtr group(
      EC_GROUP_new_by_curve_name(CurveNid(ek.parameters.eccDetail.curveID)));
  BnCtxPtr bn_ctx(BN_CTX_new());
  if (!group || !bn_ctx) return SslError("EC group");
  const TPMS_ECC_POINT& q = ek.unique.ecc;
  BignumPtr ek_x(BN_bin2bn(q.x.buffer, q.x.size, nullptr));
  BignumPtr ek_y(BN_bin2bn(q.y.buffer, q.y.size, nullptr));
  EcPointPtr ek_point(EC_POINT_new(group.get()));
  if (!ek_x || !ek_y || !ek_point ||
      EC_POINT_set_affine_coordinates(group.get(), ek_point.get(), ek_x.get(),
                                      ek_y.get(), bn_ctx.get()) != 1) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError("EK public point is not on its curve");
  }
  // d_e = (random mod (n - 1)) + 1: 16 extra bytes make the bias negligible.
  const BIGNUM* order = EC_GROUP_get0_order(group.get());
  BignumPtr d(
      BN_bin2bn(random.data(), static_cast<int>(random.size()), nullptr));
  BignumPtr n_minus_1(BN_dup(order));
  EcPointPtr q_e(EC_POINT_new(group.get()));
  EcPointPtr shared(EC_POINT_new(group.get()));
  BignumPtr qe_x(BN_new()), qe_y(BN_new()), z_x(BN_new());
  if (!d || !n_minus_1 || !q_e || !shared || !qe_x || !qe_y || !z_x ||
      BN_sub_word(n_minus_1.get(), 1) != 1 ||
      BN_mod(d.get(), d.get(), n_minus_1.get(), bn_ctx.get()) != 1 ||
      BN_add_word(d.get(), 1) != 1 ||
      EC_POINT_mul(group.get(), q_e.get(), d.get(), nullptr, nullptr,
                   bn_ctx.get()) != 1 ||
      EC_POINT_mul(group.get(), shared.get(), nullptr, ek_point.get(), d.get(),
                   bn_ctx.get()) != 1 ||
      EC_POINT_get_affine_coordinates(group.get(), q_e.get(), qe_x.get(),
                                      qe_y.get(), bn_ctx.get()) != 1 ||
      EC_POINT_get_affine_coordinates(group.get(), shared.get(), z_x.get(),
                                      nullptr, bn_ctx.get()) != 1) {
    return SslError("ECDH for the credential seed");
  }
  const Bytes ephemeral_x = BnBytes(qe_x.get(), field);
  const Bytes ephemeral_y = BnBytes(qe_y.get(), field);
  const Bytes z = BnBytes(z_x.get(), field);
  EccSeed out;
  VOUCH_ASSIGN_OR_RETURN(
      out.seed, KdfE(ek.nameAlg, z, "IDENTITY", ephemeral_x,
                     ByteSpan(q.x.buffer, q.x.size), HashSize(ek.nameAlg) * 8));
  // TPM 2.0 Part 2, 11.2.5.2 TPMS_ECC_POINT: two TPM2B_ECC_PARAMETERs.
  AppendTpm2b(out.encrypted, ephemeral_x);
  AppendTpm2b(out.encrypted, ephemeral_y);
  return out;
}

absl::Status CheckEk(const TPMT_PUBLIC& ek) {
  const TPMA_OBJECT a = ek.objectAttributes;
  if ((a & TPMA_OBJECT_RESTRICTED) == 0 || (a & TPMA_OBJECT_DECRYPT) == 0 ||
      (a & TPMA_OBJECT_SIGN_ENCRYPT) != 0) {
    return absl::InvalidArgumentError(
        "EK: not a restricted decryption (storage) key");
  }
  if (HashSize(ek.nameAlg) == 0 || ek.nameAlg == TPM2_ALG_SHA1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "EK: nameAlg ", HashName(ek.nameAlg), " is not supported"));
  }
  if (ek.type != TPM2_ALG_RSA && ek.type != TPM2_ALG_ECC) {
    return absl::InvalidArgumentError("EK: neither RSA nor ECC");
  }
  const TPMT_SYM_DEF_OBJECT& sym = Symmetric(ek);
  if (sym.algorithm != TPM2_ALG_AES || sym.mode.aes != TPM2_ALG_CFB ||
      (sym.keyBits.aes != 128 && sym.keyBits.aes != 256)) {
    return absl::InvalidArgumentError(
        "EK: symmetric parameters are not AES-128/256-CFB");
  }
  if (ek.type == TPM2_ALG_RSA && ek.parameters.rsaDetail.keyBits != 2048 &&
      ek.parameters.rsaDetail.keyBits != 3072) {
    return absl::InvalidArgumentError("EK: RSA key is not 2048 or 3072 bits");
  }
  if (ek.type == TPM2_ALG_ECC &&
      CurveNid(ek.parameters.eccDetail.curveID) == NID_undef) {
    return absl::InvalidArgumentError("EK: ECC curve is not P-256 or P-384");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Bytes> KdfA(TPMI_ALG_HASH alg, ByteSpan key,
                           absl::string_view label, ByteSpan context_u,
                           ByteSpan context_v, size_t bits) {
  const EVP_MD* md = HashMd(alg);
  if (md == nullptr || bits == 0 || bits % 8 != 0) {
    return absl::InvalidArgumentError("KDFa: bad hash or length");
  }
  Bytes context(context_u.begin(), context_u.end());
  context.insert(context.end(), context_v.begin(), context_v.end());
  std::string digest_name = EVP_MD_get0_name(md);
  std::string mac = "HMAC", mode = "counter";
  std::string label_text(label);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, mode.data(), 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, mac.data(), 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                       digest_name.data(), 0),
      OSSL_PARAM_construct_octet_string(
          OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(key.data()), key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, label_text.data(),
                                        label_text.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, context.data(),
                                        context.size()),
      OSSL_PARAM_construct_end()};
  return RunKdf("KBKDF", params, bits);
}

absl::StatusOr<Bytes> KdfE(TPMI_ALG_HASH alg, ByteSpan z,
                           absl::string_view label, ByteSpan party_u,
                           ByteSpan party_v, size_t bits) {
  const EVP_MD* md = HashMd(alg);
  if (md == nullptr || bits == 0 || bits % 8 != 0) {
    return absl::InvalidArgumentError("KDFe: bad hash or length");
  }
  Bytes info(label.begin(), label.end());
  info.push_back(0);  // Part 1, 11.4.10.3: the label includes its zero.
  info.insert(info.end(), party_u.begin(), party_u.end());
  info.insert(info.end(), party_v.begin(), party_v.end());
  std::string digest_name = EVP_MD_get0_name(md);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                       digest_name.data(), 0),
      OSSL_PARAM_construct_octet_string(
          OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(z.data()), z.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(),
                                        info.size()),
      OSSL_PARAM_construct_end()};
  return RunKdf("SSKDF", params, bits);
}

size_t CredentialRandomBytes(const TPMT_PUBLIC& ek) {
  if (!CheckEk(ek).ok()) return 0;
  if (ek.type == TPM2_ALG_RSA) return 2 * HashSize(ek.nameAlg);
  return CurveBytes(ek.parameters.eccDetail.curveID) + 16;
}

absl::StatusOr<Credential> MakeCredential(const PublicArea& ek,
                                          ByteSpan aik_name, ByteSpan secret,
                                          ByteSpan randomness) {
  const TPMT_PUBLIC& p = ek.public_area;
  VOUCH_RETURN_IF_ERROR(CheckEk(p));
  const TPMI_ALG_HASH alg = p.nameAlg;
  const size_t h = HashSize(alg);
  if (secret.empty() || secret.size() > h) {
    return absl::InvalidArgumentError(
        absl::StrCat("credential secret must be 1..", h, " bytes"));
  }
  if (aik_name.size() < 2 || aik_name.size() > sizeof(TPMU_NAME)) {
    return absl::InvalidArgumentError("AIK name has a bad size");
  }
  if (randomness.size() != CredentialRandomBytes(p)) {
    return absl::InvalidArgumentError(
        absl::StrCat("MakeCredential needs ", CredentialRandomBytes(p),
                     " random bytes, got ", randomness.size()));
  }
  // Part 1, 24.4: the seed, and how it is shared with the EK's TPM.
  Bytes seed;
  Bytes encrypted_seed;
  if (p.type == TPM2_ALG_RSA) {
    seed.assign(randomness.begin(), randomness.begin() + h);
    VOUCH_ASSIGN_OR_RETURN(encrypted_seed,
                           OaepEncrypt(p, seed, randomness.subspan(h)));
  } else {
    VOUCH_ASSIGN_OR_RETURN(EccSeed ecc, EccMakeSeed(p, randomness));
    seed = std::move(ecc.seed);
    encrypted_seed = std::move(ecc.encrypted);
  }
  // Part 1, 24.4 / 24.5: symmetric key and HMAC key from the seed.
  const size_t sym_bits = Symmetric(p).keyBits.aes;
  VOUCH_ASSIGN_OR_RETURN(Bytes sym_key,
                         KdfA(alg, seed, "STORAGE", aik_name, {}, sym_bits));
  VOUCH_ASSIGN_OR_RETURN(Bytes hmac_key,
                         KdfA(alg, seed, "INTEGRITY", {}, {}, h * 8));
  // encIdentity = CFB(symKey, IV 0, TPM2B_DIGEST(credential)).
  Bytes plain;
  AppendTpm2b(plain, secret);
  Bytes enc_identity(plain.size());
  const uint8_t iv[16] = {};
  EvpCipherCtxPtr cipher(EVP_CIPHER_CTX_new());
  const EVP_CIPHER* cfb =
      sym_bits == 128 ? EVP_aes_128_cfb128() : EVP_aes_256_cfb128();
  int len = 0, final_len = 0;
  if (!cipher ||
      EVP_EncryptInit_ex(cipher.get(), cfb, nullptr, sym_key.data(), iv) != 1 ||
      EVP_EncryptUpdate(cipher.get(), enc_identity.data(), &len, plain.data(),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(cipher.get(), enc_identity.data() + len,
                          &final_len) != 1) {
    return SslError("AES-CFB of the credential");
  }
  // outerHMAC = HMAC(hmacKey, encIdentity || Name) (Part 1, 24.5).
  Bytes hmac_input = enc_identity;
  hmac_input.insert(hmac_input.end(), aik_name.begin(), aik_name.end());
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(HashMd(alg), hmac_key.data(), static_cast<int>(hmac_key.size()),
           hmac_input.data(), hmac_input.size(), mac, &mac_len) == nullptr) {
    return SslError("HMAC of the credential");
  }
  Credential out;
  Bytes id_object;
  AppendTpm2b(id_object, ByteSpan(mac, mac_len));
  id_object.insert(id_object.end(), enc_identity.begin(), enc_identity.end());
  AppendTpm2b(out.credential_blob, id_object);
  AppendTpm2b(out.encrypted_secret, encrypted_seed);
  return out;
}

absl::StatusOr<Bytes> ActivationProof(ByteSpan secret,
                                      absl::string_view agent_id) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(agent_id.data()),
           agent_id.size(), mac, &len) == nullptr) {
    return absl::InternalError("HMAC-SHA256 failed");
  }
  return Bytes(mac, mac + len);
}

absl::StatusOr<Bytes> ActivationProofForKey(ByteSpan secret,
                                            absl::string_view agent_id,
                                            absl::string_view spki_der) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(spki_der.data()),
         spki_der.size(), digest);
  std::string message(agent_id);
  message.push_back('\0');
  message.append(reinterpret_cast<const char*>(digest), sizeof(digest));
  return ActivationProof(secret, message);
}

}  // namespace vouch::core::tpm
