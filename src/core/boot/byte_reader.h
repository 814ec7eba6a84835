// File: core/boot/byte_reader.h
// A bounds-checked little-endian cursor over untrusted bytes, used by the
// event log and EFI structure decoders of this folder (internal; not part of
// the vouch::core_boot API). Every read either succeeds within the buffer or
// fails without moving; nothing allocates from a length field before the
// bytes it claims are known to be present. Pure; not synchronised.
#ifndef VOUCH_CORE_BOOT_BYTE_READER_H_
#define VOUCH_CORE_BOOT_BYTE_READER_H_

#include <cstddef>
#include <cstdint>

#include "common/bytes.h"

namespace vouch::core::boot {

class ByteReader {
 public:
  explicit ByteReader(ByteSpan data) : data_(data) {}

  size_t offset() const { return offset_; }
  size_t remaining() const { return data_.size() - offset_; }
  bool empty() const { return remaining() == 0; }

  // Each returns false (and leaves the cursor where it was) when fewer bytes
  // remain than the read needs.
  bool ReadU8(uint8_t& out) { return ReadLe(1, out); }
  bool ReadU16(uint16_t& out) { return ReadLe(2, out); }
  bool ReadU32(uint32_t& out) { return ReadLe(4, out); }
  bool ReadU64(uint64_t& out) { return ReadLe(8, out); }
  // A view of the next `n` bytes (n may come from the input: it is compared
  // with what remains before anything else happens).
  bool ReadSpan(uint64_t n, ByteSpan& out) {
    if (n > remaining()) return false;
    out = data_.subspan(offset_, static_cast<size_t>(n));
    offset_ += static_cast<size_t>(n);
    return true;
  }
  bool Skip(uint64_t n) {
    ByteSpan ignored;
    return ReadSpan(n, ignored);
  }
  ByteSpan Rest() const { return data_.subspan(offset_); }

 private:
  template <typename T>
  bool ReadLe(size_t n, T& out) {
    if (n > remaining()) return false;
    T value = 0;
    for (size_t i = 0; i < n; ++i) {
      value |= static_cast<T>(static_cast<T>(data_[offset_ + i]) << (8 * i));
    }
    out = value;
    offset_ += n;
    return true;
  }

  ByteSpan data_;
  size_t offset_ = 0;
};

}  // namespace vouch::core::boot

#endif  // VOUCH_CORE_BOOT_BYTE_READER_H_
