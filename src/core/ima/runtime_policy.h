// File: core/ima/runtime_policy.h
// A Keylime runtime policy (meta.version 1: digests, excludes, keyrings,
// ima.ignored_keyrings, ima.log_hash_alg, ima-buf, verification-keys, and
// the Vouch extension "reject": digests and paths that always fail),
// loaded once from JSON and then immutable, so one copy is shared by every
// agent through std::shared_ptr<const RuntimePolicy> and read from any
// thread without locks. The JSON is operator input: every schema violation
// is kInvalidArgument naming the key; unknown keys are refused (an ignored
// restriction would fail open).
//
//   auto policy = RuntimePolicy::FromJson(text, {.path_hash_key = key});
//   const RuntimePolicy& p = **policy;
//   if (p.digests().Lookup(p.HashPath(path), alg, d, n) == DigestMatch::kMatch)
#ifndef VOUCH_CORE_IMA_RUNTIME_POLICY_H_
#define VOUCH_CORE_IMA_RUNTIME_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/openssl_handle.h"
#include "core/ima/hash_alg.h"
#include "core/ima/path_hash.h"

namespace re2 {
class RE2;
}

namespace vouch::core::ima {

enum class DigestMatch : uint8_t { kMatch, kMismatch, kNotListed };

// What put an entry on the reject list.
enum class RejectMatch : uint8_t { kNone, kDigest, kPath };

// Path → allowed digests, as an open-addressing table keyed by the keyed
// 128-bit path hash, with the digests inline in one byte pool: about 24
// bytes of slot (at ≤ 0.7 load) plus 2 + digest size per digest. No path
// strings are stored.
class DigestTable {
 public:
  // Building: Begin a path, Add its digests, End it; then Build().
  void Begin(const PathHash& h);
  // Optional, before Begin: room for `paths` more paths (no regrowth).
  void Reserve(size_t paths);
  // `alg` nullopt: the digest was given without "alg:" and matches an entry
  // digest of any algorithm with the same bytes (Keylime compares hex only).
  void Add(std::optional<HashAlg> alg, const uint8_t* digest, size_t size);
  void End();
  // Fails if two paths hash the same (the same path listed twice).
  absl::Status Build();

  DigestMatch Lookup(const PathHash& h, HashAlg alg, const uint8_t* digest,
                     size_t size) const;
  bool Contains(const PathHash& h) const { return Find(h) != nullptr; }
  // Cache hints for a lookup coming soon: the path's home slot, and (once
  // that slot is likely cached) its digests.
  void PrefetchSlot(const PathHash& h) const;
  void PrefetchDigests(const PathHash& h) const;
  size_t size() const { return count_; }
  size_t MemoryBytes() const;
  // For writing a policy back out (tests, tools): the digests of a path.
  std::vector<std::string> HexDigests(const PathHash& h) const;

 private:
  struct Slot {
    uint64_t h0;  // 0 = empty slot (hashes are forced non-zero).
    uint64_t h1;
    uint32_t offset;  // Into pool_.
    uint32_t count;
  };
  const Slot* Find(const PathHash& h) const;

  std::vector<Slot> pending_;
  std::vector<Slot> slots_;
  std::vector<uint8_t> pool_;  // Per digest: alg (0 = any), size, bytes.
  size_t count_ = 0;
};

struct VerificationKey {
  std::string keyring;
  uint32_t key_id = 0;  // IMA keyidv2: low 4 bytes of SHA-1 of the key.
  EvpPkeyPtr key;
};

struct PolicyLoadOptions {
  // Key of the path hash. Services must pass random bytes (see README); the
  // all-zero default is for tests and offline tools on trusted logs.
  PathHashKey path_hash_key{};
  // Largest policy accepted, and the most digest entries (bounds memory).
  size_t max_json_bytes = size_t{1} << 30;
  size_t max_digest_entries = 20'000'000;
  // How many bytes after the end of the JSON text the caller guarantees are
  // readable (their values do not matter). With at least 64 (simdjson's
  // SIMDJSON_PADDING) the text is parsed in place; otherwise it is copied
  // once into a padded buffer. A mapped file has the rest of its last page.
  size_t readable_padding = 0;
};

class RuntimePolicy {
 public:
  static absl::StatusOr<std::shared_ptr<const RuntimePolicy>> FromJson(
      absl::string_view json, const PolicyLoadOptions& options = {});

