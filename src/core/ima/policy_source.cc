#include "core/ima/policy_source.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/ima/dsse.h"
#include "core/ima/runtime_policy.h"

namespace vouch::core::ima {

absl::Status ValidatePolicyUrl(absl::string_view url) {
  constexpr absl::string_view kScheme = "https://";
  if (url.size() > kMaxPolicyUrlBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("url: at most ", kMaxPolicyUrlBytes, " bytes"));
  }
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return absl::InvalidArgumentError(
          "url: printable ASCII without spaces only");
    }
  }
  if (!absl::StartsWithIgnoreCase(url, kScheme)) {
    return absl::InvalidArgumentError("url: only https:// addresses");
  }
  const absl::string_view rest = url.substr(kScheme.size());
  const absl::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty() || authority.front() == ':') {
    return absl::InvalidArgumentError("url: no host");
  }
  if (absl::StrContains(authority, '@')) {
    return absl::InvalidArgumentError(
        "url: user information (credentials) is not accepted in the address");
  }
  return absl::OkStatus();
}

absl::Status ValidatePolicyRefresh(absl::Duration refresh) {
  if (refresh == absl::ZeroDuration()) return absl::OkStatus();
  if (refresh < kMinPolicyRefresh || refresh > kMaxPolicyRefresh) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refresh: 0 (fetch once) or ", absl::FormatDuration(kMinPolicyRefresh),
        "..", absl::FormatDuration(kMaxPolicyRefresh)));
  }
  return absl::OkStatus();
}

absl::Status CheckRelease(int64_t incoming, int64_t active) {
  if (incoming < active) {
    return absl::FailedPreconditionError(
        absl::StrCat("downgrade refused: the document's release ", incoming,
                     " is below the active version's release ", active));
  }
  return absl::OkStatus();
}

absl::StatusOr<VerifiedEnvelope> VerifyWithAnyKey(
    absl::string_view envelope, const std::vector<TrustedPolicyKey>& keys) {
  if (keys.empty()) {
    return absl::InvalidArgumentError(
        "the DSSE signature cannot be checked: no policy-signing key is "
        "trusted for this tenant (vouchctl policy-keys add, or "
        "verifier.policy_signing_keys)");
  }
  for (const TrustedPolicyKey& key : keys) {
    VOUCH_ASSIGN_OR_RETURN(DsseVerification v,
                           VerifyDsseEnvelope(envelope, key.pem));
    if (v.valid) return VerifiedEnvelope{std::move(v.payload), key.key_id};
  }
  return absl::InvalidArgumentError(
      "the DSSE signature does not verify with any policy-signing key "
      "trusted for this tenant");
}

absl::StatusOr<FetchedPolicy> ReadFetchedPolicy(
    absl::string_view document, const std::vector<TrustedPolicyKey>& keys,
    bool require_signature, size_t max_bytes) {
  if (document.empty() || document.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "document: 1 byte .. ", max_bytes, " bytes, got ", document.size()));
  }
  FetchedPolicy out;
  if (IsDsseEnvelope(document)) {
    VOUCH_ASSIGN_OR_RETURN(VerifiedEnvelope v,
                           VerifyWithAnyKey(document, keys));
    out.policy = std::move(v.payload);
    out.signed_by_key = true;
    out.key_id = std::move(v.key_id);
  } else if (require_signature) {
    return absl::FailedPreconditionError(
        "the document is not signed (a DSSE envelope) and this source "
        "requires a signature");
  } else {
    out.policy = std::string(document);
  }
  absl::StatusOr<std::shared_ptr<const RuntimePolicy>> policy =
      RuntimePolicy::FromJson(out.policy);
  if (!policy.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a valid runtime policy: ", policy.status().message()));
  }
  out.release = (*policy)->release();
  return out;
}

}  // namespace vouch::core::ima
