// File: core/ima/ima_log_writer.h
// Formats IMA measurements exactly as the kernel prints them (ASCII and
// binary, ima_fs.c) with correct template hashes, and replays them. Used to
// generate logs for tests, fuzz seeds and benchmarks, and by fakes of the
// kernel's IMA files. Inputs are trusted. Not thread-safe per writer.
//
//   ImaLogWriter w;  // SHA-1 template hashes, like the default kernel files
//   w.Append({.path = "/bin/sh", .digest = d}, &ascii, LogFormat::kAscii);
#ifndef VOUCH_CORE_IMA_IMA_LOG_WRITER_H_
#define VOUCH_CORE_IMA_IMA_LOG_WRITER_H_

#include <cstdint>
#include <string>

#include "common/bytes.h"
#include "core/ima/hash_alg.h"
#include "core/ima/ima_log.h"

namespace vouch::core::ima {

struct ImaRecord {
  ImaTemplate tmpl = ImaTemplate::kImaNg;
  HashAlg digest_alg = HashAlg::kSha256;  // `ima` template: always SHA-1.
  Bytes digest;                           // DigestSize(digest_alg) bytes.
  std::string path;
  std::string extra;       // ima-sig signature / ima-buf buffer (raw bytes).
  bool violation = false;  // Written with an all-zero template hash.
  uint32_t pcr = 10;
};

// The template data the kernel hashes for `r` (see ImaEntry::template_data).
std::string BuildTemplateData(const ImaRecord& r);

class ImaLogWriter {
 public:
  // `template_hash_alg`: the hash column (SHA-1 for the classic files,
  // SHA-256 for the per-bank `*_runtime_measurements_sha256` files).
  explicit ImaLogWriter(HashAlg template_hash_alg = HashAlg::kSha1);
  // Appends one entry to `out` in `format`.
  void Append(const ImaRecord& r, std::string* out, LogFormat format);

 private:
  HashAlg alg_;
  Digester digester_;
};

}  // namespace vouch::core::ima

#endif  // VOUCH_CORE_IMA_IMA_LOG_WRITER_H_
