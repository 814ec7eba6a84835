// File: core/ima/learned_keys.h
// Keys learned from the IMA log: the kernel measures each key it adds to a
// keyring (.ima, .evm, ...) as an ima-buf entry whose buffer is the DER
// certificate or public key. Once the policy accepts such an entry (its
// digest is in `keyrings[name]`), the key also verifies later ima-sig
// signatures of the same boot, as Keylime's verifier does with its
// `learned_ima_keyrings`. The learned keys travel with the replay position
// (ImaReplayState), so they are stored, continued by any verifier and
// forgotten at reboot with it. Buffers are untrusted; stored encodings are
// checked when decoded. Pure and thread-safe.
//
//   KeyringBuffer b = ParseKeyringBuffer(entry.extra);
//   if (b.key && policy_allows(entry)) learned.push_back(*b.key);
//   store(EncodeLearnedKeys(learned));
#ifndef VOUCH_CORE_IMA_LEARNED_KEYS_H_
#define VOUCH_CORE_IMA_LEARNED_KEYS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/ima/runtime_policy.h"

namespace vouch::core::ima {

// At most this many keys are learned per boot (a keyring entry that would
// add one more fails), and a key's DER is at most this long (RSA-8192's
// SubjectPublicKeyInfo is about 1.1 KB).
inline constexpr size_t kMaxLearnedKeys = 64;
inline constexpr size_t kMaxLearnedKeyBytes = 2048;

struct LearnedKey {
  // The IMA keyidv2 signatures name it by: the last 4 bytes of the
  // certificate's Subject Key Identifier when the buffer is a certificate
  // that has one (what the kernel and Keylime use), else ImaKeyIdV2.
  uint32_t key_id = 0;
  std::string spki;  // DER SubjectPublicKeyInfo.
  bool operator==(const LearnedKey& o) const {
    return key_id == o.key_id && spki == o.spki;
  }
};

// What an ima-buf buffer holds, as far as keyrings are concerned.
struct KeyringBuffer {
  bool is_key = false;  // A whole DER X.509 certificate or public key.
  // Set when is_key and the key is RSA or EC (the kinds IMA signs with).
  std::optional<LearnedKey> key;
};
KeyringBuffer ParseKeyringBuffer(absl::string_view buf);

// The stored form: per key, be32 key id, be16 length, DER. Decode refuses
// anything else (more than kMaxLearnedKeys, an oversized or unparsable
// key, trailing bytes) with kInvalidArgument.
std::string EncodeLearnedKeys(const std::vector<LearnedKey>& keys);
absl::StatusOr<std::vector<LearnedKey>> DecodeLearnedKeys(
    absl::string_view stored);

// The keys as signature verification takes them (keyring "learned").
absl::StatusOr<VerificationKey> ToVerificationKey(const LearnedKey& key);

}  // namespace vouch::core::ima

#endif  // VOUCH_CORE_IMA_LEARNED_KEYS_H_
