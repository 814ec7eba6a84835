// File: core/audit/bundle.h
// The offline audit bundle (vouch.v1.AuditBundle, docs/audit.md): parsing
// its JSON form and verifying it without any server — the registration
// (AIK name, EK certificate chain when CAs are given), the record's
// policies (digests, parse), the record's evidence re-verified by
// Reverify, and the record's own verdict against it. A bundle is hostile
// input: bounded (kMaxBundleBytes), every inconsistency is a kInvalid
// result naming the part. The transparency-log section is optional in
// version 1 and checked by VerifyLogSection when a log key is given (a
// bundle without one then does not verify: the caller asked for the log).
// Pure and thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(v1::AuditBundle b, ParseBundle(json));
//   AuditResult r = VerifyBundle(b, options, now);
//   if (r.kind == AuditResult::Kind::kInvalid) Print(r.part, r.reason);
#ifndef VOUCH_CORE_AUDIT_BUNDLE_H_
#define VOUCH_CORE_AUDIT_BUNDLE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/ima/path_hash.h"
#include "core/tpm/ek_cert.h"
#include "vouch/v1/admin.pb.h"

namespace vouch::core::audit {

inline constexpr uint32_t kBundleVersion = 1;
// The largest bundle file read (a whole boot's IMA entries in base64).
inline constexpr size_t kMaxBundleBytes = size_t{400} << 20;

// The bundle's JSON (proto3 JSON mapping; unknown fields refused).
// kInvalidArgument when it is too large, not JSON of an AuditBundle, or of
// another version.
absl::StatusOr<v1::AuditBundle> ParseBundle(absl::string_view json);
// The JSON written by `vouchctl audit export`.
absl::StatusOr<std::string> BundleJson(const v1::AuditBundle& bundle);

struct AuditOptions {
  // Trust anchors for the EK certificate; null: the chain is not checked
  // (AuditResult::ek_chain_checked is false).
  const tpm::EkCertVerifier* ek_cas = nullptr;
  // The transparency log's public key (PEM); empty: the log section, if
  // any, is not checked.
  std::string log_key_pem;
  // Path-hash key for loading the runtime policy (random per run).
  ima::PathHashKey path_hash_key{};
};

struct AuditResult {
  enum class Kind {
    kPass,     // The evidence verifies and the machine passed its policies.
    kFail,     // The evidence verifies and the machine failed (`failures`).
    kInvalid,  // The bundle itself does not verify: `part` and `reason`.
  };
  Kind kind = Kind::kInvalid;
  std::string part;
  std::string reason;
  std::vector<v1::Failure> failures;
  bool failures_truncated = false;
  bool ek_chain_checked = false;
  bool log_checked = false;
};

AuditResult VerifyBundle(const v1::AuditBundle& bundle,
                         const AuditOptions& options, absl::Time now);

// The transparency-log section (RFC 9162, docs/audit.md): the signed tree
// head verifies under `log_key_pem` and has `log.tree_size`; the record's
// leaf is this record's (attestation id, agent, nonce, verdict, and the
// evidence digest when the record carries one) and is included in that
// tree; the registration leaf is the binding of the bundle's EK and AIK to
// this agent in this tenant, logged before the record, and included too.
// OkStatus, or kInvalidArgument with `part` set to what does not verify
// (log.signed_tree_head, log.tree_size, log.record_leaf, log.record_path,
// log.registration_leaf, log.registration_leaf_index,
// log.registration_path; "log key" for an unusable key).
absl::Status VerifyLogSection(const v1::AuditLogProofs& log,
                              const v1::AuditBundle& bundle,
                              absl::string_view log_key_pem, std::string* part);

}  // namespace vouch::core::audit

#endif  // VOUCH_CORE_AUDIT_BUNDLE_H_
