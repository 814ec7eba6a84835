// File: common/bytes.h
// Byte buffers and hex conversion. HexDecode accepts untrusted text and never
// crashes on it; everything here is pure and thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(Bytes digest, HexDecode("a1b2"));
//   std::string text = HexEncode(digest);  // "a1b2"
#ifndef VOUCH_COMMON_BYTES_H_
#define VOUCH_COMMON_BYTES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace vouch {

using Bytes = std::vector<uint8_t>;
using ByteSpan = absl::Span<const uint8_t>;

// Lower-case hex, no separators, no "0x".
std::string HexEncode(ByteSpan bytes);
inline std::string HexEncode(absl::string_view bytes) {
  return HexEncode(
      ByteSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

// Decodes hex (either case). An optional leading "0x" is accepted. Odd length
// or a non-hex character is kInvalidArgument naming the offending position.
absl::StatusOr<Bytes> HexDecode(absl::string_view hex);

// Views a byte buffer as characters and back, without copying semantics
// surprises (protobuf `bytes` fields are std::string).
inline ByteSpan AsBytes(absl::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline absl::string_view AsString(ByteSpan b) {
  return absl::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}
inline Bytes ToBytes(absl::string_view s) { return Bytes(s.begin(), s.end()); }

// Compares in time that depends only on the lengths, for secrets (HMACs,
// credential answers). Unequal lengths compare unequal.
bool ConstantTimeEquals(ByteSpan a, ByteSpan b);

// The big-endian integer in the 4 (or 2) bytes at `p`; the caller checks
// that they are there.
inline uint32_t LoadBigEndian32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) |
         (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
inline uint16_t LoadBigEndian16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

// The SHA-256 digest of `data`, 32 raw bytes.
std::string Sha256(absl::string_view data);

}  // namespace vouch

#endif  // VOUCH_COMMON_BYTES_H_
