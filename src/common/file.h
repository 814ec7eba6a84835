// File: common/file.h
// Reading whole files whose size is bounded before it is read (config files,
// PEM certificates), and writing one. Thread-safe; no state.
//
//   absl::StatusOr<std::string> text = ReadFileUpTo(path, 1 << 20);
//   if (absl::IsNotFound(text.status())) ...  // could not open
#ifndef VOUCH_COMMON_FILE_H_
#define VOUCH_COMMON_FILE_H_

#include <cstddef>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vouch {

// The file's contents. kNotFound when it cannot be opened; kOutOfRange as
// soon as more than `max_bytes` have been read (the rest is never read);
// kDataLoss on a read error. Messages start with the path.
absl::StatusOr<std::string> ReadFileUpTo(const std::string& path,
                                         size_t max_bytes);

// A PEM file (certificates, keys) of at most 256 KiB. kInvalidArgument
// "cannot read PATH" or "PATH is not a PEM file".
absl::StatusOr<std::string> ReadPemFile(const std::string& path);

// Writes `text` to `path` (created or truncated). kNotFound when it cannot
// be opened, kDataLoss when a write fails; messages start with the path.
absl::Status WriteFile(const std::string& path, absl::string_view text);
// Replaces `path` atomically with `content` (mode `mode`): writes
// PATH.tmp.PID, fsyncs it and renames it over `path`, so readers see the
// old or the new file, never a partial one. kUnavailable on I/O errors.
absl::Status WriteFileAtomic(const std::string& path,
                             const std::string& content, int mode);

// Owns a file descriptor (closed when it goes); move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  // Closes the descriptor held, if any.
  void Reset();

 private:
  int fd_ = -1;
};

}  // namespace vouch

#endif  // VOUCH_COMMON_FILE_H_
