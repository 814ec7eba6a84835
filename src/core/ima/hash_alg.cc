#include "core/ima/hash_alg.h"

namespace vouch::core::ima {

size_t DigestSize(HashAlg alg) {
  switch (alg) {
    case HashAlg::kSha1:
      return 20;
    case HashAlg::kSha256:
      return 32;
    case HashAlg::kSha384:
      return 48;
    case HashAlg::kSha512:
      return 64;
  }
  return 0;
}

absl::string_view HashAlgName(HashAlg alg) {
  switch (alg) {
    case HashAlg::kSha1:
      return "sha1";
    case HashAlg::kSha256:
      return "sha256";
    case HashAlg::kSha384:
      return "sha384";
    case HashAlg::kSha512:
      return "sha512";
  }
  return "unknown";
}

std::optional<HashAlg> HashAlgFromName(absl::string_view name) {
  if (name == "sha1") return HashAlg::kSha1;
  if (name == "sha256") return HashAlg::kSha256;
  if (name == "sha384") return HashAlg::kSha384;
  if (name == "sha512") return HashAlg::kSha512;
  return std::nullopt;
}

std::optional<HashAlg> HashAlgFromSize(size_t size) {
  switch (size) {
    case 20:
      return HashAlg::kSha1;
    case 32:
      return HashAlg::kSha256;
    case 48:
      return HashAlg::kSha384;
    case 64:
      return HashAlg::kSha512;
    default:
      return std::nullopt;
  }
}

std::optional<HashAlg> HashAlgFromKernelId(uint8_t id) {
  switch (id) {
    case 2:
      return HashAlg::kSha1;
    case 4:
      return HashAlg::kSha256;
    case 5:
      return HashAlg::kSha384;
    case 6:
      return HashAlg::kSha512;
    default:
      return std::nullopt;
  }
}

namespace {
const char* EvpName(HashAlg alg) {
  switch (alg) {
    case HashAlg::kSha1:
      return "SHA1";
    case HashAlg::kSha256:
      return "SHA2-256";
    case HashAlg::kSha384:
      return "SHA2-384";
    case HashAlg::kSha512:
      return "SHA2-512";
  }
  return "";
}
}  // namespace

Digester::Digester(HashAlg alg)
    : alg_(alg),
      size_(DigestSize(alg)),
      md_(EVP_MD_fetch(nullptr, EvpName(alg), nullptr)),
      ctx_(EVP_MD_CTX_new()) {}

bool Digester::Digest(absl::string_view data, uint8_t* out) {
  if (!md_ || !ctx_) return false;
  return EVP_DigestInit_ex2(ctx_.get(), md_.get(), nullptr) == 1 &&
         EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) == 1 &&
         EVP_DigestFinal_ex(ctx_.get(), out, nullptr) == 1;
}

bool Digester::Digest2(const uint8_t* a, size_t a_len, const uint8_t* b,
                       size_t b_len, uint8_t* out) {
  if (!md_ || !ctx_) return false;
  return EVP_DigestInit_ex2(ctx_.get(), md_.get(), nullptr) == 1 &&
         EVP_DigestUpdate(ctx_.get(), a, a_len) == 1 &&
         EVP_DigestUpdate(ctx_.get(), b, b_len) == 1 &&
         EVP_DigestFinal_ex(ctx_.get(), out, nullptr) == 1;
}

}  // namespace vouch::core::ima
