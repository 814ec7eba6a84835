// File: core/translog/tree_head.h
// Signed tree heads of the transparency log, and the log's leaf encodings.
// Pure and thread-safe. ParseSignedTreeHead and VerifySignedTreeHead take
// untrusted bytes; signing needs the pool log key (ECDSA P-256 or Ed25519).
//
//   VOUCH_ASSIGN_OR_RETURN(LogKey key, LogKey::FromPrivatePem(pem));
//   VOUCH_ASSIGN_OR_RETURN(std::string sth, SignTreeHead(head, key));
//   VOUCH_ASSIGN_OR_RETURN(TreeHead seen, VerifySignedTreeHead(sth, pub_pem));
#ifndef VOUCH_CORE_TRANSLOG_TREE_HEAD_H_
#define VOUCH_CORE_TRANSLOG_TREE_HEAD_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/translog/merkle.h"

namespace vouch::core::translog {

// What a tree head commits to. The log id is SHA-256 of the log public key's
// DER SubjectPublicKeyInfo, so a head names the key that must verify it.
struct TreeHead {
  Hash log_id{};
  uint64_t tree_size = 0;
  int64_t timestamp_ms = 0;  // Unix milliseconds, when the sequencer signed.
  Hash root{};
};

// The signed bytes (modelled on RFC 9162 4.10 TreeHeadDataV2, with the
// log id inside so a head cannot be replayed under another log):
//   "VTH1" | log_id[32] | tree_size u64 | timestamp_ms u64 | root[32]
// (big-endian). A signed tree head is those 84 bytes, then u16 signature
// length, then the signature (DER ECDSA-SHA256 or raw Ed25519).
inline constexpr size_t kTreeHeadBytes = 84;
inline constexpr size_t kMaxSignatureBytes = 512;
std::string EncodeTreeHead(const TreeHead& head);

// The pool's log key (a private or only a public key), parsed once.
class LogKey {
 public:
  static absl::StatusOr<LogKey> FromPrivatePem(absl::string_view pem);
  static absl::StatusOr<LogKey> FromPublicPem(absl::string_view pem);
  ~LogKey();
  LogKey(LogKey&&) noexcept;
  LogKey& operator=(LogKey&&) noexcept;

  const Hash& log_id() const { return log_id_; }
  std::string PublicPem() const;
  bool has_private() const { return has_private_; }

  // Signs EncodeTreeHead(head) after setting head.log_id to this key's id.
  absl::StatusOr<std::string> Sign(TreeHead head) const;
  // Parses and verifies a signed tree head: kInvalidArgument naming what is
  // wrong (length, log id, signature); the head only when it verifies.
  absl::StatusOr<TreeHead> Verify(absl::string_view signed_head) const;

 private:
  struct Rep;
  explicit LogKey(std::unique_ptr<Rep> rep, Hash log_id, bool has_private);
  std::unique_ptr<Rep> rep_;
  Hash log_id_{};
  bool has_private_ = false;
};

// Splits a signed tree head without verifying it (untrusted bytes).
struct ParsedSignedTreeHead {
  TreeHead head;
  std::string signature;
};
absl::StatusOr<ParsedSignedTreeHead> ParseSignedTreeHead(
    absl::string_view signed_head);

// Leaf kinds and their canonical encodings (the bytes LeafHash is taken of):
//   u8 kind | u16 len | agent_id | then per kind, length-prefixed fields
// with u16 lengths and a final i64 big-endian Unix-millisecond time.
enum class LeafKind : uint8_t {
  kBinding = 1,      // the registrar activated an EK <-> AIK binding
  kRemoval = 2,      // the registrar removed an agent (and its binding)
  kAttestation = 3,  // a verifier committed an attestation record
};

// An EK <-> AIK binding (kBinding) or its removal (kRemoval): the agent, its
// tenant, the EK digest (SHA-256 of the EK's SubjectPublicKeyInfo, as the
// registrar keys EKs: core::tpm::SpkiSha256) and the AIK digest
// (BindingAikDigest: SHA-256 of the AIK's TPM Name).
std::string TranslogLeafForBinding(LeafKind kind, absl::string_view agent_id,
                                   absl::string_view tenant,
                                   absl::string_view ek_digest,
                                   absl::string_view aik_digest, absl::Time at);
// The first bytes of TranslogLeafForAttestation, up to and with the verdict:
// what a reader who knows the record but not the verifier's evidence digest
// or queue time finds its leaf by. The full leaf is this, then the
// length-prefixed evidence digest, then the time.
std::string AttestationLeafPrefix(absl::string_view attestation_id,
                                  absl::string_view agent_id,
                                  absl::string_view nonce,
                                  absl::string_view verdict);
// A binding or removal leaf without its time (see LeafWithoutTime).
std::string BindingLeafPrefix(LeafKind kind, absl::string_view agent_id,
                              absl::string_view tenant,
                              absl::string_view ek_digest,
                              absl::string_view aik_digest);

// SHA-256 of an AIK's TPM Name, the AIK digest of a binding leaf.
std::string BindingAikDigest(absl::string_view aik_name);

// Every leaf ends in its time (i64 big-endian Unix milliseconds):
// LeafWithoutTime is what identifies the thing logged (an audit compares it
// with what it rebuilds from a record), LeafTime the moment it was queued.
// Both kInvalidArgument for a leaf shorter than 9 bytes.
absl::StatusOr<absl::string_view> LeafWithoutTime(absl::string_view leaf);
absl::StatusOr<absl::Time> LeafTime(absl::string_view leaf);

// A committed attestation record, over the fields the verifier commits in
// the same transaction: the record id, the agent, the nonce, the verdict
// ("pass"/"fail"...), the SHA-256 of the quote.
std::string TranslogLeafForAttestation(absl::string_view attestation_id,
                                       absl::string_view agent_id,
                                       absl::string_view nonce,
                                       absl::string_view verdict,
                                       absl::string_view quote_digest,
                                       absl::Time at);

}  // namespace vouch::core::translog

#endif  // VOUCH_CORE_TRANSLOG_TREE_HEAD_H_
