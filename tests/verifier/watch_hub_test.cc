// The WatchHub against a real PostgreSQL ([pg]): many subscribers share one
// read per poll and see the same events in the same order, filters and
// resume tokens apply per subscriber, a reader that falls behind its bound
// is closed with RESOURCE_EXHAUSTED, the per-caller cap holds, and a token
// of another database incarnation ends with OUT_OF_RANGE. The poller is
// driven by hand (PollOnce), so nothing depends on timing.
#include "verifier/watch_hub.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/openssl_handle.h"
#include "core/ear/notice.h"
#include "harness/pg_cluster.h"
#include "store/migrate.h"
#include "store/pg_pool.h"
#include "store/pg_verifier_store.h"
#include "verifier/notice_hub.h"
#include "verifier/result_issuer.h"

namespace vouch {
namespace {

using testing::PgCluster;
using verifier::WatchFilter;
using verifier::WatchHub;
using verifier::WatchHubOptions;
using verifier::WatchSubscriber;

// Counts the reads the hub makes, passing them on to the real store.
class CountingEvents final : public store::EventStore {
 public:
  explicit CountingEvents(store::EventStore* real) : real_(real) {}
  absl::StatusOr<store::EventPosition> EventHorizon() override {
    return real_->EventHorizon();
  }
  absl::StatusOr<std::vector<store::EventRow>> EventsAfter(
      const std::string& tenant, store::EventPosition after,
      const std::vector<std::string>& agent_ids,
      const std::vector<core::AgentState>& states, bool verdicts,
      int limit) override {
    ++reads;
    return real_->EventsAfter(tenant, after, agent_ids, states, verdicts,
                              limit);
  }
  int reads = 0;

 private:
  store::EventStore* real_;
};

class CountingWaker final : public verifier::WatchWaker {
 public:
  void Wake() override { ++wakes; }
  int wakes = 0;
};

struct Db {
  Db() {
    absl::StatusOr<std::unique_ptr<PgCluster>> started = PgCluster::Start();
    REQUIRE(started.ok());
    pg = *std::move(started);
    pool = std::make_unique<store::PgPool>(pg->conninfo(), 2);
    REQUIRE(store::PrepareDatabase(*pool, absl::Seconds(30)).ok());
    store = std::make_unique<store::PgVerifierStore>(pool.get(), 3);
    store::PolicyRow policy;
    policy.tenant = "default";
    policy.name = "empty";
    policy.kind = 1;
    policy.content =
        R"({"meta": {"version": 1}, "release": 0, "digests": {},
        "excludes": [], "keyrings": {}, "ima": {"ignored_keyrings": [],
        "log_hash_alg": "sha1", "dm_policy": null}, "ima-buf": {},
        "verification-keys": ""})";
    REQUIRE(store->AddPolicy(policy).ok());
  }
  // Registers and enrolls agents watch-<from>..watch-<to - 1>: one
  // "enrolled" state change each.
  void Enroll(int from, int to) {
    for (int i = from; i < to; ++i) {
      const std::string id = absl::StrCat("watch-", i);
      absl::StatusOr<store::PgPool::Lease> db = pool->Acquire();
      REQUIRE(db.ok());
      REQUIRE((*db)
                  ->Exec("INSERT INTO registrations (agent_id, tenant, "
                         "ek_public, ek_sha256, ek_certificate, aik_public, "
                         "aik_name, activated_at) VALUES ($1, 'default', "
                         "'\\x00', sha256(convert_to($1::text, 'UTF8')), "
                         "'\\x00', '\\x01', '\\x02', now())",
                         {id})
                  .ok());
      store::Enrollment e;
      e.tenant = "default";
      e.agent_id = id;
      e.runtime_policy = "empty";
      e.interval = absl::Seconds(60);
      e.hash_alg = 11;
      REQUIRE(store->Enroll(e).ok());
    }
  }
  std::unique_ptr<PgCluster> pg;
  std::unique_ptr<store::PgPool> pool;
  std::unique_ptr<store::PgVerifierStore> store;
};

WatchFilter All() {
  WatchFilter f;
  f.tenant = "default";
  return f;
}

