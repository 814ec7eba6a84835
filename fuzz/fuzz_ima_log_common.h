// Shared body of the IMA log fuzzers: the evaluator (parser, template
// hashes, replay, content checks) on arbitrary bytes, against a small
// policy with excludes, with and without a quoted PCR 10. It must return a
// status or a verdict, never crash, and a verdict must be internally sane.
// The same bytes also go to the keyring-buffer parser (an ima-buf
// entry's buffer) and the learned-keys decoder, which must round-trip.
#ifndef VOUCH_FUZZ_FUZZ_IMA_LOG_COMMON_H_
#define VOUCH_FUZZ_FUZZ_IMA_LOG_COMMON_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "core/ima/ima_evaluator.h"

namespace vouch::core::ima {

inline const RuntimePolicy* FuzzPolicy() {
  static const std::shared_ptr<const RuntimePolicy> policy = [] {
    auto p = RuntimePolicy::FromJson(
        R"({"meta": {"version": 1}, "digests": {"/usr/bin/bash":)"
        R"( ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],)"
        R"( "boot_aggregate": ["0000000000000000000000000000000000000000"]},)"
        R"( "excludes": ["/tmp/.*", "/var/log/[a-z]+\\.log"],)"
        R"( "keyrings": {".ima": ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"]},)"
        R"( "ima": {"ignored_keyrings": [".evm"], "log_hash_alg": "sha1", "dm_policy": null}})");
    if (!p.ok()) __builtin_trap();
    return *p;
  }();
  return policy.get();
}

inline void FuzzImaLog(absl::string_view data) {
  auto r = EvaluateImaLog({}, data, std::nullopt, FuzzPolicy());
  if (r.ok()) {
    if (r->entries_accepted > r->entries_parsed) __builtin_trap();
    if (r->bytes_accepted > data.size()) __builtin_trap();
    if (r->failures.size() > r->failure_count) __builtin_trap();
  }
  QuotedPcr10 q;
  q.sha1.emplace();
  auto quoted = EvaluateImaLog({}, data, q, FuzzPolicy());
  if (quoted.ok() && quoted->entries_accepted != 0) __builtin_trap();

  KeyringBuffer kb = ParseKeyringBuffer(data);
  if (kb.key && (!kb.is_key || kb.key->spki.size() > kMaxLearnedKeyBytes)) {
    __builtin_trap();
  }
  auto keys = DecodeLearnedKeys(data);
  if (keys.ok() &&
      (keys->size() > kMaxLearnedKeys || EncodeLearnedKeys(*keys) != data)) {
    __builtin_trap();
  }
}

}  // namespace vouch::core::ima

#endif  // VOUCH_FUZZ_FUZZ_IMA_LOG_COMMON_H_
