// The SHA*_Init/Update/Final functions are deprecated in OpenSSL 3 in favour
// of EVP but remain supported for all of 3.x; see hash_alg.h for why.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "core/ima/hash_alg.h"

#include <openssl/sha.h>

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

Digester::Digester(HashAlg alg) : alg_(alg), size_(DigestSize(alg)) {}

namespace {
template <typename Ctx, int (*Init)(Ctx*),
          int (*Update)(Ctx*, const void*, size_t),
          int (*Final)(unsigned char*, Ctx*)>
bool Run(const uint8_t* a, size_t a_len, const uint8_t* b, size_t b_len,
         uint8_t* out) {
  Ctx c;
  bool ok = Init(&c) == 1 && Update(&c, a, a_len) == 1 &&
            (b_len == 0 || Update(&c, b, b_len) == 1) && Final(out, &c) == 1;
  return ok;
}
}  // namespace

bool Digester::Digest2(const uint8_t* a, size_t a_len, const uint8_t* b,
                       size_t b_len, uint8_t* out) {
  switch (alg_) {
    case HashAlg::kSha1:
      return Run<SHA_CTX, SHA1_Init, SHA1_Update, SHA1_Final>(a, a_len, b,
                                                              b_len, out);
    case HashAlg::kSha256:
      return Run<SHA256_CTX, SHA256_Init, SHA256_Update, SHA256_Final>(
          a, a_len, b, b_len, out);
    case HashAlg::kSha384:
      return Run<SHA512_CTX, SHA384_Init, SHA384_Update, SHA384_Final>(
          a, a_len, b, b_len, out);
    case HashAlg::kSha512:
      return Run<SHA512_CTX, SHA512_Init, SHA512_Update, SHA512_Final>(
          a, a_len, b, b_len, out);
  }
  return false;
}

bool Digester::Digest(absl::string_view data, uint8_t* out) {
  return Digest2(reinterpret_cast<const uint8_t*>(data.data()), data.size(),
                 nullptr, 0, out);
}

}  // namespace vouch::core::ima
