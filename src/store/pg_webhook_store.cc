#include "store/pg_webhook_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "store/pg_columns.h"

namespace vouch::store {
namespace {

// The columns every read returns, in the order RowOf parses.
constexpr char kColumns[] =
    "tenant, name, url, array_to_string(states, ','), secret, created_by, "
    "(extract(epoch from created_at) * 1000000)::bigint, cursor_xid::text, "
    "cursor_seq, incarnation, COALESCE(owner, ''), epoch, "
    "(extract(epoch from next_attempt_at) * 1000000)::bigint, attempts, "
    "(extract(epoch from failing_since) * 1000000)::bigint, last_error, "
    "(extract(epoch from last_attempt_at) * 1000000)::bigint, "
    "(extract(epoch from last_delivered_at) * 1000000)::bigint, delivered, "
    "failed, dead_lettered, last_dead_letter_id";

// A timestamp column in Unix microseconds; NULL and +-infinity as nullopt.
absl::StatusOr<std::optional<absl::Time>> Time(
    const std::optional<std::string>& v) {
  if (!v) return std::optional<absl::Time>();
  int64_t us = 0;
  if (!absl::SimpleAtoi(*v, &us)) return std::optional<absl::Time>();
  return std::optional<absl::Time>(absl::FromUnixMicros(us));
}

absl::StatusOr<WebhookSubscription> RowOf(const std::vector<PgParam>& r) {
  WebhookSubscription s;
  s.tenant = r[0].value_or("");
  s.name = r[1].value_or("");
  s.url = r[2].value_or("");
  for (absl::string_view n :
       absl::StrSplit(r[3].value_or(""), ',', absl::SkipEmpty())) {
    s.states.push_back(core::ParseAgentState(n));
  }
  s.secret = r[4].value_or("");
  s.created_by = r[5].value_or("");
  VOUCH_ASSIGN_OR_RETURN(std::optional<absl::Time> created, Time(r[6]));
  s.created_at = created.value_or(absl::UnixEpoch());
  VOUCH_ASSIGN_OR_RETURN(s.cursor.xid, Int<uint64_t>(r[7]));
  VOUCH_ASSIGN_OR_RETURN(s.cursor.seq, Int<int64_t>(r[8]));
  s.cursor.incarnation = r[9].value_or("");
  s.owner = r[10].value_or("");
  VOUCH_ASSIGN_OR_RETURN(s.epoch, Int<int64_t>(r[11]));
  VOUCH_ASSIGN_OR_RETURN(std::optional<absl::Time> next, Time(r[12]));
  s.next_attempt_at = next.value_or(absl::InfinitePast());
  VOUCH_ASSIGN_OR_RETURN(s.attempts, Int<int>(r[13]));
  VOUCH_ASSIGN_OR_RETURN(s.failing_since, Time(r[14]));
  s.last_error = r[15].value_or("");
  VOUCH_ASSIGN_OR_RETURN(s.last_attempt_at, Time(r[16]));
  VOUCH_ASSIGN_OR_RETURN(s.last_delivered_at, Time(r[17]));
  VOUCH_ASSIGN_OR_RETURN(s.delivered, Int<int64_t>(r[18]));
  VOUCH_ASSIGN_OR_RETURN(s.failed, Int<int64_t>(r[19]));
  VOUCH_ASSIGN_OR_RETURN(s.dead_lettered, Int<int64_t>(r[20]));
  s.last_dead_letter_id = r[21].value_or("");
  return s;
}

// Seconds for make_interval; an infinite duration as about 30 years.
std::string Seconds(absl::Duration d) {
  return absl::StrCat(
      absl::ToDoubleSeconds(std::min(d, absl::Hours(24 * 365 * 30))));
}

std::string StateNames(const std::vector<core::AgentState>& states) {
  std::vector<std::string> names;
  for (core::AgentState s : states) {
    names.emplace_back(core::AgentStateName(s));
  }
  return ToTextArray(names);
}

}  // namespace

absl::StatusOr<WebhookSubscription> PgWebhookStore::Add(
    const WebhookSubscription& sub, const EventPosition& start) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  absl::StatusOr<PgRows> rows = db->Query(
      absl::StrCat("INSERT INTO webhook_subscriptions (tenant, name, url, "
                   "states, secret, created_by, cursor_xid, cursor_seq, "
                   "incarnation) VALUES ($1, $2, $3, $4::text[], $5, $6, "
                   "$7::xid8, $8, $9) RETURNING ",
                   kColumns),
      {sub.tenant, sub.name, sub.url, StateNames(sub.states), sub.secret,
       sub.created_by, absl::StrCat(start.xid), absl::StrCat(start.seq),
       start.incarnation});
  if (absl::IsAlreadyExists(rows.status())) {
    return absl::AlreadyExistsError(
        absl::StrCat("webhook ", sub.name, " already exists"));
  }
  if (!rows.ok()) return rows.status();
  return RowOf(rows->rows.at(0));
}

absl::StatusOr<WebhookSubscription> PgWebhookStore::Get(
    const std::string& tenant, const std::string& name) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(absl::StrCat("SELECT ", kColumns,
                             " FROM webhook_subscriptions WHERE tenant = $1 "
                             "AND name = $2"),
                {tenant, name}));
  if (rows.rows.empty()) {
    return absl::NotFoundError(absl::StrCat("no webhook named ", name));
  }
  return RowOf(rows.rows[0]);
}

