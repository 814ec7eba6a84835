// File: core/audit/bundle.h
// The offline audit bundle (vouch.v1.AuditBundle, docs/audit.md): parsing
// its JSON form and verifying it without any server — the registration
// (AIK name, EK certificate chain when CAs are given), the record's
// policies (digests, parse), the record's evidence re-verified by
// Reverify, and the record's own verdict against it. A bundle is hostile
// input: bounded (kMaxBundleBytes), every inconsistency is a kInvalid
// result naming the part. The transparency-log section is optional in
// version 1 and checked by VerifyLogSection when a log key is given.
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

// The seam for the transparency log (RFC 9162): verifies `log` — the
// signed tree head under `log_key_pem`, the registration binding's and the
// record's inclusion proofs — for `bundle`. Until the log's proof
// functions are wired in, every present section is refused
// (kUnimplemented), so a bundle never passes on a log it did not check.
absl::Status VerifyLogSection(const v1::AuditLogProofs& log,
                              const v1::AuditBundle& bundle,
                              absl::string_view log_key_pem);

}  // namespace vouch::core::audit

#endif  // VOUCH_CORE_AUDIT_BUNDLE_H_
