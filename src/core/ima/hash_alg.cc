// The SHA*_Init/Update/Final functions are deprecated in OpenSSL 3 in favour
// of EVP but remain supported for all of 3.x; see hash_alg.h for why.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "core/ima/hash_alg.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cstring>

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

// SHA-1 and SHA-256 of a ‖ b with only OpenSSL's block function
// (SHA*_Transform, the same SHA-NI code): Update/Final copy every byte
// through the context buffer and Final wipes the context, which together
// cost a third as much as the compression on the 40- to 200-byte inputs of
// an IMA replay. Padding per FIPS 180-4 §5.1.1: 0x80, zeros, the bit length
// as a 64-bit big-endian integer.
template <typename Ctx, int (*Init)(Ctx*),
          void (*Transform)(Ctx*, const unsigned char*)>
void Blocks(Ctx* c, const uint8_t* a, size_t a_len, const uint8_t* b,
            size_t b_len) {
  uint8_t block[64];
  size_t fill = 0;
  auto feed = [&](const uint8_t* p, size_t n) {
    if (fill > 0) {
      const size_t take = std::min(n, size_t{64} - fill);
      std::memcpy(block + fill, p, take);
      fill += take;
      p += take;
      n -= take;
      if (fill < 64) return;
      Transform(c, block);
      fill = 0;
    }
    for (; n >= 64; n -= 64, p += 64) Transform(c, p);
    if (n > 0) std::memcpy(block, p, n);
    fill = n;
  };
  Init(c);
  feed(a, a_len);
  if (b_len > 0) feed(b, b_len);
  block[fill++] = 0x80;
  if (fill > 56) {
    std::memset(block + fill, 0, 64 - fill);
    Transform(c, block);
    fill = 0;
  }
  std::memset(block + fill, 0, 56 - fill);
  const uint64_t bits = static_cast<uint64_t>(a_len + b_len) * 8;
  for (int i = 0; i < 8; ++i) {
    block[56 + i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
  }
  Transform(c, block);
}

void PutBe32(uint32_t v, uint8_t* out) {
  out[0] = static_cast<uint8_t>(v >> 24);
  out[1] = static_cast<uint8_t>(v >> 16);
  out[2] = static_cast<uint8_t>(v >> 8);
  out[3] = static_cast<uint8_t>(v);
}

bool Sha1(const uint8_t* a, size_t a_len, const uint8_t* b, size_t b_len,
          uint8_t* out) {
  SHA_CTX c;
  Blocks<SHA_CTX, SHA1_Init, SHA1_Transform>(&c, a, a_len, b, b_len);
  const uint32_t h[5] = {c.h0, c.h1, c.h2, c.h3, c.h4};
  for (int i = 0; i < 5; ++i) PutBe32(h[i], out + 4 * i);
  return true;
}

bool Sha256(const uint8_t* a, size_t a_len, const uint8_t* b, size_t b_len,
            uint8_t* out) {
  SHA256_CTX c;
  Blocks<SHA256_CTX, SHA256_Init, SHA256_Transform>(&c, a, a_len, b, b_len);
  for (int i = 0; i < 8; ++i) PutBe32(c.h[i], out + 4 * i);
  return true;
}
}  // namespace

bool Digester::Digest2(const uint8_t* a, size_t a_len, const uint8_t* b,
                       size_t b_len, uint8_t* out) {
  switch (alg_) {
    case HashAlg::kSha1:
      return Sha1(a, a_len, b, b_len, out);
    case HashAlg::kSha256:
      return Sha256(a, a_len, b, b_len, out);
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
