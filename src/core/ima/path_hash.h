// File: core/ima/path_hash.h
// Keyed 128-bit hash of a path (SipHash-1-3 with 128-bit output, Aumasson &
// Bernstein 2012, "SipHash: a fast short-input PRF", §2 with one compression
// and three finalization rounds, and the 128-bit variant of the reference
// implementation). The policy table stores this hash instead of the path;
// with a secret key an agent cannot craft a path that collides with a policy
// path. SipHash-1-3 is the variant Rust's and CPython's hash tables use
// against crafted collisions; here the key is per process and no hash value
// ever leaves it, and it halves the cost of the 2-4 variant on a 60-byte
// path (every log entry is hashed once). Pure and thread-safe.
#ifndef VOUCH_CORE_IMA_PATH_HASH_H_
#define VOUCH_CORE_IMA_PATH_HASH_H_

#include <array>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace vouch::core::ima {

using PathHashKey = std::array<uint8_t, 16>;

struct PathHash {
  uint64_t h0 = 0;
  uint64_t h1 = 0;
  bool operator==(const PathHash& o) const { return h0 == o.h0 && h1 == o.h1; }
};

// SipHash-1-3-128 of `data` under `key`; h0/h1 are the two output words
// (little-endian bytes 0..7 and 8..15 of the reference output).
PathHash SipHash128(const PathHashKey& key, absl::string_view data);

}  // namespace vouch::core::ima

#endif  // VOUCH_CORE_IMA_PATH_HASH_H_
