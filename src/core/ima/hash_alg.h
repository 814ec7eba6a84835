// File: core/ima/hash_alg.h
// Hash algorithms IMA uses (file digests, template hashes, PCR banks) and a
// allocation-free digester over OpenSSL libcrypto. Pure and thread-safe
// (a Digester holds no state between calls).
//
//   Digester sha1(HashAlg::kSha1);
//   uint8_t out[kMaxDigestSize]; sha1.Digest(data, out);
#ifndef VOUCH_CORE_IMA_HASH_ALG_H_
#define VOUCH_CORE_IMA_HASH_ALG_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"

namespace vouch::core::ima {

enum class HashAlg : uint8_t { kSha1 = 1, kSha256, kSha384, kSha512 };

inline constexpr size_t kMaxDigestSize = 64;

size_t DigestSize(HashAlg alg);
// "sha1", "sha256", "sha384", "sha512" (the names IMA prints).
absl::string_view HashAlgName(HashAlg alg);
// Parses the names above; nullopt for anything else (sm3, md5, ...).
std::optional<HashAlg> HashAlgFromName(absl::string_view name);
// The algorithm whose digest is `size` bytes, if exactly one is.
std::optional<HashAlg> HashAlgFromSize(size_t size);
// Linux `enum hash_algo` (include/uapi/linux/hash_info.h), used in IMA
// signature headers: 2 sha1, 4 sha256, 5 sha384, 6 sha512.
std::optional<HashAlg> HashAlgFromKernelId(uint8_t id);

// Digests on the per-entry path with no allocation. OpenSSL 3's EVP layer
// frees and re-creates the provider context on every EVP_DigestInit_ex2
// (measured here: 241 ns for a 100-byte SHA-1 vs 131 ns), so this calls
// libcrypto's one-shot SHA1/SHA256/SHA384/SHA512 context functions, which
// run the same assembly (SHA-NI where the CPU has it). Cheap to create.
class Digester {
 public:
  explicit Digester(HashAlg alg);

  HashAlg alg() const { return alg_; }
  size_t size() const { return size_; }
  // Writes size() bytes to `out`. Returns false only if OpenSSL fails.
  bool Digest(absl::string_view data, uint8_t* out);
  // out = H(a || b) (a PCR extend).
  bool Digest2(const uint8_t* a, size_t a_len, const uint8_t* b, size_t b_len,
               uint8_t* out);

 private:
  HashAlg alg_;
  size_t size_;
};

}  // namespace vouch::core::ima

#endif  // VOUCH_CORE_IMA_HASH_ALG_H_
