#include "agent/ima_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/file.h"

namespace vouch::agent {
namespace {

uint32_t Le32(const std::string& d, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(d[at])) |
         static_cast<uint32_t>(static_cast<uint8_t>(d[at + 1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(d[at + 2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(d[at + 3])) << 24;
}

constexpr size_t kMaxEntryBytes = 8 << 20;

}  // namespace

int64_t ImaSource::EntryLength(const std::string& d, size_t at, bool binary) {
  const size_t left = d.size() - at;
  if (!binary) {
    const size_t nl = d.find('\n', at);
    if (nl == std::string::npos) return left > kMaxEntryBytes ? -1 : 0;
    return static_cast<int64_t>(nl + 1 - at);
  }
  // Kernel ima_fs.c, canonical little-endian: PCR, SHA-1 template hash,
  // name length and name, then (except for template "ima") data length and
  // data.
  if (left < 28) return 0;
  const uint32_t name_len = Le32(d, at + 24);
  if (name_len == 0 || name_len > 255) return -1;
  size_t pos = 28 + name_len;
  if (left < pos) return 0;
  const bool legacy = d.compare(at + 28, name_len, "ima") == 0 && name_len == 3;
  if (legacy) {
    pos += 20 + 4;  // SHA-1 file digest, then the name length and name.
    if (left < pos) return 0;
    const uint32_t n = Le32(d, at + pos - 4);
    if (n > 4096) return -1;
    pos += n;
  } else {
    if (left < pos + 4) return 0;
    const uint32_t n = Le32(d, at + pos);
    if (n > kMaxEntryBytes) return -1;
    pos += 4 + n;
  }
  return left < pos ? 0 : static_cast<int64_t>(pos);
}

absl::StatusOr<ImaChunk> ImaSource::Read(uint64_t from, size_t max_bytes,
                                         size_t max_entries) {
  UniqueFd f(open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.get() < 0) {
    return errno == ENOENT
               ? absl::NotFoundError(absl::StrCat(path_, ": no such file"))
               : absl::UnavailableError(
                     absl::StrCat(path_, ": ", std::strerror(errno)));
  }
  struct stat st {};
  const bool regular = fstat(f.get(), &st) == 0 && S_ISREG(st.st_mode);
  // A shorter regular file was replaced (a new boot in a demo): forget it.
  if (regular && !starts_.empty() &&
      starts_.rbegin()->second > static_cast<uint64_t>(st.st_size)) {
    starts_.clear();
  }
  uint64_t index = 0;
  uint64_t offset = 0;
  auto it = starts_.upper_bound(from);
  if (it != starts_.begin()) {
    --it;
    index = it->first;
    offset = it->second;
  }
  ImaChunk chunk;
  std::string buf;
  uint64_t buf_offset = offset;  // File offset of buf[0].
  size_t at = 0;
  bool eof = false;
  auto fill = [&]() -> absl::Status {
    if (at > 0) {
      buf.erase(0, at);
      buf_offset += at;
      at = 0;
    }
    char block[1 << 16];
    const ssize_t n = pread(f.get(), block, sizeof(block),
                            static_cast<off_t>(buf_offset + buf.size()));
    if (n < 0) {
      return absl::UnavailableError(
          absl::StrCat(path_, ": ", std::strerror(errno)));
    }
    if (n == 0) eof = true;
    buf.append(block, static_cast<size_t>(n));
    return absl::OkStatus();
  };
  if (!format_known_) {
    while (!eof && buf.size() < 4) {
      if (absl::Status s = fill(); !s.ok()) return s;
    }
    if (buf.size() < 4) {  // Empty list (or a partial first record).
      if (buf.empty()) starts_[0] = 0;
      return chunk;
    }
    // Binary starts with PCR index 10 as u32 LE; ASCII with "10 ".
    binary_ = buf[1] == '\0';
    format_known_ = true;
  }
  chunk.binary = binary_;
  while (true) {
    const int64_t len = EntryLength(buf, at, binary_);
    if (len < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": malformed entry ", index));
    }
    if (len == 0) {
      if (eof) break;
      if (absl::Status s = fill(); !s.ok()) return s;
      continue;
    }
    if (index >= from) {
      if (chunk.entries >= max_entries ||
          chunk.data.size() + static_cast<size_t>(len) > max_bytes) {
        chunk.truncated = true;
        break;
      }
      if (chunk.entries == 0) starts_[index] = buf_offset + at;
      chunk.data.append(buf, at, static_cast<size_t>(len));
      ++chunk.entries;
    }
    at += static_cast<size_t>(len);
    ++index;
  }
  starts_[index] = buf_offset + at;
  while (starts_.size() > 64) starts_.erase(starts_.begin());
  return chunk;
}

bool ImaSource::MayHaveEntriesFrom(uint64_t index) {
  auto it = starts_.find(index);
  if (it == starts_.end()) return true;
  struct stat st {};
  if (stat(path_.c_str(), &st) != 0) return false;
  if (S_ISREG(st.st_mode)) {
    return static_cast<uint64_t>(st.st_size) != it->second;
  }
  UniqueFd f(open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.get() < 0) return false;
  char c;
  return pread(f.get(), &c, 1, static_cast<off_t>(it->second)) == 1;
}

}  // namespace vouch::agent