// Everything queued for `s` now; `end` set when the stream ended.
std::vector<v1::WatchEvent> Drain(WatchSubscriber& s,
                                  grpc::Status* end = nullptr) {
  std::vector<v1::WatchEvent> out;
  v1::WatchEvent e;
  grpc::Status status;
  while (true) {
    const WatchSubscriber::Next n = s.Pop(&e, &status);
    if (n == WatchSubscriber::Next::kEvent) {
      out.push_back(e);
      continue;
    }
    if (n == WatchSubscriber::Next::kEnd && end != nullptr) *end = status;
    return out;
  }
}

// Polls until no full page is left.
void PollAll(WatchHub& hub) {
  for (int i = 0; i < 100 && hub.PollOnce(); ++i) {
  }
}

TEST_CASE(
    "WatchHub: many subscribers share one read per poll and see the same "
    "events in order, with filters and resume tokens per subscriber",
    "[pg][fleet]") {
  Db db;
  CountingEvents events(db.store.get());
  WatchHubOptions o;
  o.max_per_caller = 100;
  o.page = 7;  // Several pages per burst.
  WatchHub hub(&events, o);
  constexpr int kSubscribers = 50;
  std::vector<CountingWaker> wakers(kSubscribers + 1);
  std::vector<std::shared_ptr<WatchSubscriber>> subs;
  for (int i = 0; i < kSubscribers; ++i) {
    auto s = hub.Subscribe("viewer", All(), std::nullopt, &wakers[i]);
    REQUIRE(s.ok());
    subs.push_back(*s);
  }
  WatchFilter one = All();
  one.agent_ids = {"watch-3"};
  auto filtered = hub.Subscribe("viewer", one, std::nullopt, &wakers.back());
  REQUIRE(filtered.ok());
  CHECK(hub.subscribers() == kSubscribers + 1);

  // Each starts with a heartbeat carrying its position; no event read yet.
  CHECK_FALSE(hub.PollOnce());
  for (const auto& s : subs) {
    std::vector<v1::WatchEvent> first = Drain(*s);
    REQUIRE(first.size() == 1);
    CHECK(first[0].has_heartbeat());
    CHECK_FALSE(first[0].resume_token().empty());
  }
  REQUIRE(Drain(**filtered).size() == 1);
  CHECK(wakers[0].wakes >= 1);

  db.Enroll(0, 20);
  events.reads = 0;
  PollAll(hub);
  // 20 events in pages of 7: 3 reads, plus at most one that finds nothing,
  // shared by all 51 subscribers (one group: same tenant, same position).
  CHECK(events.reads <= 4);
  std::vector<v1::WatchEvent> reference = Drain(*subs[0]);
  REQUIRE(reference.size() == 20);
  for (int i = 0; i < 20; ++i) {
    CHECK(reference[i].agent_id() == absl::StrCat("watch-", i));
    CHECK(reference[i].state_change().cause() ==
          v1::STATE_CHANGE_CAUSE_ENROLLED);
  }
  for (int k = 1; k < kSubscribers; ++k) {
    std::vector<v1::WatchEvent> got = Drain(*subs[k]);
    REQUIRE(got.size() == reference.size());
    for (size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i].event_id() == reference[i].event_id());
      CHECK(got[i].resume_token() == reference[i].resume_token());
    }
  }
  std::vector<v1::WatchEvent> only = Drain(**filtered);
  REQUIRE(only.size() == 1);
  CHECK(only[0].agent_id() == "watch-3");

  // Resuming from the 10th event's token gives the 11th onwards.
  CountingWaker late_waker;
  const std::string token = reference[9].resume_token();
  std::vector<std::string> parts = absl::StrSplit(token, ':');
  REQUIRE(parts.size() == 4);
  store::EventPosition from;
  from.incarnation = parts[1];
  REQUIRE(absl::SimpleAtoi(parts[2], &from.xid));
  REQUIRE(absl::SimpleAtoi(parts[3], &from.seq));
  auto late = hub.Subscribe("viewer", All(), from, &late_waker);
  REQUIRE(late.ok());
  PollAll(hub);
  std::vector<v1::WatchEvent> rest = Drain(**late);
  REQUIRE(rest.size() == 11);  // The heartbeat, then events 11..20.
  CHECK(rest[0].has_heartbeat());
  CHECK(rest[0].resume_token() == token);
  for (int i = 1; i <= 10; ++i) {
    CHECK(rest[i].event_id() == reference[9 + i].event_id());
  }

  for (const auto& s : subs) hub.Unsubscribe(s);
  hub.Unsubscribe(*filtered);
  hub.Unsubscribe(*late);
  CHECK(hub.subscribers() == 0);
}

