#include "core/ear/notice.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/ear/json_internal.h"
#include "nlohmann/json.hpp"

namespace vouch::core::ear {
namespace {

using Json = nlohmann::json;
using internal::Integer;
using internal::ParseObject;
using internal::String;

// A required string member of 1..kMaxNoticeFieldBytes bytes.
absl::StatusOr<std::string> Field(const Json& j, const char* key) {
  std::optional<std::string> v = String(j, key);
  if (!v || v->empty() || v->size() > kMaxNoticeFieldBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("notice: ", key, " missing, not a string or too long"));
  }
  return *std::move(v);
}

absl::StatusOr<absl::Time> TimeField(const Json& j, const char* key) {
  std::optional<int64_t> v = Integer(j, key);
  // Years 1970..9999: FromUnixSeconds never overflows on these.
  if (!v || *v < 0 || *v > 253402300799) {
    return absl::InvalidArgumentError(
        absl::StrCat("notice: ", key, " missing or not a time"));
  }
  return absl::FromUnixSeconds(*v);
}

}  // namespace

absl::string_view NoticeKindName(NoticeKind kind) {
  return kind == NoticeKind::kPeerFailure ? "peer-failure" : "own-failure";
}

std::optional<NoticeKind> ParseNoticeKind(absl::string_view name) {
  for (NoticeKind k : {NoticeKind::kOwnFailure, NoticeKind::kPeerFailure}) {
    if (NoticeKindName(k) == name) return k;
  }
  return std::nullopt;
}

std::string NoticeClaimsJson(const Notice& n) {
  Json claims = {
      {"jti", n.event_id},
      {"vouch.kind", std::string(NoticeKindName(n.kind))},
      {"sub", n.subject},
      {"aud", n.audience},
      {"vouch.tenant", n.tenant},
      {"vouch.state", n.state},
      {"vouch.previous-state", n.previous_state},
      {"vouch.changed-at", absl::ToUnixSeconds(n.changed_at)},
      {"iat", absl::ToUnixSeconds(n.issued_at)},
      {"exp", absl::ToUnixSeconds(n.expires_at)},
  };
  return claims.dump(-1, ' ', false, Json::error_handler_t::replace);
}

absl::StatusOr<Notice> ParseNoticeClaims(absl::string_view json) {
  if (json.size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError("notice: too large");
  }
  VOUCH_ASSIGN_OR_RETURN(Json j, ParseObject(json, "notice"));
  Notice n;
  VOUCH_ASSIGN_OR_RETURN(std::string kind, Field(j, "vouch.kind"));
  std::optional<NoticeKind> k = ParseNoticeKind(kind);
  if (!k) return absl::InvalidArgumentError("notice: unknown vouch.kind");
  n.kind = *k;
  VOUCH_ASSIGN_OR_RETURN(n.event_id, Field(j, "jti"));
  VOUCH_ASSIGN_OR_RETURN(n.subject, Field(j, "sub"));
  VOUCH_ASSIGN_OR_RETURN(n.audience, Field(j, "aud"));
  VOUCH_ASSIGN_OR_RETURN(n.tenant, Field(j, "vouch.tenant"));
  VOUCH_ASSIGN_OR_RETURN(n.state, Field(j, "vouch.state"));
  VOUCH_ASSIGN_OR_RETURN(n.previous_state, Field(j, "vouch.previous-state"));
  VOUCH_ASSIGN_OR_RETURN(n.changed_at, TimeField(j, "vouch.changed-at"));
  VOUCH_ASSIGN_OR_RETURN(n.issued_at, TimeField(j, "iat"));
  VOUCH_ASSIGN_OR_RETURN(n.expires_at, TimeField(j, "exp"));
  // An own-failure notice is about its receiver, a peer notice never is.
  if ((n.kind == NoticeKind::kOwnFailure) != (n.subject == n.audience)) {
    return absl::InvalidArgumentError("notice: kind does not match sub/aud");
  }
  return n;
}

absl::StatusOr<std::string> SignNotice(const Signer& signer, const Notice& n) {
  return signer.SignClaims(NoticeClaimsJson(n));
}

absl::StatusOr<Notice> VerifyNotice(absl::string_view token, const KeySet& keys,
                                    absl::string_view audience,
                                    absl::Time now) {
  VOUCH_ASSIGN_OR_RETURN(std::string claims, VerifySignature(token, keys));
  VOUCH_ASSIGN_OR_RETURN(Notice n, ParseNoticeClaims(claims));
  if (n.audience != audience) {
    return absl::PermissionDeniedError("notice: for another agent");
  }
  if (n.expires_at <= now) {
    return absl::PermissionDeniedError("notice: expired");
  }
  if (n.issued_at > now + absl::Minutes(1)) {
    return absl::PermissionDeniedError("notice: issued in the future");
  }
  return n;
}

}  // namespace vouch::core::ear
