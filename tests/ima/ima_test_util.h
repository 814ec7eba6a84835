// Helpers shared by the IMA tests: digests, generated logs with an
// independent replay (one-shot OpenSSL EVP_Digest, not core's Digester),
// and test data files.
#ifndef VOUCH_TESTS_IMA_IMA_TEST_UTIL_H_
#define VOUCH_TESTS_IMA_IMA_TEST_UTIL_H_

#include <openssl/evp.h>

#include <array>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/bytes.h"
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