  ~RuntimePolicy();
  RuntimePolicy(const RuntimePolicy&) = delete;
  RuntimePolicy& operator=(const RuntimePolicy&) = delete;

  PathHash HashPath(absl::string_view path) const;
  const PathHashKey& path_hash_key() const { return key_; }
  const DigestTable& digests() const { return digests_; }
  const DigestTable& keyrings() const { return keyrings_; }
  const DigestTable& ima_buf() const { return ima_buf_; }

  // Keylime matches each exclude regex at the start of the path, not the
  // whole path (Python re.match); so does this (RE2 ANCHOR_START).
  bool IsExcluded(absl::string_view path) const;
  bool IsKeyringIgnored(absl::string_view keyring) const;
  bool has_excludes() const { return !exclude_patterns_.empty(); }

  // The reject list (the Vouch extension "reject": {"digests": [...],
  // "paths": [...]}, docs/ima.md): a listed digest (of any path; without
  // "alg:" it matches any algorithm's digest of the same bytes) or a listed
  // path (exact) fails the entry whatever else the policy allows.
  bool has_reject() const {
    return !reject_digests_.empty() || !reject_paths_.empty();
  }
  RejectMatch Rejects(const PathHash& path_hash, HashAlg alg,
                      const uint8_t* digest, size_t size) const;
  // As written in the policy (for tools writing it back out).
  const std::vector<std::string>& reject_digest_texts() const {
    return reject_digest_texts_;
  }
  const std::vector<std::string>& reject_path_texts() const {
    return reject_path_texts_;
  }

  HashAlg log_hash_alg() const { return log_hash_alg_; }
  int64_t release() const { return release_; }
  const std::vector<std::string>& excludes() const { return exclude_patterns_; }
  const std::vector<VerificationKey>& verification_keys() const {
    return verification_keys_;
  }
  // Approximate heap bytes of the digest tables.
  size_t MemoryBytes() const;

 private:
  RuntimePolicy();
  friend class PolicyLoader;
  friend class RejectListLoader;

  PathHashKey key_{};
  DigestTable digests_;
  DigestTable keyrings_;
  DigestTable ima_buf_;
  std::vector<std::string> exclude_patterns_;
  std::unique_ptr<class ExcludeSet> excludes_;
  absl::flat_hash_set<std::string> ignored_keyrings_;
  bool ignore_all_keyrings_ = false;
  HashAlg log_hash_alg_ = HashAlg::kSha1;
  int64_t release_ = 0;
  std::vector<VerificationKey> verification_keys_;
  // Keys: one byte of algorithm (0 = any) then the digest bytes.
  absl::flat_hash_set<std::string> reject_digests_;
  absl::flat_hash_set<std::pair<uint64_t, uint64_t>> reject_paths_;
  std::vector<std::string> reject_digest_texts_;
  std::vector<std::string> reject_path_texts_;
};

// Parses one policy digest string: hex, or "<alg>:<hex>" (Keylime writes
// both forms, e.g. "sha256:…" for boot_aggregate).
struct PolicyDigest {
  std::optional<HashAlg> alg;
  uint8_t bytes[kMaxDigestSize];
  size_t size = 0;
};
absl::StatusOr<PolicyDigest> ParsePolicyDigest(absl::string_view text);

// A policy being written by `vouchctl policy create/convert`.
struct PolicyDraft {
  std::map<std::string, std::vector<std::string>> digests;  // Hex lists.
  std::vector<std::string> excludes;
  std::map<std::string, std::vector<std::string>> keyrings;
  std::string log_hash_alg = "sha1";
  // The "reject" extension; written only when one of them is non-empty.
  std::vector<std::string> reject_digests;
  std::vector<std::string> reject_paths;
};
// Keylime's runtime policy JSON (meta.version 1, generator 3 "vouch"
// omitted: Keylime accepts any generator). Paths must be valid UTF-8.
absl::StatusOr<std::string> WriteRuntimePolicy(const PolicyDraft& draft);

// Keylime's legacy allowlist: lines "<hex digest>  <path>" ('#' comments and
// blank lines skipped) plus an optional exclude list (one regex a line).
absl::StatusOr<PolicyDraft> ConvertAllowlist(absl::string_view allowlist,
                                             absl::string_view excludelist);

// True when `s` is well-formed UTF-8.
bool IsValidUtf8(absl::string_view s);

}  // namespace vouch::core::ima

#endif  // VOUCH_CORE_IMA_RUNTIME_POLICY_H_
