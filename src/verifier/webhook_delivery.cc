#include "verifier/webhook_delivery.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/https_client.h"
#include "common/logging.h"
#include "common/thread_name.h"
#include "core/webhook/webhook.h"

namespace vouch::verifier {

struct WebhookDelivery::Metrics {
  explicit Metrics(server::Metrics* m) {
    prometheus::Registry& r = m->registry();
    auto& results =
        prometheus::BuildCounter()
            .Name("vouch_webhook_deliveries_total")
            .Help(
                "Webhook delivery attempts by result: delivered (2xx), "
                "failed (will be retried), dead_lettered (skipped after "
                "failing longer than webhooks.dead_letter_after)")
            .Register(r);
    delivered = &results.Add({{"result", "delivered"}});
    failed = &results.Add({{"result", "failed"}});
    dead_lettered = &results.Add({{"result", "dead_lettered"}});
    retries = &prometheus::BuildCounter()
                   .Name("vouch_webhook_retries_total")
                   .Help("Deliveries of an event that had failed before")
                   .Register(r)
                   .Add({});
    lag = &prometheus::BuildGauge()
               .Name("vouch_webhook_lag_seconds")
               .Help(
                   "From an event's commit to its delivery, for the last "
                   "event this verifier delivered")
               .Register(r)
               .Add({});
  }
  prometheus::Counter* delivered;
  prometheus::Counter* failed;
  prometheus::Counter* dead_lettered;
  prometheus::Counter* retries;
  prometheus::Gauge* lag;
};

WebhookDelivery::WebhookDelivery(store::PgWebhookStore* hooks,
                                 store::EventStore* events,
                                 WebhookOptions options,
                                 server::Metrics* metrics)
    : hooks_(hooks),
      events_(events),
      options_(std::move(options)),
      metrics_(metrics != nullptr ? std::make_unique<Metrics>(metrics)
                                  : nullptr) {}

WebhookDelivery::~WebhookDelivery() {
  stop_.Notify();
  for (std::thread& t : threads_) t.join();
}

void WebhookDelivery::Start() {
  for (int i = 0; i < options_.workers; ++i) {
    threads_.emplace_back([this] {
      SetThreadName("vouch-webhook");
      while (!stop_.HasBeenNotified()) {
        // Claim until nothing is due, then wait a poll interval.
        if (!RunOnce()) stop_.WaitForNotificationWithTimeout(options_.poll);
      }
    });
  }
}

bool WebhookDelivery::RunOnce() {
  absl::StatusOr<std::optional<store::WebhookSubscription>> claimed =
      hooks_->Claim(options_.owner, options_.lease);
  if (!claimed.ok()) {
    Log(LogLevel::kWarning, "webhooks: claim failed",
        {{"error", claimed.status().message()}});
    return false;
  }
  if (!*claimed) return false;
  Deliver(**claimed);
  return true;
}

void WebhookDelivery::Deliver(const store::WebhookSubscription& held) {
  thread_local absl::BitGen random;
  // Records a failed attempt of the event at `position` (the cursor itself
  // for errors before any event: never dead-lettered, nothing to skip).
  auto fail = [&](const store::EventPosition& position,
                  const std::string& event_id, const std::string& error,
                  absl::Duration dead_letter_after) {
    const absl::Duration wait = core::webhook::Backoff(
        held.attempts + 1, options_.retry_base, options_.retry_max,
        absl::Uniform(random, 0.0, 1.0));
    absl::StatusOr<store::WebhookFailure> f = hooks_->Failed(
        held, position, event_id, error, wait, dead_letter_after);
    Log(LogLevel::kWarning, "webhooks: delivery failed",
        {{"tenant", held.tenant},
         {"webhook", held.name},
         {"event", event_id},
         {"attempts", held.attempts + 1},
         {"error", error}});
    if (!f.ok() || metrics_ == nullptr) return;
    if (*f == store::WebhookFailure::kDeadLettered) {
      metrics_->dead_lettered->Increment();
      Log(LogLevel::kWarning, "webhooks: event dead-lettered",
          {{"tenant", held.tenant},
           {"webhook", held.name},
           {"event", event_id}});
    } else if (*f == store::WebhookFailure::kRetry) {
      metrics_->failed->Increment();
    }
  };
  absl::StatusOr<std::string> key = core::webhook::SecretKey(held.secret);
  if (!key.ok()) {
    fail(held.cursor, "", "stored secret unusable", absl::InfiniteDuration());
    return;
  }
  absl::StatusOr<std::vector<store::EventRow>> events =
      events_->EventsAfter(held.tenant, held.cursor, {}, held.states,
                           /*verdicts=*/false, options_.batch);
  if (!events.ok()) {
    fail(held.cursor, "", std::string(events.status().message()),
         absl::InfiniteDuration());
    return;
  }
  bool retry = held.attempts > 0;
  for (const store::EventRow& row : *events) {
    if (stop_.HasBeenNotified()) break;
    core::webhook::Event e;
    e.id = core::webhook::EventId(row.position.xid, row.position.seq);
    e.tenant = held.tenant;
    e.agent_id = row.agent_id;
    e.previous_state = row.previous_state;
    e.state = row.state;
    e.cause = row.cause;
    e.attestation_id = row.attestation_id;
    e.failures = row.failures;
    e.at = row.at;
    HttpsRequest req;
    req.url = held.url;
    req.body = core::webhook::RenderCloudEvent(e);
    const int64_t ts = absl::ToUnixSeconds(absl::Now());
    req.headers = {
        {"Content-Type", core::webhook::kContentType},
        {"webhook-id", e.id},
        {"webhook-timestamp", absl::StrCat(ts)},
        {"webhook-signature", core::webhook::Sign(*key, e.id, ts, req.body)}};
    req.ca_file = options_.ca_file;
    req.timeout = options_.timeout;
    req.max_response_bytes = 1024;  // Only the status matters.
    if (retry && metrics_ != nullptr) metrics_->retries->Increment();
    absl::StatusOr<HttpsResponse> r = HttpsPost(req);
    if (!r.ok() || r->status < 200 || r->status > 299) {
      fail(row.position, e.id,
           r.ok() ? absl::StrCat("HTTP ", r->status)
                  : std::string(r.status().message()),
           options_.dead_letter_after);
      return;  // Later events wait: delivery is in order.
    }
    absl::StatusOr<bool> moved =
        hooks_->Delivered(held, row.position, options_.lease);
    if (!moved.ok() || !*moved) return;  // Fenced: another holder goes on.
    retry = false;
    if (metrics_ != nullptr) {
      metrics_->delivered->Increment();
      metrics_->lag->Set(absl::ToDoubleSeconds(absl::Now() - row.at));
    }
  }
  // A full batch: more may wait, so it is due again at once.
  const bool more = static_cast<int>(events->size()) >= options_.batch;
  (void)hooks_->Release(held, more ? absl::ZeroDuration() : options_.poll);
}

void AddWebhookKeys(ConfigSchema& schema) {
  const WebhookOptions d;
  schema
      .Int("webhooks", "workers", d.workers,
           "Webhook deliveries this verifier makes at once (each holds one "
           "subscription's lease); 0: this verifier delivers none",
           0, 64)
      .String("webhooks", "ca_file", "",
              "PEM CA bundle receivers' certificates must chain to; empty: "
              "the system store")
      .Duration("webhooks", "poll_interval", d.poll,
                "How often idle workers look for new events")
      .Duration("webhooks", "lease", d.lease,
                "How long a verifier holds a subscription; another verifier "
                "takes over this long after one died (more than timeout)")
      .Duration("webhooks", "timeout", d.timeout,
                "One delivery (connect, TLS, request, answer), at most")
      .Duration("webhooks", "retry_base", d.retry_base,
                "Wait before the first retry; doubles per attempt, jittered")
      .Duration("webhooks", "retry_max", d.retry_max,
                "Longest wait between retries")
      .Duration("webhooks", "dead_letter_after", d.dead_letter_after,
                "An event failing this long is dead-lettered (skipped, "
                "counted in vouchctl webhooks get)");
}

std::unique_ptr<Webhooks> StartWebhooks(
    const Config& cfg, const std::string& owner, store::PgPool* admin_pool,
    int timeout_intervals, server::Metrics* metrics, AdminService& admin) {
  auto w = std::make_unique<Webhooks>();
  w->admin_hooks = std::make_unique<store::PgWebhookStore>(admin_pool);
  admin.webhooks = w->admin_hooks.get();
  WebhookOptions o;
  o.owner = owner;
  o.workers = static_cast<int>(cfg.GetInt("webhooks", "workers"));
  w->pool = std::make_unique<store::PgPool>(cfg.GetString("database", "url"),
                                            std::max(1, o.workers),
                                            store::PgOptionsFromConfig(cfg));
  w->hooks = std::make_unique<store::PgWebhookStore>(w->pool.get());
  w->events = std::make_unique<store::PgVerifierStore>(w->pool.get(),
                                                       timeout_intervals);
  o.ca_file = cfg.GetString("webhooks", "ca_file");
  o.poll = cfg.GetDuration("webhooks", "poll_interval");
  o.timeout = cfg.GetDuration("webhooks", "timeout");
  // The lease outlives one delivery and its database writes.
  o.lease = std::max(cfg.GetDuration("webhooks", "lease"),
                     o.timeout + absl::Seconds(1));
  o.retry_base = cfg.GetDuration("webhooks", "retry_base");
  o.retry_max =
      std::max(cfg.GetDuration("webhooks", "retry_max"), o.retry_base);
  o.dead_letter_after = cfg.GetDuration("webhooks", "dead_letter_after");
  w->delivery = std::make_unique<WebhookDelivery>(w->hooks.get(),
                                                  w->events.get(), o, metrics);
  w->delivery->Start();
  return w;
}

}  // namespace vouch::verifier
