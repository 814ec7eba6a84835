#include "core/ima/learned_keys.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/bytes.h"
#include "common/openssl_handle.h"
#include "core/ima/ima_signature.h"

namespace vouch::core::ima {

namespace {

std::optional<std::string> Spki(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) {
    DrainOpenSslErrors();
    return std::nullopt;
  }
  std::string out(reinterpret_cast<const char*>(der), len);
  OPENSSL_free(der);
  return out;
}

bool SignsIma(EVP_PKEY* key) {
  const int id = EVP_PKEY_get_base_id(key);
  return id == EVP_PKEY_RSA || id == EVP_PKEY_EC;
}

// The whole buffer must be the DER object: no trailing bytes.
X509Ptr WholeCert(absl::string_view buf) {
  const auto* p = reinterpret_cast<const unsigned char*>(buf.data());
  const unsigned char* q = p;
  X509Ptr cert(d2i_X509(nullptr, &q, static_cast<long>(buf.size())));
  if (q != p + buf.size()) cert.reset();
  return cert;
}

EvpPkeyPtr WholeKey(absl::string_view buf) {
  const auto* p = reinterpret_cast<const unsigned char*>(buf.data());
  const unsigned char* q = p;
  EvpPkeyPtr key(d2i_PUBKEY(nullptr, &q, static_cast<long>(buf.size())));
  if (q != p + buf.size()) key.reset();
  return key;
}

}  // namespace

KeyringBuffer ParseKeyringBuffer(absl::string_view buf) {
  KeyringBuffer out;
  EvpPkeyPtr key;
  std::optional<uint32_t> skid;
  X509Ptr cert = WholeCert(buf);
  if (cert) {
    out.is_key = true;
    key.reset(X509_get_pubkey(cert.get()));
    const ASN1_OCTET_STRING* id = X509_get0_subject_key_id(cert.get());
    if (id != nullptr && ASN1_STRING_length(id) >= 4) {
      const unsigned char* b = ASN1_STRING_get0_data(id);
      const int n = ASN1_STRING_length(id);
      skid = LoadBigEndian32(b + n - 4);
    }
  } else {
    key = WholeKey(buf);
    out.is_key = key != nullptr;
  }
  if (key && SignsIma(key.get())) {
    std::optional<std::string> spki = Spki(key.get());
    absl::StatusOr<uint32_t> computed = ImaKeyIdV2(key.get());
    if (spki && spki->size() <= kMaxLearnedKeyBytes && computed.ok()) {
      out.key = LearnedKey{skid.value_or(*computed), *std::move(spki)};
    }
  }
  DrainOpenSslErrors();
  return out;
}

std::string EncodeLearnedKeys(const std::vector<LearnedKey>& keys) {
  std::string out;
  for (const LearnedKey& k : keys) {
    const uint32_t id = k.key_id;
    const size_t n = k.spki.size();
    const char head[6] = {
        static_cast<char>(id >> 24), static_cast<char>(id >> 16),
        static_cast<char>(id >> 8),  static_cast<char>(id),
        static_cast<char>(n >> 8),   static_cast<char>(n)};
    out.append(head, sizeof head);
    out.append(k.spki);
  }
  return out;
}

absl::StatusOr<std::vector<LearnedKey>> DecodeLearnedKeys(
    absl::string_view stored) {
  std::vector<LearnedKey> out;
  const auto* p = reinterpret_cast<const uint8_t*>(stored.data());
  size_t at = 0;
  while (at < stored.size()) {
    if (out.size() == kMaxLearnedKeys) {
      return absl::InvalidArgumentError(
          absl::StrCat("learned keys: more than ", kMaxLearnedKeys));
    }
    if (stored.size() - at < 6) {
      return absl::InvalidArgumentError("learned keys: truncated header");
    }
    LearnedKey k;
    k.key_id = LoadBigEndian32(p + at);
    const size_t n = LoadBigEndian16(p + at + 4);
    at += 6;
    if (n == 0 || n > kMaxLearnedKeyBytes || stored.size() - at < n) {
      return absl::InvalidArgumentError(
          absl::StrCat("learned keys: key ", out.size(), " has a bad length"));
    }
    k.spki = std::string(stored.substr(at, n));
    at += n;
    EvpPkeyPtr key = WholeKey(k.spki);
    DrainOpenSslErrors();
    if (!key || !SignsIma(key.get())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "learned keys: key ", out.size(), " is not an RSA or EC key"));
    }
    out.push_back(std::move(k));
  }
  return out;
}

absl::StatusOr<VerificationKey> ToVerificationKey(const LearnedKey& key) {
  VerificationKey vk;
  vk.keyring = "learned";
  vk.key_id = key.key_id;
  vk.key = WholeKey(key.spki);
  if (!vk.key) {
    return absl::InvalidArgumentError("learned key: not a public key: " +
                                      DrainOpenSslErrors());
  }
  return vk;
}

}  // namespace vouch::core::ima