TEST_CASE(
    "WatchHub: a slow reader is closed with RESOURCE_EXHAUSTED, a fast one "
    "is not, the per-caller cap holds, a foreign token is OUT_OF_RANGE",
    "[pg][fleet]") {
  Db db;
  WatchHubOptions o;
  o.max_per_caller = 2;
  o.page = 4;
  o.max_queued = 6;
  WatchHub hub(db.store.get(), o);
  CountingWaker fast_waker, slow_waker, third_waker;
  auto fast = hub.Subscribe("viewer", All(), std::nullopt, &fast_waker);
  auto slow = hub.Subscribe("viewer", All(), std::nullopt, &slow_waker);
  REQUIRE(fast.ok());
  REQUIRE(slow.ok());
  // The caller's cap; another caller is not held back.
  auto third = hub.Subscribe("viewer", All(), std::nullopt, &third_waker);
  CHECK(absl::IsResourceExhausted(third.status()));
  auto other = hub.Subscribe("admin", All(), std::nullopt, &third_waker);
  REQUIRE(other.ok());
  hub.Unsubscribe(*other);

  hub.PollOnce();  // Both start (a heartbeat each) at the horizon.
  CHECK(Drain(**fast).size() == 1);
  db.Enroll(0, 12);
  // The fast reader drains after every poll; the slow one never reads.
  size_t fast_got = 0;
  for (int i = 0; i < 10; ++i) {
    hub.PollOnce();
    fast_got += Drain(**fast).size();
  }
  CHECK(fast_got == 12);
  grpc::Status end;
  Drain(**slow, &end);
  CHECK(end.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  grpc::Status fast_end;
  Drain(**fast, &fast_end);
  CHECK(fast_end.ok());

  // A freed place can be taken again.
  hub.Unsubscribe(*slow);
  store::EventPosition foreign;
  foreign.incarnation = "another-database";
  foreign.xid = 1;
  foreign.seq = 1;
  auto stale = hub.Subscribe("viewer", All(), foreign, &slow_waker);
  REQUIRE(stale.ok());
  hub.PollOnce();
  grpc::Status stale_end;
  (void)Drain(**stale, &stale_end);
  CHECK(stale_end.error_code() == grpc::StatusCode::OUT_OF_RANGE);
  hub.Unsubscribe(*fast);
  hub.Unsubscribe(*stale);
}

// A stream's side of the NoticeHub: the notices it was handed, verified.
class RecordingSink final : public verifier::NoticeSink {
 public:
  void Notice(v1::VerifierMessage m) override {
    tokens.push_back(m.action_notice().token());
  }
  std::vector<std::string> tokens;
};

// Appends a committed state change of `agent` in tenant "default".
void StateChange(Db& db, const std::string& agent, const char* from,
                 const char* to) {
  absl::StatusOr<store::PgPool::Lease> c = db.pool->Acquire();
  REQUIRE(c.ok());
  REQUIRE((*c)->Exec("INSERT INTO agent_events (tenant, agent_id, "
                     "previous_state, state, cause) VALUES ('default', $1, "
                     "$2, $3, 'verdict')",
                     {agent, from, to})
              .ok());
}

TEST_CASE(
    "NoticeHub: own failures go to the agent, peers' to its tenant only "
    "when opted in, signed for each receiver and bounded per round",
    "[pg][actions]") {
  Db db;
  db.Enroll(0, 3);
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  REQUIRE(key);
  BioPtr bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0,
                                   nullptr, nullptr) == 1);
  char* pem = nullptr;
  const long pem_len = BIO_get_mem_data(bio.get(), &pem);
  auto issuer = verifier::ResultIssuer::Create(
      std::string(pem, static_cast<size_t>(pem_len)), {}, absl::Minutes(5),
      "test");
  REQUIRE(issuer.ok());
  absl::StatusOr<core::ear::KeySet> keys =
      core::ear::KeySet::FromJwks((*issuer)->jwks());
  REQUIRE(keys.ok());
  verifier::NoticeHubOptions o;
  o.settings_ttl = absl::ZeroDuration();  // Each round reads the setting.
  o.thread = false;                       // Driven by hand.
  verifier::NoticeHub hub(db.store.get(), db.store.get(), issuer->get(), o);
  RecordingSink s0, s1, elsewhere;
  hub.Add(&s0, "default", "watch-0");
  hub.Add(&s1, "default", "watch-1");
  hub.Add(&elsewhere, "other", "x-1");
  const absl::Time now = absl::Now();
  hub.PollOnce(now);  // From the log's end.

  // Verifies each token for `audience`: the (kind, subject) pairs.
  auto told = [&](RecordingSink& s, const std::string& audience) {
    std::vector<std::pair<core::ear::NoticeKind, std::string>> out;
    for (const std::string& t : s.tokens) {
      absl::StatusOr<core::ear::Notice> n =
          core::ear::VerifyNotice(t, *keys, audience, now);
      REQUIRE(n.ok());
      out.emplace_back(n->kind, n->subject);
    }
    s.tokens.clear();
    return out;
  };
  using K = core::ear::NoticeKind;

  // Peer notices off (the default): only the agent itself is told.
  StateChange(db, "watch-0", "pass", "fail");
  hub.PollOnce(now);
  CHECK(told(s0, "watch-0") ==
        std::vector<std::pair<K, std::string>>{{K::kOwnFailure, "watch-0"}});
  CHECK(s1.tokens.empty());
  CHECK(elsewhere.tokens.empty());

  // A latched failure is not told again; a recovery is not a failure.
  StateChange(db, "watch-0", "fail", "timeout");
  StateChange(db, "watch-1", "pending", "pass");
  hub.PollOnce(now);
  CHECK(s0.tokens.empty());
  CHECK(s1.tokens.empty());

  // Opted in: the tenant's other agents are told, another tenant is not.
  REQUIRE(db.store->SetTenantSettings({"default", true}).ok());
  StateChange(db, "watch-2", "pass", "timeout");
  hub.PollOnce(now);
  CHECK(told(s0, "watch-0") ==
        std::vector<std::pair<K, std::string>>{{K::kPeerFailure, "watch-2"}});
  CHECK(told(s1, "watch-1") ==
        std::vector<std::pair<K, std::string>>{{K::kPeerFailure, "watch-2"}});
  CHECK(elsewhere.tokens.empty());

  // A burst: each stream gets the newest kMaxNoticesPerRound of a round.
  for (int i = 0; i < 40; ++i) {
    StateChange(db, absl::StrCat("burst-", i), "pass", "fail");
  }
  hub.PollOnce(now);
  std::vector<std::pair<K, std::string>> burst = told(s1, "watch-1");
  REQUIRE(burst.size() == verifier::kMaxNoticesPerRound);
  CHECK(burst.front().second ==
        absl::StrCat("burst-", 40 - verifier::kMaxNoticesPerRound));
  CHECK(burst.back().second == "burst-39");
  CHECK(told(s0, "watch-0").size() == verifier::kMaxNoticesPerRound);

  // A removed stream is not called again.
  hub.Remove(&s1);
  StateChange(db, "watch-0", "pass", "fail");
  hub.PollOnce(now);
  CHECK(s1.tokens.empty());
  CHECK(told(s0, "watch-0").size() == 1);
  hub.Remove(&s0);
  hub.Remove(&elsewhere);
}