absl::StatusOr<std::vector<WebhookSubscription>> PgWebhookStore::List(
    const std::string& tenant, const std::string& after, int limit) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(absl::StrCat("SELECT ", kColumns,
                             " FROM webhook_subscriptions WHERE tenant = $1 "
                             "AND name > $2 ORDER BY name LIMIT $3"),
                {tenant, after, absl::StrCat(limit)}));
  std::vector<WebhookSubscription> out;
  for (const auto& r : rows.rows) {
    VOUCH_ASSIGN_OR_RETURN(WebhookSubscription s, RowOf(r));
    out.push_back(std::move(s));
  }
  return out;
}

absl::Status PgWebhookStore::Delete(const std::string& tenant,
                                    const std::string& name) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      int64_t n,
      db->Exec("DELETE FROM webhook_subscriptions WHERE tenant = $1 AND "
               "name = $2",
               {tenant, name}));
  if (n == 0) {
    return absl::NotFoundError(absl::StrCat("no webhook named ", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<WebhookSubscription>> PgWebhookStore::Claim(
    const std::string& owner, absl::Duration lease) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  // SKIP LOCKED: workers claiming at the same moment take different rows.
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(
          absl::StrCat(
              "UPDATE webhook_subscriptions SET owner = $1, epoch = epoch + "
              "1, lease_until = now() + make_interval(secs => $2::float8) "
              "WHERE (tenant, name) = (SELECT tenant, name FROM "
              "webhook_subscriptions WHERE lease_until < now() AND "
              "next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 1 FOR "
              "UPDATE SKIP LOCKED) RETURNING ",
              kColumns),
          {owner, Seconds(lease)}));
  if (rows.rows.empty()) return std::optional<WebhookSubscription>();
  VOUCH_ASSIGN_OR_RETURN(WebhookSubscription s, RowOf(rows.rows[0]));
  return std::optional<WebhookSubscription>(std::move(s));
}

absl::StatusOr<bool> PgWebhookStore::Delivered(const WebhookSubscription& held,
                                               const EventPosition& position,
                                               absl::Duration lease) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      int64_t n,
      db->Exec("UPDATE webhook_subscriptions SET cursor_xid = $4::xid8, "
               "cursor_seq = $5, attempts = 0, failing_since = NULL, "
               "last_error = '', last_attempt_at = now(), last_delivered_at "
               "= now(), delivered = delivered + 1, lease_until = now() + "
               "make_interval(secs => $6::float8) WHERE tenant = $1 AND name "
               "= $2 AND epoch = $3",
               {held.tenant, held.name, absl::StrCat(held.epoch),
                absl::StrCat(position.xid), absl::StrCat(position.seq),
                Seconds(lease)}));
  return n == 1;
}

absl::StatusOr<WebhookFailure> PgWebhookStore::Failed(
    const WebhookSubscription& held, const EventPosition& position,
    const std::string& event_id, const std::string& error,
    absl::Duration retry_in, absl::Duration dead_letter_after) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  // One statement decides: failing longer than dead_letter_after (counted
  // from the first failed attempt of this event) moves the cursor past it.
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(
          "UPDATE webhook_subscriptions SET "
          "last_error = $4, last_attempt_at = now(), failed = failed + 1, "
          "dead_lettered = dead_lettered + CASE WHEN dead THEN 1 ELSE 0 END, "
          "last_dead_letter_id = CASE WHEN dead THEN $7 ELSE "
          "last_dead_letter_id END, "
          "cursor_xid = CASE WHEN dead THEN $8::xid8 ELSE cursor_xid END, "
          "cursor_seq = CASE WHEN dead THEN $9::bigint ELSE cursor_seq END, "
          "attempts = CASE WHEN dead THEN 0 ELSE attempts + 1 END, "
          "failing_since = CASE WHEN dead THEN NULL ELSE "
          "COALESCE(failing_since, now()) END, "
          "next_attempt_at = CASE WHEN dead THEN now() ELSE now() + "
          "make_interval(secs => $5::float8) END, lease_until = now() "
          "FROM (SELECT failing_since IS NOT NULL AND failing_since < now() - "
          "make_interval(secs => $6::float8) AS dead FROM "
          "webhook_subscriptions WHERE tenant = $1 AND name = $2) d "
          "WHERE tenant = $1 AND name = $2 AND epoch = $3 RETURNING d.dead",
          {held.tenant, held.name, absl::StrCat(held.epoch), error,
           Seconds(retry_in), Seconds(dead_letter_after), event_id,
           absl::StrCat(position.xid), absl::StrCat(position.seq)}));
  if (rows.rows.empty()) return WebhookFailure::kFenced;
  return rows.rows[0][0].value_or("f") == "t" ? WebhookFailure::kDeadLettered
                                              : WebhookFailure::kRetry;
}

absl::Status PgWebhookStore::Release(const WebhookSubscription& held,
                                     absl::Duration due_in) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return db
      ->Exec(
          "UPDATE webhook_subscriptions SET lease_until = now(), "
          "next_attempt_at = now() + make_interval(secs => $4::float8) "
          "WHERE tenant = $1 AND name = $2 AND epoch = $3",
          {held.tenant, held.name, absl::StrCat(held.epoch), Seconds(due_in)})
      .status();
}

}  // namespace vouch::store
