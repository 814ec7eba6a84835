// File: core/webhook/webhook.h
// Webhooks, the pure parts: checks of an operator's subscription input
// (name, https URL, state filter, secret), the CloudEvents 1.0 structured
// JSON of a committed state-change event, the Standard Webhooks signature
// (HMAC-SHA256 over "id.timestamp.body", "v1,<base64>"), and the retry
// back-off with jitter. Pure: time and randomness come in as arguments.
// Subscription input is untrusted (bounded, INVALID_ARGUMENT naming the
// field). Thread-safe (no state).
//
//   VOUCH_ASSIGN_OR_RETURN(std::string key, SecretKey(secret));
//   std::string body = RenderCloudEvent(event);
//   std::string sig = Sign(key, event.id, now_seconds, body);
//   absl::Duration wait = Backoff(attempts, base, cap, rand01);
#ifndef VOUCH_CORE_WEBHOOK_WEBHOOK_H_
#define VOUCH_CORE_WEBHOOK_WEBHOOK_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/agent_state.h"

namespace vouch::core::webhook {

// Bounds on subscription input.
inline constexpr size_t kMaxNameBytes = 63;
inline constexpr size_t kMaxUrlBytes = 2048;
// Secrets are "whsec_" + base64 of 24..64 random bytes (Standard Webhooks).
inline constexpr char kSecretPrefix[] = "whsec_";
inline constexpr size_t kMinSecretKeyBytes = 24;
inline constexpr size_t kMaxSecretKeyBytes = 64;
// The CloudEvents type of a state change and its content type (CloudEvents
// 1.0 JSON format, structured mode: section 3 of the HTTP binding).
inline constexpr char kEventType[] = "dev.vouch.agent.state_changed.v1";
inline constexpr char kContentType[] = "application/cloudevents+json";
// A body carries at most this many failures (details cut to 512 bytes),
// so it stays under about 24 KiB; more set data.failures_truncated.
inline constexpr size_t kMaxFailures = 32;

// A subscription name: 1..63 of [a-z0-9-], starting with a letter or digit.
absl::Status ValidateName(absl::string_view name);
// An https:// URL with a host, no spaces or control characters, no
// user:password part, at most kMaxUrlBytes. Plain http is refused.
absl::Status ValidateUrl(absl::string_view url);
// "fail,timeout" -> states; each of pending|pass|fail|timeout, no repeats.
// Empty: every state (an empty list).
absl::StatusOr<std::vector<AgentState>> ParseStates(absl::string_view csv);
// The HMAC key of a "whsec_<base64>" secret; kInvalidArgument otherwise.
absl::StatusOr<std::string> SecretKey(absl::string_view secret);
// A secret from `random` key bytes (kMinSecretKeyBytes..kMaxSecretKeyBytes).
std::string SecretFromBytes(absl::string_view random);

// One committed state change, as delivered.
struct Event {
  std::string id;  // Stable per event: EventId(xid, seq).
  std::string tenant;
  std::string agent_id;
  AgentState previous_state = v1::ATTESTATION_STATE_UNSPECIFIED;
  AgentState state = v1::ATTESTATION_STATE_UNSPECIFIED;
  std::string cause;  // verdict | timeout
  std::string attestation_id;
  // The verdict's failures: a serialized vouch.v1.Verdict (as stored), or
  // empty.
  std::string failures;
  absl::Time at;
};

// The idempotency id of the event at (xid, seq) of the committed log: the
// same on every retry and from every verifier.
std::string EventId(uint64_t xid, int64_t seq);

// The CloudEvents 1.0 JSON (structured mode) of `event`: specversion, id,
// source "/vouch/tenants/<tenant>", type kEventType, subject = agent id,
// time (RFC 3339, UTC), datacontenttype application/json and data {tenant,
// agent_id, previous_state, state, cause, attestation_id, failures[{code,
// detail}]}.
std::string RenderCloudEvent(const Event& event);

// Standard Webhooks signature of `body`: "v1," + base64(HMAC-SHA256(key,
// id + "." + timestamp + "." + body)), timestamp in Unix seconds.
std::string Sign(absl::string_view key, absl::string_view id, int64_t timestamp,
                 absl::string_view body);

// The wait before retry `attempt` (1 = after the first failure):
// min(cap, base * 2^(attempt-1)), then "equal jitter": half of it fixed and
// half scaled by `rand01` in [0, 1).
absl::Duration Backoff(int attempt, absl::Duration base, absl::Duration cap,
                       double rand01);

}  // namespace vouch::core::webhook

#endif  // VOUCH_CORE_WEBHOOK_WEBHOOK_H_
