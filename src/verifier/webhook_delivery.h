// File: verifier/webhook_delivery.h
// Webhook delivery in the verifier pool (docs/webhooks.md). Worker threads
// claim one due subscription at a time (a lease in PostgreSQL, fenced by
// its epoch, so one verifier delivers it at a time and a dead verifier's
// subscriptions pass to another when the lease runs out), read the
// tenant's committed state-change events after the subscription's cursor
// with the read Watch uses (EventStore::EventsAfter, (xid, seq) order),
// and POST each as a signed CloudEvent over HTTPS, in order: the cursor
// moves only after a 2xx, so delivery is at least once. A failure blocks
// the subscription (every later event waits) and is retried with
// exponential back-off and jitter; after failing for dead_letter_after
// the event is dead-lettered (counted, skipped). Thread-safe.
//
//   AddWebhookKeys(schema);  // [webhooks] keys
//   std::unique_ptr<WebhookDelivery> w =
//       StartWebhooks(cfg, "v1", &admin_pool, timeout_intervals, metrics,
//                     admin);
#ifndef VOUCH_VERIFIER_WEBHOOK_DELIVERY_H_
#define VOUCH_VERIFIER_WEBHOOK_DELIVERY_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "server/metrics.h"
#include "store/pg_pool.h"
#include "store/pg_verifier_store.h"
#include "store/pg_webhook_store.h"
#include "verifier/admin_service.h"

namespace vouch::verifier {

struct WebhookOptions {
  std::string owner;  // This verifier's id (the lease holder).
  int workers = 2;    // Concurrent deliveries of this verifier; 0: none.
  absl::Duration poll = absl::Milliseconds(250);
  absl::Duration lease = absl::Seconds(30);
  absl::Duration timeout = absl::Seconds(5);  // One POST, all included.
  absl::Duration retry_base = absl::Seconds(1);
  absl::Duration retry_max = absl::Minutes(5);
  absl::Duration dead_letter_after = absl::Hours(24);
  int batch = 100;      // Events read per claim.
  std::string ca_file;  // Receivers' CA bundle; empty: the system store.
};

class WebhookDelivery {
 public:
  // `metrics` may be nullptr. Threads start with Start().
  WebhookDelivery(store::PgWebhookStore* hooks, store::EventStore* events,
                  WebhookOptions options, server::Metrics* metrics);
  ~WebhookDelivery();  // Stops and joins the workers.
  WebhookDelivery(const WebhookDelivery&) = delete;
  WebhookDelivery& operator=(const WebhookDelivery&) = delete;

  void Start();
  // Claims one due subscription and delivers what it can; false when none
  // was due (or the database failed).
  bool RunOnce();

 private:
  struct Metrics;
  void Deliver(const store::WebhookSubscription& held);

  store::PgWebhookStore* const hooks_;
  store::EventStore* const events_;
  const WebhookOptions options_;
  std::unique_ptr<Metrics> metrics_;
  absl::Notification stop_;
  std::vector<std::thread> threads_;
};

// The [webhooks] configuration keys.
void AddWebhookKeys(ConfigSchema& schema);

// What the verifier runs for webhooks: the Admin RPCs wired to a store on
// `admin_pool`, and the workers started on a pool of their own (one
// connection per worker, opened when first used), so deliveries never wait
// for an operator's call or a Watch read, nor make them wait.
struct Webhooks {
  std::unique_ptr<store::PgWebhookStore> admin_hooks;
  std::unique_ptr<store::PgPool> pool;
  std::unique_ptr<store::PgWebhookStore> hooks;
  std::unique_ptr<store::PgVerifierStore> events;
  std::unique_ptr<WebhookDelivery> delivery;
};
std::unique_ptr<Webhooks> StartWebhooks(
    const Config& cfg, const std::string& owner, store::PgPool* admin_pool,
    int timeout_intervals, server::Metrics* metrics, AdminService& admin);

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_WEBHOOK_DELIVERY_H_
