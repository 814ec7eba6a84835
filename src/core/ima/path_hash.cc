#include "core/ima/path_hash.h"

#include <cstring>

namespace vouch::core::ima {
namespace {

inline uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline uint64_t Load64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct State {
  uint64_t v0, v1, v2, v3;
  inline void Round() {
    v0 += v1;
    v1 = Rotl(v1, 13);
    v1 ^= v0;
    v0 = Rotl(v0, 32);
    v2 += v3;
    v3 = Rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = Rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = Rotl(v1, 17);
    v1 ^= v2;
    v2 = Rotl(v2, 32);
  }
};

}  // namespace

PathHash SipHash128(const PathHashKey& key, absl::string_view data) {
  const uint64_t k0 = Load64(key.data());
  const uint64_t k1 = Load64(key.data() + 8);
  State s{k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
          k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
  s.v1 ^= 0xee;  // 128-bit output variant.
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  const size_t n = data.size();
  const size_t full = n & ~static_cast<size_t>(7);
  for (size_t i = 0; i < full; i += 8) {
    uint64_t m;
    std::memcpy(&m, p + i, 8);  // Little-endian hosts only (see README).
    s.v3 ^= m;
    s.Round();
    s.v0 ^= m;
  }
  uint64_t b = static_cast<uint64_t>(n) << 56;
  for (size_t i = 0; i < (n & 7); ++i) {
    b |= static_cast<uint64_t>(p[full + i]) << (8 * i);
  }
  s.v3 ^= b;
  s.Round();
  s.v0 ^= b;
  s.v2 ^= 0xee;
  for (int i = 0; i < 3; ++i) s.Round();
  PathHash out;
  out.h0 = s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
  s.v1 ^= 0xdd;
  for (int i = 0; i < 3; ++i) s.Round();
  out.h1 = s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
  return out;
}

}  // namespace vouch::core::ima
