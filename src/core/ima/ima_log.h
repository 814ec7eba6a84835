// File: core/ima/ima_log.h
// Parser for the kernel's IMA measurement list, ASCII and binary, templates
// ima, ima-ng, ima-sig and ima-buf. Input is untrusted (it comes from the
// agent): every length is bounded, nothing is allocated from a length field,
// errors name the entry index and byte offset. Parsing proves nothing: the
// replay (ima_evaluator.h) checks template hashes and PCR 10. Not
// thread-safe per parser; entries are views into the caller's buffer.
#ifndef VOUCH_CORE_IMA_IMA_LOG_H_
#define VOUCH_CORE_IMA_IMA_LOG_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/ima/hash_alg.h"

namespace vouch::core::ima {

enum class LogFormat : uint8_t { kAscii, kBinary };
enum class ImaTemplate : uint8_t { kIma, kImaNg, kImaSig, kImaBuf };

absl::string_view TemplateName(ImaTemplate t);

// Bounds on hostile input. A template's data (path + signature/buffer) may
// not exceed kMaxTemplateDataSize; a legacy `ima` name is at most 255 bytes
// (TCG_EVENT_NAME_LEN_MAX in the kernel).
inline constexpr size_t kMaxTemplateDataSize = 16u << 20;
inline constexpr size_t kMaxTemplateNameSize = 32;
inline constexpr size_t kImaLegacyNameMax = 255;

// One measurement, as views into the parsed buffer (or the parser's scratch
// for data it had to rebuild). Valid until the next call to Next().
struct ImaEntry {
  uint64_t index = 0;  // 0-based position in the whole measurement list.
  size_t offset = 0;   // Byte offset of the entry in the parsed buffer.
  uint32_t pcr = 0;
  ImaTemplate tmpl = ImaTemplate::kImaNg;
  HashAlg template_hash_alg = HashAlg::kSha1;
  uint8_t template_hash[kMaxDigestSize] = {};
  // All-zero template hash: a ToMToU / open-writers violation; the kernel
  // extends PCR 10 with all-0xFF instead (ima_main.c, ima_add_violation).
  bool violation = false;
  HashAlg digest_alg = HashAlg::kSha1;
  uint8_t digest[kMaxDigestSize] = {};
  size_t digest_size = 0;
  // Raw bytes; may hold spaces and bytes that are not UTF-8. No trailing NUL.
  absl::string_view path;
  // ima-sig: the signature (may be empty); ima-buf: the buffer. Raw bytes.
  absl::string_view extra;
  // The template data exactly as the kernel hashed it (Documentation/
  // security/IMA-templates.rst: each field is <u32 len><data>, except the
  // legacy `ima` template: 20-byte digest + name NUL-padded to 256 bytes).
  absl::string_view template_data;
};

// kContentOnly skips what only the integrity pass needs (decoding the
// template hash, rebuilding template data): template_hash and
// template_data are then left empty; `violation` is still set.
enum class ParseMode : uint8_t { kFull, kContentOnly };

class ImaLogParser {
 public:
  // `data` starts at the entry numbered `first_index` and must outlive the
  // parser. The format is detected from the first bytes (binary entries start
  // with a little-endian PCR index, ASCII ones with decimal digits). For
  // binary logs the template-hash size (20 bytes, or 32/48/64 for the
  // per-bank files `binary_runtime_measurements_sha256`…) is detected from
  // the first entry unless `binary_hash_alg` says it.
  ImaLogParser(absl::string_view data, uint64_t first_index = 0,
               std::optional<HashAlg> binary_hash_alg = std::nullopt,
               ParseMode mode = ParseMode::kFull);

  LogFormat format() const { return format_; }
  // Parses the next entry into `*entry`. Returns false at the end of the
  // data; kInvalidArgument naming the entry index and offset if malformed.
  absl::StatusOr<bool> Next(ImaEntry* entry);
  // Bytes of `data` consumed by the entries returned so far.
  size_t offset() const { return pos_; }
  uint64_t next_index() const { return index_; }
  // The binary template-hash algorithm, once known.
  std::optional<HashAlg> binary_hash_alg() const { return binary_hash_alg_; }

 private:
  absl::StatusOr<bool> NextAscii(ImaEntry* e);
  absl::StatusOr<bool> NextBinary(ImaEntry* e);

  absl::string_view data_;
  size_t pos_ = 0;
  uint64_t index_;
  LogFormat format_;
  std::optional<HashAlg> binary_hash_alg_;
  ParseMode mode_;
  // Rebuilt template data (ASCII, legacy ima). Only grows, so rebuilding an
  // entry never allocates once the largest entry has been seen.
  std::string scratch_;
  std::string extra_;  // Hex-decoded signature / buffer (ASCII).
};

// Detects the format without parsing.
LogFormat DetectLogFormat(absl::string_view data);

}  // namespace vouch::core::ima

#endif  // VOUCH_CORE_IMA_IMA_LOG_H_
