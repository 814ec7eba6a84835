// File: agent/ima_source.h
// Reads the IMA measurement list the agent pushes: the kernel's securityfs
// file (binary_runtime_measurements by default) or any file in the kernel's
// ASCII or binary format (tests and demos). It reads whole entries from a
// given entry index, bounded per chunk, and remembers where entries start so
// a push reads only what is new. The file is trusted as much as the kernel;
// the verifier proves it against PCR 10 anyway. Not thread-safe.
//
//   ImaSource ima("/sys/kernel/security/ima/binary_runtime_measurements");
//   VOUCH_ASSIGN_OR_RETURN(ImaChunk c, ima.Read(from, 4 << 20, 100000));
#ifndef VOUCH_AGENT_IMA_SOURCE_H_
#define VOUCH_AGENT_IMA_SOURCE_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace vouch::agent {

struct ImaChunk {
  bool binary = true;  // Else the kernel's ASCII format.
  std::string data;    // Whole entries only.
  uint64_t entries = 0;
  bool truncated = false;  // Stopped at a bound with more entries left.
};

class ImaSource {
 public:
  explicit ImaSource(std::string path) : path_(std::move(path)) {}

  // Entries from index `from` on, at most `max_bytes` and `max_entries`.
  // An empty chunk when the list has no entry `from` yet. kNotFound when the
  // file does not exist, kInvalidArgument for a malformed record.
  absl::StatusOr<ImaChunk> Read(uint64_t from, size_t max_bytes,
                                size_t max_entries);
  // True when the list may hold entries at or past `index` (a cheap check
  // for the 200 ms poll; true when unsure).
  bool MayHaveEntriesFrom(uint64_t index);

 private:
  // Length of the entry at data[0..], 0 when incomplete; <0 malformed.
  static int64_t EntryLength(const std::string& data, size_t at, bool binary);

  std::string path_;
  // Known entry starts: index -> byte offset (a few recent ones).
  std::map<uint64_t, uint64_t> starts_;
  bool binary_ = true;
  bool format_known_ = false;
};

}  // namespace vouch::agent

#endif  // VOUCH_AGENT_IMA_SOURCE_H_