TEST_CASE(
    "WatchHub: a shadow's would-be failure is an event only for subscribers "
    "that asked for it, whatever their state filter",
    "[pg][fleet]") {
  Db db;
  db.Enroll(0, 1);
  store::PolicyRow next;
  next.tenant = "default";
  next.name = "empty-next";
  next.kind = 1;
  next.content = db.store->GetPolicy("default", "empty", 0)->content;
  REQUIRE(db.store->AddPolicy(next).ok());
  store::RolloutRow shadow;
  shadow.tenant = "default";
  shadow.policy = "empty";
  shadow.candidate = "empty-next";
  REQUIRE(db.store->SetRollout(shadow).ok());
  WatchHub hub(db.store.get(), WatchHubOptions());
  CountingWaker w1, w2, w3;
  WatchFilter with = All();
  with.shadows = true;
  WatchFilter failing_only = with;
  failing_only.states = {v1::ATTESTATION_STATE_FAIL};
  auto plain = hub.Subscribe("viewer", All(), std::nullopt, &w1);
  auto shadows = hub.Subscribe("viewer", with, std::nullopt, &w2);
  auto failing = hub.Subscribe("viewer", failing_only, std::nullopt, &w3);
  REQUIRE((plain.ok() && shadows.ok() && failing.ok()));
  PollAll(hub);
  for (auto* s : {&*plain, &*shadows, &*failing}) Drain(**s);

  absl::StatusOr<store::Takeover> t =
      db.store->TakeOver("default", "watch-0", "v1", "", absl::Seconds(30));
  REQUIRE(t.ok());
  store::VerdictCommit c;
  c.tenant = "default";
  c.agent_id = "watch-0";
  c.owner = "v1";
  c.epoch = t->agent.epoch;
  c.aik_name = "\x02";
  c.attestation_id = "shadowed-1";
  c.nonce = "shadowed-1";
  c.passed = true;
  c.evidence_sha256 = "x";
  c.lease = absl::Seconds(30);
  v1::Verdict listed;
  v1::Failure* f = listed.add_failures();
  f->set_code(v1::FAILURE_CODE_IMA_FILE_NOT_IN_POLICY);
  f->set_path("/usr/bin/new");
  store::ShadowCommit& sh = c.shadow.emplace();
  sh.policy = "empty";
  sh.candidate = "empty-next";
  sh.candidate_version = 1;
  sh.entries_checked = 4;
  sh.failure_count = 1;
  sh.failures = listed.SerializeAsString();
  std::vector<absl::StatusOr<store::VerdictApplied>> done =
      db.store->CommitVerdicts({&c});
  REQUIRE(done.size() == 1);
  REQUIRE(done[0].ok());
  REQUIRE_FALSE(done[0]->fenced);
  PollAll(hub);

  // Without include_shadow: the state change (pending -> pass) only.
  std::vector<v1::WatchEvent> got = Drain(**plain);
  REQUIRE(got.size() == 1);
  CHECK(got[0].has_state_change());
  // With it: the state change, then the shadow's judgement.
  got = Drain(**shadows);
  REQUIRE(got.size() == 2);
  CHECK(got[0].has_state_change());
  REQUIRE(got[1].has_shadow_failure());
  CHECK(got[1].agent_id() == "watch-0");
  const v1::ShadowFailure& sf = got[1].shadow_failure();
  CHECK(sf.policy() == "empty");
  CHECK(sf.candidate() == "empty-next");
  CHECK(sf.candidate_version() == 1);
  CHECK(sf.failure_count() == 1);
  REQUIRE(sf.failures_size() == 1);
  CHECK(sf.failures(0).path() == "/usr/bin/new");
  CHECK(got[1].event_id() != got[0].event_id());
  // A state filter does not hide it (the agent's state did not change).
  got = Drain(**failing);
  REQUIRE(got.size() == 1);
  CHECK(got[0].has_shadow_failure());
  // A passing shadow round is no event.
  c.attestation_id = c.nonce = "shadowed-2";
  c.shadow->failure_count = 0;
  c.shadow->failures.clear();
  REQUIRE(db.store->CommitVerdicts({&c})[0].ok());
  PollAll(hub);
  CHECK(Drain(**shadows).empty());
  for (auto* s : {&*plain, &*shadows, &*failing}) hub.Unsubscribe(*s);
}

}  // namespace
}  // namespace vouch
