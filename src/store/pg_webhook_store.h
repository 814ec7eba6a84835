// File: store/pg_webhook_store.h
// Webhook subscriptions in PostgreSQL (migrations/0013_webhooks.sql): what
// the Admin API adds, reads and deletes, and what the delivery workers of
// the verifier pool claim (one lease holder per subscription, every later
// write fenced by its epoch), advance (the cursor in the committed event
// log) and mark failed or dead-lettered. Values come from the Admin API
// after it validated them. Thread-safe (each call takes a pooled
// connection).
//
//   PgWebhookStore hooks(&pool);
//   VOUCH_ASSIGN_OR_RETURN(auto claimed, hooks.Claim("v1", absl::Seconds(30)));
//   if (claimed) hooks.Delivered(*claimed, position, absl::Seconds(30));
#ifndef VOUCH_STORE_PG_WEBHOOK_STORE_H_
#define VOUCH_STORE_PG_WEBHOOK_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/agent_state.h"
#include "store/pg_pool.h"
#include "store/verifier_store.h"

namespace vouch::store {

struct WebhookSubscription {
  std::string tenant;
  std::string name;
  std::string url;
  std::vector<core::AgentState> states;  // Empty: every state.
  std::string secret;                    // "whsec_<base64>"
  std::string created_by;
  absl::Time created_at;
  // Events up to here were delivered or dead-lettered.
  EventPosition cursor;
  std::string owner;  // The verifier that holds (or last held) the lease.
  int64_t epoch = 0;
  absl::Time next_attempt_at;
  // Of the event after the cursor: failed attempts and since when.
  int attempts = 0;
  std::optional<absl::Time> failing_since;
  std::string last_error;
  std::optional<absl::Time> last_attempt_at;
  std::optional<absl::Time> last_delivered_at;
  int64_t delivered = 0;
  int64_t failed = 0;
  int64_t dead_lettered = 0;
  std::string last_dead_letter_id;
};

// What a failed delivery did to the subscription.
enum class WebhookFailure {
  kRetry,         // attempts + 1, next attempt after the back-off.
  kDeadLettered,  // Failing longer than dead_letter_after: skipped.
  kFenced,        // The lease is no longer ours; nothing written.
};

class PgWebhookStore {
 public:
  explicit PgWebhookStore(PgPool* pool) : pool_(pool) {}

  // Adds a subscription whose cursor is `start` (events committed later are
  // delivered). kAlreadyExists when the tenant has one of that name.
  absl::StatusOr<WebhookSubscription> Add(const WebhookSubscription& sub,
                                          const EventPosition& start);
  // kNotFound when absent.
  absl::StatusOr<WebhookSubscription> Get(const std::string& tenant,
                                          const std::string& name);
  // Names > after, ascending.
  absl::StatusOr<std::vector<WebhookSubscription>> List(
      const std::string& tenant, const std::string& after, int limit);
  // kNotFound when absent. A delivery in flight finds itself fenced.
  absl::Status Delete(const std::string& tenant, const std::string& name);

  // Takes the lease of one subscription that is due (next_attempt_at
  // passed) and not leased by another holder, for `lease`; bumps its
  // epoch. nullopt when none is due.
  absl::StatusOr<std::optional<WebhookSubscription>> Claim(
      const std::string& owner, absl::Duration lease);
  // The event at `position` was delivered: moves the cursor there, clears
  // the failure state, renews the lease. False when fenced.
  absl::StatusOr<bool> Delivered(const WebhookSubscription& held,
                                 const EventPosition& position,
                                 absl::Duration lease);
  // The event `event_id` at `position` failed with `error`. When the
  // subscription has been failing on it for longer than
  // `dead_letter_after`, it is dead-lettered (the cursor moves past it);
  // otherwise the next attempt is `retry_in` from now.
  absl::StatusOr<WebhookFailure> Failed(const WebhookSubscription& held,
                                        const EventPosition& position,
                                        const std::string& event_id,
                                        const std::string& error,
                                        absl::Duration retry_in,
                                        absl::Duration dead_letter_after);
  // Ends the lease early: the subscription is free for the next claim
  // from `due_in` on.
  absl::Status Release(const WebhookSubscription& held, absl::Duration due_in);

 private:
  PgPool* const pool_;
};

}  // namespace vouch::store

#endif  // VOUCH_STORE_PG_WEBHOOK_STORE_H_
