// Webhook subscriptions in PostgreSQL ([pg][store][webhooks]): add, get,
// list and delete; one lease holder at a time, its writes fenced by the
// epoch; failures back off, and an event failing longer than the
// dead-letter age is skipped and counted.
#include "store/pg_webhook_store.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "harness/pg_cluster.h"
#include "store/migrate.h"
#include "store/pg_pool.h"

namespace vouch {
namespace {

using store::EventPosition;
using store::WebhookFailure;
using store::WebhookSubscription;
using testing::PgCluster;

struct Db {
  std::unique_ptr<PgCluster> pg;
  std::unique_ptr<store::PgPool> pool;
  std::unique_ptr<store::PgWebhookStore> hooks;
  Db() {
    absl::StatusOr<std::unique_ptr<PgCluster>> started = PgCluster::Start();
    REQUIRE(started.ok());
    pg = *std::move(started);
    pool = std::make_unique<store::PgPool>(pg->conninfo(), 4);
    REQUIRE(store::PrepareDatabase(*pool, absl::Seconds(30)).ok());
    hooks = std::make_unique<store::PgWebhookStore>(pool.get());
  }
  void Exec(const std::string& sql) {
    auto db = pool->Acquire();
    REQUIRE(db.ok());
    REQUIRE((*db)->Exec(sql, {}).ok());
  }
};

WebhookSubscription Sub(const std::string& tenant, const std::string& name) {
  WebhookSubscription s;
  s.tenant = tenant;
  s.name = name;
  s.url = "https://hooks.example/" + name;
  s.states = {v1::ATTESTATION_STATE_FAIL, v1::ATTESTATION_STATE_TIMEOUT};
  s.secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0";
  s.created_by = "admin";
  return s;
}

TEST_CASE("webhook store: subscriptions per tenant", "[pg][store][webhooks]") {
  Db db;
  const EventPosition start{42, 0, "inc"};
  absl::StatusOr<WebhookSubscription> a = db.hooks->Add(Sub("t1", "a"), start);
  INFO(a.status().ToString());
  REQUIRE(a.ok());
  CHECK(a->cursor.xid == 42);
  CHECK(a->cursor.incarnation == "inc");
  CHECK(a->states == Sub("t1", "a").states);
  CHECK(a->delivered == 0);
  CHECK(absl::IsAlreadyExists(db.hooks->Add(Sub("t1", "a"), start).status()));
  REQUIRE(db.hooks->Add(Sub("t2", "a"), start).ok());  // another tenant
  REQUIRE(db.hooks->Add(Sub("t1", "b"), start).ok());
  absl::StatusOr<std::vector<WebhookSubscription>> list =
      db.hooks->List("t1", "", 10);
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].name == "a");
  CHECK((*list)[1].name == "b");
  CHECK(db.hooks->List("t1", "a", 10)->size() == 1);
  CHECK(absl::IsNotFound(db.hooks->Get("t3", "a").status()));
  REQUIRE(db.hooks->Delete("t1", "a").ok());
  CHECK(absl::IsNotFound(db.hooks->Delete("t1", "a")));
  CHECK(db.hooks->Get("t2", "a").ok());
}

TEST_CASE(
    "webhook store: one lease holder, fenced writes, back-off, dead "
    "letters",
    "[pg][store][webhooks]") {
  Db db;
  REQUIRE(db.hooks->Add(Sub("t1", "a"), EventPosition{10, 0, ""}).ok());
  absl::StatusOr<std::optional<WebhookSubscription>> h1 =
      db.hooks->Claim("h1", absl::Minutes(1));
  REQUIRE(h1.ok());
  REQUIRE(h1->has_value());
  // Leased: nobody else gets it.
  absl::StatusOr<std::optional<WebhookSubscription>> h2 =
      db.hooks->Claim("h2", absl::Minutes(1));
  REQUIRE(h2.ok());
  CHECK(!h2->has_value());
  const EventPosition e1{11, 5, ""};
  CHECK(*db.hooks->Delivered(**h1, e1, absl::Minutes(1)));

  // The lease runs out (the holder died): another verifier takes it, and
  // the old holder's writes are fenced.
  db.Exec(
      "UPDATE webhook_subscriptions SET lease_until = now() - "
      "interval '1 second'");
  h2 = db.hooks->Claim("h2", absl::Minutes(1));
  REQUIRE(h2.ok());
  REQUIRE(h2->has_value());
  CHECK((*h2)->epoch > (*h1)->epoch);
  CHECK((*h2)->cursor.xid == 11);
  CHECK((*h2)->cursor.seq == 5);
  CHECK(
      !*db.hooks->Delivered(**h1, EventPosition{12, 6, ""}, absl::Minutes(1)));
  CHECK(*db.hooks->Failed(**h1, EventPosition{12, 6, ""}, "evt", "late",
                          absl::Seconds(1),
                          absl::Hours(1)) == WebhookFailure::kFenced);

  // A failure: attempts, error, failing_since, and not due until the
  // back-off passed.
  const EventPosition e2{12, 6, ""};
  CHECK(*db.hooks->Failed(**h2, e2, "evt-12-6", "HTTP 503", absl::Hours(1),
                          absl::Hours(24)) == WebhookFailure::kRetry);
  absl::StatusOr<WebhookSubscription> got = db.hooks->Get("t1", "a");
  REQUIRE(got.ok());
  CHECK(got->attempts == 1);
  CHECK(got->last_error == "HTTP 503");
  CHECK(got->failing_since.has_value());
  CHECK(got->next_attempt_at > absl::Now() + absl::Minutes(30));
  CHECK(got->cursor.seq == 5);  // not moved
  CHECK(got->failed == 1);
  CHECK(!db.hooks->Claim("h1", absl::Minutes(1))->has_value());

  // Failing longer than the dead-letter age: skipped and counted.
  db.Exec(
      "UPDATE webhook_subscriptions SET next_attempt_at = now(), "
      "failing_since = now() - interval '2 hours'");
  absl::StatusOr<std::optional<WebhookSubscription>> h3 =
      db.hooks->Claim("h3", absl::Minutes(1));
  REQUIRE(h3.ok());
  REQUIRE(h3->has_value());
  CHECK((*h3)->attempts == 1);
  CHECK(*db.hooks->Failed(**h3, e2, "evt-12-6", "HTTP 503", absl::Hours(1),
                          absl::Hours(1)) == WebhookFailure::kDeadLettered);
  got = db.hooks->Get("t1", "a");
  REQUIRE(got.ok());
  CHECK(got->dead_lettered == 1);
  CHECK(got->last_dead_letter_id == "evt-12-6");
  CHECK(got->cursor.xid == 12);
  CHECK(got->cursor.seq == 6);
  CHECK(got->attempts == 0);
  CHECK(!got->failing_since.has_value());
  // Due again at once for the next event.
  absl::StatusOr<std::optional<WebhookSubscription>> h4 =
      db.hooks->Claim("h4", absl::Minutes(1));
  REQUIRE(h4.ok());
  CHECK(h4->has_value());
  // Release: free for the next claim after `due_in`.
  REQUIRE(db.hooks->Release(**h4, absl::Hours(1)).ok());
  CHECK(!db.hooks->Claim("h5", absl::Minutes(1))->has_value());
}

}  // namespace
}  // namespace vouch
