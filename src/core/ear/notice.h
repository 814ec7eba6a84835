// File: core/ear/notice.h
// Action notices: what the verifier tells an agent about a failure that
// concerns it (its own, or a peer's in a tenant that opted in), as a JWT
// (RFC 7519) signed ES256 with the pool's results key (the same Signer and
// KeySet as the EAR results). The audience is the receiving agent, so a
// notice cannot be replayed to another agent; the expiry is short. Pure:
// time comes in as an argument. Tokens given to VerifyNotice are untrusted
// (bounded, typed checks, never a crash). Thread-safe (no state).
//
//   Notice n{...};
//   VOUCH_ASSIGN_OR_RETURN(std::string jwt, SignNotice(signer, n));
//   // On the agent:
//   VOUCH_ASSIGN_OR_RETURN(Notice got, VerifyNotice(jwt, keys, my_id, now));
//   std::string event = NoticeEventJson(got);  // an action's stdin
#ifndef VOUCH_CORE_EAR_NOTICE_H_
#define VOUCH_CORE_EAR_NOTICE_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/ear/ear.h"

namespace vouch::core::ear {

// Bound on an agent id, event id or tenant in a notice.
inline constexpr size_t kMaxNoticeFieldBytes = 256;

enum class NoticeKind {
  kOwnFailure,   // "own-failure": the receiving agent itself failed
  kPeerFailure,  // "peer-failure": another agent of its tenant failed
};
absl::string_view NoticeKindName(NoticeKind kind);
std::optional<NoticeKind> ParseNoticeKind(absl::string_view name);

struct Notice {
  std::string event_id;  // "jti": the event's id in the pool's log
  NoticeKind kind = NoticeKind::kOwnFailure;  // "vouch.kind"
  std::string subject;                        // "sub": the agent that changed
  std::string audience;        // "aud": the agent the notice is for
  std::string tenant;          // "vouch.tenant"
  std::string state;           // "vouch.state", e.g. "FAIL", "TIMEOUT"
  std::string previous_state;  // "vouch.previous-state"
  absl::Time changed_at;       // "vouch.changed-at" (Unix seconds)
  absl::Time issued_at;        // "iat"
  absl::Time expires_at;       // "exp"
};

// The claims set of `n` (what SignNotice signs; also the JSON an action
// reads on its stdin).
std::string NoticeClaimsJson(const Notice& n);
// Parses an untrusted claims set: every member present and typed, strings
// within kMaxNoticeFieldBytes; kInvalidArgument otherwise.
absl::StatusOr<Notice> ParseNoticeClaims(absl::string_view json);

absl::StatusOr<std::string> SignNotice(const Signer& signer, const Notice& n);

// Verifies an untrusted notice: the signature (VerifySignature), the
// claims, "aud" == `audience`, iat <= now + 1 min, now < exp.
// kInvalidArgument for a malformed notice, kPermissionDenied for a bad
// signature, an unknown key, another audience or an expired notice.
absl::StatusOr<Notice> VerifyNotice(absl::string_view token, const KeySet& keys,
                                    absl::string_view audience, absl::Time now);

}  // namespace vouch::core::ear

#endif  // VOUCH_CORE_EAR_NOTICE_H_
