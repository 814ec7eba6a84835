// Helpers shared by the IMA tests: digests, generated logs with an
// independent replay (one-shot OpenSSL EVP_Digest, not core's Digester),
// and test data files.
#ifndef VOUCH_TESTS_IMA_IMA_TEST_UTIL_H_
#define VOUCH_TESTS_IMA_IMA_TEST_UTIL_H_

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/bytes.h"
#include "common/openssl_handle.h"
#include "core/ima/ima_evaluator.h"
#include "core/ima/ima_log_writer.h"

namespace vouch::core::ima::testing {

inline Bytes Hash(HashAlg alg, absl::string_view data) {
  const EVP_MD* md = alg == HashAlg::kSha1     ? EVP_sha1()
                     : alg == HashAlg::kSha256 ? EVP_sha256()
                     : alg == HashAlg::kSha384 ? EVP_sha384()
                                               : EVP_sha512();
  Bytes out(EVP_MD_get_size(md));
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr);
  return out;
}

inline Bytes FileDigest(int i, HashAlg alg = HashAlg::kSha256) {
  return Hash(alg, absl::StrCat("contents of file ", i));
}

inline std::string DataFile(const std::string& name) {
  std::ifstream in(std::string(VOUCH_TEST_DATA_DIR) + "/" + name,
                   std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// An ima-sig `sig` field: struct signature_v2_hdr (type 3
// EVM_IMA_XATTR_DIGSIG, version 2, kernel hash_algo id, be32 key id, be16
// size; security/integrity/integrity.h) followed by `signature`.
inline std::string ImaSigField(uint8_t kernel_alg, uint32_t key_id,
                               const std::string& signature) {
  const size_t len = signature.size();
  std::string out = {3,
                     2,
                     static_cast<char>(kernel_alg),
                     static_cast<char>(key_id >> 24),
                     static_cast<char>(key_id >> 16),
                     static_cast<char>(key_id >> 8),
                     static_cast<char>(key_id),
                     static_cast<char>(len >> 8),
                     static_cast<char>(len)};
  return out + signature;
}

inline ImaRecord Ng(const std::string& path, const Bytes& digest,
                    HashAlg alg = HashAlg::kSha256) {
  ImaRecord r;
  r.path = path;
  r.digest = digest;
  r.digest_alg = alg;
  return r;
}

// A fresh RSA-2048 or EC P-256 key.
inline EvpPkeyPtr NewKey(bool rsa) {
  return EvpPkeyPtr(rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA",
                                            static_cast<size_t>(2048))
                        : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
}

// An ima-sig `sig` field by `key` over the (pre-hashed) SHA-256 file
// digest; "" when OpenSSL fails (the entry then fails its check).
inline std::string ImaSign(EVP_PKEY* key, const Bytes& digest,
                           uint8_t kernel_alg, uint32_t key_id) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(key, nullptr));
  size_t len = 0;
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
      (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA &&
       EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1) ||
      EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) !=
          1) {
    return "";
  }
  std::string sig(len, '\0');
  if (EVP_PKEY_sign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()),
                    &len, digest.data(), digest.size()) != 1) {
    return "";
  }
  sig.resize(len);
  return ImaSigField(kernel_alg, key_id, sig);
}

// A self-signed DER certificate for `key` (what the kernel measures when a
// key is added to a keyring); with `skid`, its Subject Key Identifier
// extension holds those bytes. "" when OpenSSL fails.
inline std::string CertDer(EVP_PKEY* key, const std::string& skid = "") {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("ima"), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), name);
  if (!skid.empty()) {
    ASN1_OCTET_STRING* id = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(id,
                          reinterpret_cast<const unsigned char*>(skid.data()),
                          static_cast<int>(skid.size()));
    const int added = X509_add1_ext_i2d(cert.get(), NID_subject_key_identifier,
                                        id, 0, X509V3_ADD_DEFAULT);
    ASN1_OCTET_STRING_free(id);
    if (added != 1) return "";
  }
  if (X509_sign(cert.get(), key, EVP_sha256()) <= 0) return "";
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert.get(), &der);
  if (len <= 0) return "";
  std::string out(reinterpret_cast<char*>(der), len);
  OPENSSL_free(der);
  return out;
}

