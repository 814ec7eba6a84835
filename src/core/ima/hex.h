// File: core/ima/hex.h
// Fast hex decoding for digests on the per-entry path (SSE2 on x86-64, a
// table elsewhere); vouch::HexDecode is the general, allocating version.
// Input is untrusted; pure and thread-safe.
#ifndef VOUCH_CORE_IMA_HEX_H_
#define VOUCH_CORE_IMA_HEX_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace vouch::core::ima {

// Decodes hex.size()/2 bytes (hex.size() even, either case, no "0x") into
// `out`. False if any character is not a hex digit.
bool DecodeHex(absl::string_view hex, uint8_t* out);

}  // namespace vouch::core::ima

#endif  // VOUCH_CORE_IMA_HEX_H_
