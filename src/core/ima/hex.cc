#include "core/ima/hex.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace vouch::core::ima {
namespace {

constexpr int8_t kNotHex = -1;
struct HexTable {
  int8_t v[256];
  constexpr HexTable() : v() {
    for (int i = 0; i < 256; ++i) v[i] = kNotHex;
    for (int i = 0; i < 10; ++i) v['0' + i] = static_cast<int8_t>(i);
    for (int i = 0; i < 6; ++i) {
      v['a' + i] = static_cast<int8_t>(10 + i);
      v['A' + i] = static_cast<int8_t>(10 + i);
    }
  }
};
constexpr HexTable kHex;

#if defined(__SSE2__)
// 16 hex characters -> 8 bytes with SSE2 (baseline on x86-64). False if any
// character is not [0-9a-fA-F]; bytes >= 0x80 compare as negative and fail.
inline bool DecodeHex16(const unsigned char* p, uint8_t* out) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
  const __m128i is_digit =
      _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                    _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
  const __m128i is_letter =
      _mm_and_si128(_mm_cmpgt_epi8(lower, _mm_set1_epi8('a' - 1)),
                    _mm_cmplt_epi8(lower, _mm_set1_epi8('f' + 1)));
  if (_mm_movemask_epi8(_mm_or_si128(is_digit, is_letter)) != 0xffff) {
    return false;
  }
  const __m128i nibbles = _mm_or_si128(
      _mm_and_si128(is_digit, _mm_sub_epi8(v, _mm_set1_epi8('0'))),
      _mm_and_si128(is_letter, _mm_sub_epi8(lower, _mm_set1_epi8('a' - 10))));
  // Each 16-bit lane holds (first char, second char) = (high, low nibble).
  const __m128i bytes = _mm_or_si128(
      _mm_slli_epi16(_mm_and_si128(nibbles, _mm_set1_epi16(0x00ff)), 4),
      _mm_srli_epi16(nibbles, 8));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out),
                   _mm_packus_epi16(bytes, bytes));
  return true;
}
#endif

}  // namespace

bool DecodeHex(absl::string_view hex, uint8_t* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(hex.data());
  size_t n = hex.size() / 2;
  size_t i = 0;
#if defined(__SSE2__)
  for (; i + 8 <= n; i += 8) {
    if (!DecodeHex16(p + 2 * i, out + i)) return false;
  }
#endif
  int bad = 0;
  for (; i < n; ++i) {
    int hi = kHex.v[p[2 * i]];
    int lo = kHex.v[p[2 * i + 1]];
    bad |= hi | lo;  // kNotHex is negative: sets the sign bit.
    out[i] = static_cast<uint8_t>((static_cast<unsigned>(hi) << 4) |
                                  (static_cast<unsigned>(lo) & 0xf));
  }
  return bad >= 0;
}

}  // namespace vouch::core::ima