// The ima-buf entry for a key (`buf`) added to `keyring`.
inline ImaRecord KeyringEntry(const std::string& keyring,
                              const std::string& buf) {
  ImaRecord r = Ng(keyring, Hash(HashAlg::kSha256, buf));
  r.tmpl = ImaTemplate::kImaBuf;
  r.extra = buf;
  return r;
}

// An ima-sig entry for file `n` (FileDigest(n)) with signature field `sig`.
inline ImaRecord SignedEntry(const std::string& path, int n, std::string sig) {
  ImaRecord r = Ng(path, FileDigest(n));
  r.tmpl = ImaTemplate::kImaSig;
  r.extra = std::move(sig);
  return r;
}

inline std::string WriteLog(const std::vector<ImaRecord>& records,
                            LogFormat format,
                            HashAlg template_alg = HashAlg::kSha1) {
  ImaLogWriter w(template_alg);
  std::string out;
  for (const ImaRecord& r : records) w.Append(r, &out, format);
  return out;
}

// PCR 10 after each prefix (index k = after k entries), computed
// independently of core: bank hash of the template data, 0xFF for
// violations.
struct Pcrs {
  std::vector<std::array<uint8_t, 20>> sha1;
  std::vector<std::array<uint8_t, 32>> sha256;
};
inline Pcrs ReplayPrefixes(const std::vector<ImaRecord>& records) {
  Pcrs p;
  std::array<uint8_t, 20> s1{};
  std::array<uint8_t, 32> s256{};
  p.sha1.push_back(s1);
  p.sha256.push_back(s256);
  for (const ImaRecord& r : records) {
    std::string td = BuildTemplateData(r);
    Bytes h1 = r.violation ? Bytes(20, 0xff) : Hash(HashAlg::kSha1, td);
    Bytes h256 = r.violation ? Bytes(32, 0xff) : Hash(HashAlg::kSha256, td);
    Bytes n1 = Hash(HashAlg::kSha1, absl::StrCat(AsString(s1), AsString(h1)));
    Bytes n256 =
        Hash(HashAlg::kSha256, absl::StrCat(AsString(s256), AsString(h256)));
    std::copy(n1.begin(), n1.end(), s1.begin());
    std::copy(n256.begin(), n256.end(), s256.begin());
    p.sha1.push_back(s1);
    p.sha256.push_back(s256);
  }
  return p;
}

inline QuotedPcr10 QuoteAt(const Pcrs& p, size_t k, bool sha1 = true,
                           bool sha256 = true) {
  QuotedPcr10 q;
  if (sha1) q.sha1 = p.sha1[k];
  if (sha256) q.sha256 = p.sha256[k];
  return q;
}

// A policy JSON for `digests` (path -> hex list) and `excludes`.
inline std::string PolicyJson(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& d,
    const std::vector<std::string>& excludes = {},
    const std::string& extra = "") {
  std::string s = R"({"meta": {"version": 1}, "release": 0, "digests": {)";
  for (size_t i = 0; i < d.size(); ++i) {
    absl::StrAppend(&s, i ? ", " : "", "\"", d[i].first, "\": [");
    for (size_t k = 0; k < d[i].second.size(); ++k) {
      absl::StrAppend(&s, k ? ", " : "", "\"", d[i].second[k], "\"");
    }
    s += "]";
  }
  s += "}, \"excludes\": [";
  for (size_t i = 0; i < excludes.size(); ++i) {
    absl::StrAppend(&s, i ? ", " : "", "\"", excludes[i], "\"");
  }
  s += "]";
  s += extra;
  s += "}";
  return s;
}

}  // namespace vouch::core::ima::testing

#endif  // VOUCH_TESTS_IMA_IMA_TEST_UTIL_H_
