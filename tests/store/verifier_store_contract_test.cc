// The verifier store's contract, run against PostgreSQL (PgVerifierStore,
// [pg]) and its in-memory twin (InMemoryVerifierStore, [core]): the same
// calls, the same answers. A rule the twin gets wrong makes the session's
// unit tests lie, so every rule the pool relies on is here: the epoch
// fence, latched failures, one answer per verdict in a batch, nonces used
// once, the state as read (no stale pass), the sweeper, events in commit
// order, policies and their versions, and that a stream holds its agent
// only while its AIK is the registration's active one.
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "harness/pg_cluster.h"
#include "store/in_memory_verifier_store.h"
#include "store/migrate.h"
#include "store/pg_pool.h"
#include "store/pg_verifier_store.h"

namespace vouch {
namespace {

using core::AgentState;
using testing::PgCluster;

// What the contract needs beyond the interfaces: registrations (the
// registrar's table), moving an agent's clock back, reading a lease.
class Fixture {
 public:
  virtual ~Fixture() = default;
  virtual store::PolicyStore& policies() = 0;
  virtual store::AgentStore& agents() = 0;
  virtual store::EventStore& events() = 0;
  virtual void Register(const std::string& agent_id) = 0;
  // The registrar activated another AIK for the agent / deleted it.
  virtual void Reactivate(const std::string& agent_id,
                          const std::string& aik_name) = 0;
  virtual void Deregister(const std::string& agent_id) = 0;
  virtual void Backdate(const std::string& agent_id, absl::Duration d) = 0;
  virtual absl::Time LeaseUntil(const std::string& agent_id) = 0;
  // The record was committed at `at` (a partition must exist for it in
  // PostgreSQL: today .. today + 8 days).
  virtual void SetRecordTime(const std::string& attestation_id,
                             absl::Time at) = 0;
};

class PgFixture final : public Fixture {
 public:
  PgFixture() {
    absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
    REQUIRE(pg.ok());
    pg_ = *std::move(pg);
    pool_ = std::make_unique<store::PgPool>(pg_->conninfo(), 4);
    REQUIRE(store::PrepareDatabase(*pool_, absl::Seconds(30)).ok());
    store_ = std::make_unique<store::PgVerifierStore>(pool_.get(), 2);
  }
  store::PolicyStore& policies() override { return *store_; }
  store::AgentStore& agents() override { return *store_; }
  store::EventStore& events() override { return *store_; }
  void Register(const std::string& id) override {
    Exec(
        "INSERT INTO registrations (agent_id, tenant, ek_public, ek_sha256, "
        "ek_certificate, aik_public, aik_name, activated_at) VALUES ($1, "
        "'default', '\\x00', sha256(convert_to($1::text, 'UTF8')), '\\x00', "
        "'\\x01', '\\x02', now())",
        {id});
  }
  void Reactivate(const std::string& id, const std::string& aik) override {
    Exec(
        "UPDATE registrations SET aik_name = $2, activated_at = now() WHERE "
        "agent_id = $1",
        {id, store::ToBytea(aik)});
  }
  void Deregister(const std::string& id) override {
    Exec("DELETE FROM registrations WHERE agent_id = $1", {id});
  }
  void Backdate(const std::string& id, absl::Duration d) override {
    Exec(absl::StrCat("UPDATE agent_state SET enrolled_at = enrolled_at - "
                      "make_interval(secs => ",
                      absl::ToDoubleSeconds(d),
                      "), last_verdict_at = last_verdict_at - "
                      "make_interval(secs => ",
                      absl::ToDoubleSeconds(d), ") WHERE agent_id = $1"),
         {id});
  }
  absl::Time LeaseUntil(const std::string& id) override {
    absl::StatusOr<store::PgPool::Lease> db = pool_->Acquire();
    REQUIRE(db.ok());
    absl::StatusOr<store::PgRows> rows = (*db)->Query(
        "SELECT (extract(epoch from lease_until) * 1000000)::bigint FROM "
        "agent_state WHERE agent_id = $1",
        {id});
    REQUIRE(rows.ok());
    if (rows->rows.empty() || !rows->rows[0][0]) return absl::InfinitePast();
    return absl::FromUnixMicros(std::stoll(*rows->rows[0][0]));
  }

  void SetRecordTime(const std::string& id, absl::Time at) override {
    Exec(
        "UPDATE attestations SET at = to_timestamp(0) + make_interval(secs "
        "=> $2::bigint) WHERE attestation_id = $1",
        {id, absl::StrCat(absl::ToUnixSeconds(at))});
  }

  void Exec(const std::string& sql, std::vector<store::PgParam> params) {
    absl::StatusOr<store::PgPool::Lease> db = pool_->Acquire();
    REQUIRE(db.ok());
    absl::StatusOr<int64_t> n = (*db)->Exec(sql, params);
    INFO(n.status().message());
    REQUIRE(n.ok());
  }

 private:
  std::unique_ptr<PgCluster> pg_;
  std::unique_ptr<store::PgPool> pool_;
  std::unique_ptr<store::PgVerifierStore> store_;
};

class MemoryFixture final : public Fixture {
 public:
  MemoryFixture() : store_(2, [] { return absl::Now(); }) {}
  store::PolicyStore& policies() override { return store_; }
  store::AgentStore& agents() override { return store_; }
  store::EventStore& events() override { return store_; }
  void Register(const std::string& id) override {
    store_.SetRegistration("default", id, "\x01", "\x02");
  }
  void Reactivate(const std::string& id, const std::string& aik) override {
    store_.SetRegistration("default", id, "\x01", aik);
  }
  void Deregister(const std::string& id) override {
    store_.RemoveRegistration("default", id);
  }
  void Backdate(const std::string& id, absl::Duration d) override {
    store_.Backdate(id, d);
  }
  absl::Time LeaseUntil(const std::string& id) override {
    return store_.lease_until(id);
  }
  void SetRecordTime(const std::string& id, absl::Time at) override {
    store_.SetRecordTime(id, at);
  }

 private:
  store::InMemoryVerifierStore store_;
};

store::PolicyRow Policy(const std::string& name, int kind = 1) {
  store::PolicyRow p;
  p.tenant = "default";
  p.name = name;
  p.kind = kind;
  p.content = "{}";
  p.sha256 = std::string(32, 's');
  return p;
}

store::VerdictCommit Commit(int64_t epoch, bool passed, uint64_t ima_next,
                            const std::string& nonce) {
  store::VerdictCommit c;
  c.tenant = "default";
  c.agent_id = "a1";
  c.owner = absl::StrCat("v", epoch);
  c.epoch = epoch;
  c.aik_name = "\x02";  // The fixture's registration.
  c.attestation_id = nonce;
  c.nonce = nonce;
  c.passed = passed;
  c.evidence_sha256 = "x";
  c.lease = absl::Seconds(30);
  c.reset_count = 3;
  c.ima_from = 0;
  c.ima_next_entry = ima_next;
  c.pcr10_sha1 = std::string(20, 'a');
  c.pcr10_sha256 = std::string(32, 'b');
  c.ima_learned_keys = "keys learned by " + nonce;  // Opaque to the store.
  return c;
}

// Enrolls a1 in "default" with these policies and a 5 s interval.
void EnrollA1(store::AgentStore& s, const std::string& runtime_policy,
              const std::string& boot_policy) {
  store::Enrollment e;
  e.tenant = "default";
  e.agent_id = "a1";
  e.runtime_policy = runtime_policy;
  e.boot_policy = boot_policy;
  e.interval = absl::Seconds(5);
  REQUIRE(s.Enroll(e).ok());
}

absl::StatusOr<store::VerdictApplied> CommitOne(store::AgentStore& s,
                                                const store::VerdictCommit& c) {
  std::vector<absl::StatusOr<store::VerdictApplied>> r = s.CommitVerdicts({&c});
  REQUIRE(r.size() == 1);
  return r[0];
}

void PolicyContract(Fixture& f) {
  store::PolicyStore& s = f.policies();
  REQUIRE(s.AddPolicy(Policy("p")).ok());
  CHECK(absl::IsAlreadyExists(s.AddPolicy(Policy("p")).status()));
  CHECK(absl::IsNotFound(s.UpdatePolicy(Policy("q"), 0).status()));
  absl::StatusOr<store::PolicyRow> v2 = s.UpdatePolicy(Policy("p", 2), 1);
  REQUIRE(v2.ok());
  CHECK(v2->version == 2);
  CHECK(v2->kind == 1);  // The kind stays the first version's.
  CHECK(absl::IsAborted(s.UpdatePolicy(Policy("p"), 1).status()));
  CHECK(s.NewestPolicyVersion("default", "p").value() ==
        std::make_pair(uint64_t{2}, 1));
  CHECK(s.GetPolicy("default", "p", 1)->version == 1);
  CHECK(s.GetPolicy("default", "p", 0)->version == 2);
  CHECK(absl::IsNotFound(s.GetPolicy("other", "p", 0).status()));
  REQUIRE(s.AddPolicy(Policy("a")).ok());
  absl::StatusOr<std::vector<store::PolicyRow>> list =
      s.ListPolicies("default", "", 10);
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  CHECK(list->at(0).name == "a");
  CHECK(list->at(1).version == 2);
  CHECK(list->at(1).content.empty());
  CHECK(s.ListPolicies("default", "a", 10)->size() == 1);
  REQUIRE(s.RemovePolicy("default", "p").ok());
  CHECK(absl::IsNotFound(s.RemovePolicy("default", "p")));
  CHECK(absl::IsNotFound(s.NewestPolicyVersion("default", "p").status()));
  CHECK(absl::IsNotFound(s.GetPolicy("default", "p", 0).status()));
  CHECK(s.GetPolicy("default", "p", 2).ok());  // Kept for the record.
  CHECK(s.AddPolicy(Policy("p")).value().version == 3);

  // Provenance is kept with each version; the history lists every version
  // (removed ones too), newest first, without content.
  store::PolicyRow fetched = Policy("p");
  fetched.release = 7;
  fetched.origin = "url:https://example.org/p.json";
  fetched.source_sha256 = std::string(32, '\x07');
  fetched.signer_key_id = "key-1";
  REQUIRE(s.UpdatePolicy(fetched, 3).ok());
  absl::StatusOr<store::PolicyRow> got = s.GetPolicy("default", "p", 4);
  REQUIRE(got.ok());
  CHECK(got->release == 7);
  CHECK(got->origin == fetched.origin);
  CHECK(got->source_sha256 == fetched.source_sha256);
  CHECK(got->signer_key_id == "key-1");
  absl::StatusOr<std::vector<store::PolicyRow>> history =
      s.PolicyHistory("default", "p", 3);
  REQUIRE(history.ok());
  REQUIRE(history->size() == 3);
  CHECK(history->at(0).version == 4);
  CHECK(history->at(0).release == 7);
  CHECK(history->at(0).content.empty());
  CHECK(history->at(2).version == 2);
  CHECK(history->at(2).removed);
  CHECK(s.PolicyHistory("default", "p", 100)->size() == 4);
  CHECK(absl::IsNotFound(s.PolicyHistory("default", "nope", 10).status()));
  CHECK(absl::IsNotFound(s.PolicyHistory("other", "p", 10).status()));
}

// Registers a1 and a2 and adds the policy "p"; an enrollment in
// "default" with it and a 5 s interval, for the caller to name an agent.
store::Enrollment TwoAgents(Fixture& f) {
  for (const char* id : {"a1", "a2"}) f.Register(id);
  REQUIRE(f.policies().AddPolicy(Policy("p")).ok());
  store::Enrollment e;
  e.tenant = "default";
  e.runtime_policy = "p";
  e.interval = absl::Seconds(5);
  return e;
}

void AgentContract(Fixture& f) {
  store::AgentStore& s = f.agents();
  store::Enrollment e = TwoAgents(f);
  e.hash_alg = 11;
  e.agent_id = "nobody";
  CHECK(absl::IsNotFound(s.Enroll(e).status()));
  e.runtime_policy = "missing";
  e.agent_id = "a1";
  CHECK(absl::IsNotFound(s.Enroll(e).status()));
  e.runtime_policy = "p";
  for (const char* id : {"a1", "a2"}) {
    e.agent_id = id;
    absl::StatusOr<store::AgentRow> row = s.Enroll(e);
    REQUIRE(row.ok());
    CHECK(row->state == v1::ATTESTATION_STATE_PENDING);
    CHECK(absl::IsAlreadyExists(s.Enroll(e).status()));
  }
  CHECK(absl::IsFailedPrecondition(f.policies().RemovePolicy("default", "p")));
  CHECK(absl::IsFailedPrecondition(
      s.TakeOver("other", "a1", "v1", "", absl::Seconds(30)).status()));

  absl::StatusOr<store::Takeover> first =
      s.TakeOver("default", "a1", "v1", "", absl::Seconds(30));
  REQUIRE(first.ok());
  absl::StatusOr<store::Takeover> second =
      s.TakeOver("default", "a1", "v2", "", absl::Seconds(30));
  REQUIRE(second.ok());
  CHECK(second->agent.epoch == first->agent.epoch + 1);
  CHECK(second->aik_name == "\x02");
  CHECK(second->aik_public == "\x01");
  const int64_t old_epoch = first->agent.epoch;
  const int64_t epoch = second->agent.epoch;

  // The old owner's write is fenced: nothing changes, nothing is recorded.
  absl::StatusOr<store::VerdictApplied> stale =
      CommitOne(s, Commit(old_epoch, true, 7, "n-stale"));
  REQUIRE(stale.ok());
  CHECK(stale->fenced);
  absl::StatusOr<store::AgentRow> row = s.GetAgent("default", "a1");
  REQUIRE(row.ok());
  CHECK(row->state == v1::ATTESTATION_STATE_PENDING);
  CHECK(row->ima_next_entry == 0);
  CHECK(row->ima_learned_keys.empty());
  CHECK(row->connected);
  CHECK(absl::IsNotFound(s.GetAgent("other", "a1").status()));

  // Leases: many at once; a row only checked is not written.
  const absl::Time lease_before = f.LeaseUntil("a1");
  absl::StatusOr<std::vector<bool>> many =
      s.RenewLeases({{"a1", old_epoch, absl::Seconds(30), true, "\x02"},
                     {"a1", epoch, absl::Hours(5), false, "\x02"},
                     {"nobody", 1, absl::Seconds(30), true, "\x02"}});
  REQUIRE(many.ok());
  CHECK(*many == std::vector<bool>{false, true, false});
  CHECK(f.LeaseUntil("a1") == lease_before);
  many = s.RenewLeases({{"a1", epoch, absl::Hours(5), true, "\x02"}});
  REQUIRE(many.ok());
  CHECK(*many == std::vector<bool>{true});
  CHECK(f.LeaseUntil("a1") > lease_before + absl::Hours(4));

  // The owner's writes apply; a failure latches; a nonce is accepted once.
  absl::StatusOr<store::VerdictApplied> ok =
      CommitOne(s, Commit(epoch, true, 3, "n1"));
  REQUIRE(ok.ok());
  CHECK(!ok->fenced);
  CHECK(ok->previous_state == v1::ATTESTATION_STATE_PENDING);
  CHECK(ok->state == v1::ATTESTATION_STATE_PASS);
  CHECK(CommitOne(s, Commit(epoch, false, 4, "n2"))->state ==
        v1::ATTESTATION_STATE_FAIL);
  CHECK(CommitOne(s, Commit(epoch, true, 5, "n3"))->state ==
        v1::ATTESTATION_STATE_FAIL);
  CHECK(!CommitOne(s, Commit(epoch, true, 6, "n3")).ok());
  row = s.GetAgent("default", "a1");
  REQUIRE(row.ok());
  CHECK(row->ima_next_entry == 5);
  CHECK(row->reset_count == 3);
  CHECK(row->clock_known);
  CHECK(row->pcr10_sha256 == std::string(32, 'b'));
  // With the position, from the last applied verdict (not the refused one).
  CHECK(row->ima_learned_keys == "keys learned by n3");
  CHECK(row->last_attestation_id == "n3");
  CHECK(row->owner == "v2");

  // One batch: each verdict gets its own answer; a duplicate nonce fails
  // only itself.
  std::vector<store::VerdictCommit> batch;
  for (int i = 0; i < 40; ++i) {
    batch.push_back(Commit(i % 10 == 0 ? old_epoch : epoch, true, 5,
                           absl::StrCat("batch-", i)));
  }
  batch.push_back(Commit(epoch, true, 5, "n1"));
  std::vector<const store::VerdictCommit*> ptrs;
  for (const store::VerdictCommit& c : batch) ptrs.push_back(&c);
  std::vector<absl::StatusOr<store::VerdictApplied>> results =
      s.CommitVerdicts(ptrs);
  REQUIRE(results.size() == batch.size());
  int fenced = 0, applied = 0;
  for (size_t i = 0; i + 1 < results.size(); ++i) {
    REQUIRE(results[i].ok());
    (results[i]->fenced ? fenced : applied)++;
  }
  CHECK(fenced == 4);
  CHECK(applied == 36);
  CHECK(!results.back().ok());
  absl::StatusOr<std::vector<store::AttestationRow>> history =
      s.History("default", "a1", 1000);
  REQUIRE(history.ok());
  CHECK(history->size() == 3 + 36);
  CHECK(history->front().attestation_id != "n1");  // Newest first.
  CHECK(s.History("default", "a1", 2)->size() == 2);

  // The sweeper: a2 never attested; backdated past 2 x 5 s it reads as
  // timeout at once and is written as timeout once.
  f.Backdate("a2", absl::Seconds(11));
  CHECK(s.GetAgent("default", "a2")->state == v1::ATTESTATION_STATE_TIMEOUT);
  CHECK(s.SweepTimeouts().value() == 1);
  CHECK(s.SweepTimeouts().value() == 0);
  CHECK(s.ListAgents("default", "", {v1::ATTESTATION_STATE_TIMEOUT}, 10, "")
            ->size() == 1);
  CHECK(s.ListAgents("default", "", {v1::ATTESTATION_STATE_FAIL}, 10, "")
            ->at(0)
            .enrollment.agent_id == "a1");
  CHECK(s.ListAgents("default", "a1", {}, 10, "")->size() == 1);
  CHECK(s.ListAgents("default", "", {}, 10, "other")->empty());
  CHECK(s.ListAgents("default", "", {}, 1, "p")->size() == 1);

  REQUIRE(s.Release("a1", old_epoch).ok());  // Not ours: no change.
  CHECK(s.GetAgent("default", "a1")->connected);
  REQUIRE(s.Release("a1", epoch).ok());
  CHECK(!s.GetAgent("default", "a1")->connected);

  REQUIRE(s.Unenroll("default", "a2").ok());
  CHECK(absl::IsNotFound(s.Unenroll("default", "a2")));
  CHECK(absl::IsNotFound(s.GetAgent("default", "a2").status()));
  CHECK(!s.Enrolled("a2").value());
  CHECK(s.Enrolled("a1").value());
  // An unenrolled agent's stream is fenced too.
  REQUIRE(s.Unenroll("default", "a1").ok());
  CHECK(CommitOne(s, Commit(epoch, true, 9, "n-after"))->fenced);
}

// A stream holds its agent only while its AIK is the registration's active
// one: another AIK activated, or the registration deleted, fences verdicts
// and lease checks of the old stream, so it ends within one sweep and
// commits no further verdict.
void RegistrationContract(Fixture& f) {
  store::AgentStore& s = f.agents();
  f.Register("a1");
  store::Enrollment e;
  e.tenant = "default";
  e.agent_id = "a1";
  e.interval = absl::Seconds(5);
  REQUIRE(s.Enroll(e).ok());
  absl::StatusOr<store::Takeover> t =
      s.TakeOver("default", "a1", "v1", "", absl::Seconds(30));
  REQUIRE(t.ok());
  const int64_t epoch = t->agent.epoch;
  REQUIRE(!CommitOne(s, Commit(epoch, true, 1, "r1"))->fenced);
  // Another AIK than the registration's, or none: fenced, nothing recorded.
  store::VerdictCommit wrong = Commit(epoch, true, 2, "r2");
  wrong.aik_name = "\x03";
  CHECK(CommitOne(s, wrong)->fenced);
  wrong.aik_name.clear();
  CHECK(CommitOne(s, wrong)->fenced);
  CHECK(*s.RenewLeases({{"a1", epoch, absl::Seconds(30), true, "\x03"},
                        {"a1", epoch, absl::Seconds(30), false, ""},
                        {"a1", epoch, absl::Seconds(30), false, "\x02"}}) ==
        std::vector<bool>{false, false, true});

  // The registrar activates a new AIK: the old stream's epoch is still
  // current, but its verdicts and lease checks are fenced.
  f.Reactivate("a1", "\x05");
  CHECK(CommitOne(s, Commit(epoch, true, 3, "r3"))->fenced);
  CHECK(*s.RenewLeases({{"a1", epoch, absl::Seconds(30), true, "\x02"},
                        {"a1", epoch, absl::Seconds(30), false, "\x02"}}) ==
        std::vector<bool>{false, false});
  CHECK(s.History("default", "a1", 10)->size() == 1);
  CHECK(s.Enrolled("a1").value());  // Reads as a takeover: reconnect.
  // The agent reconnects and is verified with the new AIK.
  t = s.TakeOver("default", "a1", "v1", "", absl::Seconds(30));
  REQUIRE(t.ok());
  CHECK(t->aik_name == "\x05");
  store::VerdictCommit fresh = Commit(t->agent.epoch, true, 4, "r4");
  fresh.aik_name = "\x05";
  CHECK(!CommitOne(s, fresh)->fenced);

  // Unenrolled and deregistered: fenced, and the check says unenrolled.
  REQUIRE(s.Unenroll("default", "a1").ok());
  f.Deregister("a1");
  fresh.attestation_id = fresh.nonce = "r5";
  CHECK(CommitOne(s, fresh)->fenced);
  CHECK(!s.Enrolled("a1").value());
  CHECK(absl::IsFailedPrecondition(
      s.TakeOver("default", "a1", "v1", "", absl::Seconds(30)).status()));
  CHECK(s.History("default", "a1", 10)->size() == 2);
}

void EventContract(Fixture& f) {
  store::AgentStore& s = f.agents();
  store::EventStore& ev = f.events();
  f.Register("a1");
  REQUIRE(f.policies().AddPolicy(Policy("p")).ok());
  absl::StatusOr<store::EventPosition> start = ev.EventHorizon();
  REQUIRE(start.ok());
  EnrollA1(s, "p", "");
  const int64_t epoch =
      s.TakeOver("default", "a1", "v1", "", absl::Seconds(30))->agent.epoch;
  REQUIRE(CommitOne(s, Commit(epoch, true, 1, "e1")).ok());
  REQUIRE(CommitOne(s, Commit(epoch, true, 2, "e2")).ok());
  REQUIRE(CommitOne(s, Commit(epoch, false, 3, "e3")).ok());

  // Final events only, in commit order, after the horizon.
  auto events = [&](store::EventPosition after, bool verdicts,
                    std::vector<AgentState> states = {}) {
    absl::StatusOr<std::vector<store::EventRow>> r =
        ev.EventsAfter("default", after, {}, states, verdicts, 100);
    REQUIRE(r.ok());
    return *r;
  };
  // PostgreSQL shows a transaction's events once no older one runs; ours
  // are all committed, so a moment's wait is enough.
  std::vector<store::EventRow> changes;
  for (int i = 0; i < 50 && changes.size() < 3; ++i) {
    changes = events(*start, false);
    if (changes.size() < 3) absl::SleepFor(absl::Milliseconds(20));
  }
  REQUIRE(changes.size() == 3);
  CHECK(changes[0].previous_state == v1::ATTESTATION_STATE_UNENROLLED);
  CHECK(changes[0].state == v1::ATTESTATION_STATE_PENDING);
  CHECK(changes[0].cause == "enrolled");
  CHECK(changes[1].state == v1::ATTESTATION_STATE_PASS);
  CHECK(changes[1].cause == "verdict");
  CHECK(changes[1].attestation_id == "e1");
  CHECK(changes[2].previous_state == v1::ATTESTATION_STATE_PASS);
  CHECK(changes[2].state == v1::ATTESTATION_STATE_FAIL);
  std::vector<store::EventRow> all = events(*start, true);
  REQUIRE(all.size() == 6);  // 3 changes, 3 verdicts, interleaved.
  int verdict_rows = 0;
  for (const store::EventRow& r : all) {
    if (!r.verdict) continue;
    ++verdict_rows;
    CHECK(r.verifier == "v1");
  }
  CHECK(verdict_rows == 3);
  CHECK(all[1].attestation_id == "e1");
  for (size_t i = 1; i < all.size(); ++i) {
    const store::EventPosition& a = all[i - 1].position;
    const store::EventPosition& b = all[i].position;
    CHECK((a.xid < b.xid || (a.xid == b.xid && a.seq < b.seq)));
  }
  // Resuming after a position gives exactly what followed.
  std::vector<store::EventRow> rest = events(all[2].position, true);
  REQUIRE(rest.size() == 3);
  CHECK(rest[0].attestation_id == all[3].attestation_id);
  CHECK(events(*start, true, {v1::ATTESTATION_STATE_FAIL}).size() == 2);
  CHECK(ev.EventsAfter("other", *start, {}, {}, true, 100)->empty());
  CHECK(ev.EventsAfter("default", *start, {"zz"}, {}, true, 100)->empty());
  absl::StatusOr<store::EventPosition> end = ev.EventHorizon();
  REQUIRE(end.ok());
  CHECK(events(*end, true).empty());

  // Positions name the database incarnation; one from another incarnation
  // (a promoted standby, a restore) is refused, never answered with a gap.
  REQUIRE(!start->incarnation.empty());
  for (const store::EventRow& r : all) {
    CHECK(r.position.incarnation == start->incarnation);
  }
  store::EventPosition foreign = all[2].position;
  foreign.incarnation = "another-00000002";
  CHECK(absl::IsOutOfRange(
      ev.EventsAfter("default", foreign, {}, {}, true, 100).status()));
  // A position without one (an older token) is not checked.
  store::EventPosition unnamed = all[2].position;
  unnamed.incarnation.clear();
  CHECK(events(unnamed, true).size() == 3);
}

// Boot freshness: the kept boot PCRs and the boot policy version that
// accepted them travel with the agent's row (a verifier taking the agent
// over sees them); each attestation records its boot policy version.
void BootContract(Fixture& f) {
  store::AgentStore& s = f.agents();
  f.Register("a1");
  REQUIRE(f.policies().AddPolicy(Policy("b", 2)).ok());
  // A policy only in the slot of its kind: a boot policy named as the
  // runtime policy (or a runtime one as the PCR policy) is refused.
  {
    store::Enrollment e;
    e.tenant = "default";
    e.agent_id = "a1";
    e.runtime_policy = "b";
    absl::Status wrong = s.Enroll(e).status();
    CHECK(absl::IsInvalidArgument(wrong));
    CHECK(wrong.message() == "runtime_policy: b is a policy of kind boot");
    REQUIRE(f.policies().AddPolicy(Policy("r1")).ok());
    e.runtime_policy.clear();
    e.pcr_policy = "r1";
    CHECK(absl::IsInvalidArgument(s.Enroll(e).status()));
  }
  EnrollA1(s, "", "b");
  absl::StatusOr<store::Takeover> t =
      s.TakeOver("default", "a1", "v1", "", absl::Seconds(30));
  REQUIRE(t.ok());
  CHECK(t->agent.boot_pcrs.empty());
  CHECK(t->agent.boot_policy_version == 0);
  const int64_t epoch = t->agent.epoch;
  const std::string pcrs(352, 'p');

  store::VerdictCommit c = Commit(epoch, true, 0, "boot-1");
  c.boot_policy_version = 2;
  c.boot_log_evaluated = true;
  c.boot_pcrs = pcrs;
  REQUIRE(CommitOne(s, c).ok());
  // Unset: kept as they are, whatever version this evidence applied.
  c = Commit(epoch, true, 0, "boot-2");
  c.boot_policy_version = 3;
  REQUIRE(CommitOne(s, c).ok());
  absl::StatusOr<store::Takeover> next =
      s.TakeOver("default", "a1", "v2", "", absl::Seconds(30));
  REQUIRE(next.ok());
  CHECK(next->agent.boot_pcrs == pcrs);
  CHECK(next->agent.boot_policy_version == 2);
  CHECK(s.GetAgent("default", "a1")->boot_pcrs == pcrs);

  // Set and empty: cleared, with the version that refused the log.
  c = Commit(next->agent.epoch, false, 0, "boot-3");
  c.boot_policy_version = 4;
  c.boot_log_evaluated = true;
  c.boot_pcrs = "";
  REQUIRE(CommitOne(s, c).ok());
  absl::StatusOr<store::AgentRow> row = s.GetAgent("default", "a1");
  REQUIRE(row.ok());
  CHECK(row->boot_pcrs.empty());
  CHECK(row->boot_policy_version == 4);
  // A fenced commit changes nothing.
  c = Commit(epoch, true, 0, "boot-4");
  c.boot_pcrs = pcrs;
  c.boot_policy_version = 9;
  REQUIRE(CommitOne(s, c)->fenced);
  CHECK(s.GetAgent("default", "a1")->boot_pcrs.empty());

  absl::StatusOr<std::vector<store::AttestationRow>> history =
      s.History("default", "a1", 10);
  REQUIRE(history.ok());
  REQUIRE(history->size() == 3);
  std::map<std::string, store::AttestationRow> by_id;
  for (const store::AttestationRow& r : *history) by_id[r.attestation_id] = r;
  CHECK(by_id["boot-1"].boot_policy_version == 2);
  CHECK(by_id["boot-1"].boot_log_evaluated);
  CHECK(by_id["boot-2"].boot_policy_version == 3);
  CHECK(!by_id["boot-2"].boot_log_evaluated);
  CHECK(by_id["boot-3"].boot_policy_version == 4);
}

// Kept evidence: a record keeps its quote, AIK, policy versions, its IMA
// entries once (a record reads its boot's entries from 0) and its boot's
// log; a record whose parts are not all kept says so; a fenced commit
// keeps nothing; RecordAt finds the record in force.
void KeptContract(Fixture& f) {
  store::AgentStore& s = f.agents();
  f.Register("a1");
  REQUIRE(f.policies().AddPolicy(Policy("r", 1)).ok());
  REQUIRE(f.policies().AddPolicy(Policy("b", 2)).ok());
  EnrollA1(s, "r", "b");
  const absl::Time before = absl::Now() - absl::Hours(1);
  absl::StatusOr<store::Takeover> t =
      s.TakeOver("default", "a1", "v1", "", absl::Seconds(30));
  REQUIRE(t.ok());
  const int64_t epoch = t->agent.epoch;
  auto kept = [](const std::string& quote, uint64_t first,
                 const std::string& ima, const std::string& boot_log) {
    store::KeptEvidence k;
    k.quote = quote;
    k.aik_public = "aik-public";
    k.ima_first = first;
    k.ima_format = 1;
    k.ima_data = ima;
    k.boot_log = boot_log;
    if (!boot_log.empty()) k.boot_log_sha256 = std::string(32, 'h');
    k.runtime_policy = "r";
    k.runtime_policy_version = 1;
    k.boot_policy = "b";
    k.boot_policy_version = 1;
    return k;
  };
  store::VerdictCommit c = Commit(epoch, true, 2, "k-1");
  c.kept = kept("quote-1", 0, "e0e1", "boot-log");
  REQUIRE(CommitOne(s, c).ok());
  c = Commit(epoch, false, 3, "k-2");
  c.ima_from = 2;
  c.failures = "why";
  c.kept = kept("quote-2", 2, "e2", "");
  REQUIRE(CommitOne(s, c).ok());

  absl::StatusOr<store::KeptRecord> r = s.GetKeptRecord("default", "k-2");
  REQUIRE(r.ok());
  INFO(r->evidence_status.message());
  REQUIRE(r->evidence_status.ok());
  CHECK(r->agent_id == "a1");
  CHECK(r->row.state == v1::ATTESTATION_STATE_FAIL);
  CHECK(r->failures == "why");
  CHECK(r->nonce == "k-2");
  CHECK(r->aik_name == "\x02");
  CHECK(r->reset_count == 3);
  CHECK(r->evidence.quote == "quote-2");
  CHECK(r->evidence.aik_public == "aik-public");
  CHECK(r->ima_log == "e0e1e2");  // Entries 0 .. 3 of the boot.
  CHECK(r->ima_format == 1);
  CHECK(r->evidence.boot_log == "boot-log");  // The boot's, kept once.
  CHECK(r->evidence.runtime_policy == "r");
  CHECK(r->evidence.runtime_policy_version == 1);
  CHECK(r->evidence.boot_policy == "b");
  r = s.GetKeptRecord("default", "k-1");
  REQUIRE(r.ok());
  CHECK(r->evidence_status.ok());
  CHECK(r->ima_log == "e0e1");
  CHECK(r->evidence.quote == "quote-1");

  // Another tenant sees nothing; an unknown id is not found.
  CHECK(absl::IsNotFound(s.GetKeptRecord("other", "k-1").status()));
  CHECK(absl::IsNotFound(s.GetKeptRecord("default", "nope").status()));

  // A record committed without evidence, and one whose earlier entries
  // are missing (as after the retention dropped them): the record reads,
  // its evidence is not whole.
  REQUIRE(CommitOne(s, Commit(epoch, true, 3, "k-3")).ok());
  r = s.GetKeptRecord("default", "k-3");
  REQUIRE(r.ok());
  CHECK(r->row.attestation_id == "k-3");
  CHECK(absl::IsFailedPrecondition(r->evidence_status));
  c = Commit(epoch, true, 6, "k-4");
  c.ima_from = 4;
  c.kept = kept("quote-4", 4, "e4e5", "");
  REQUIRE(CommitOne(s, c).ok());
  r = s.GetKeptRecord("default", "k-4");
  REQUIRE(r.ok());
  CHECK(absl::IsFailedPrecondition(r->evidence_status));
  CHECK(absl::StrContains(r->evidence_status.message(), "from 3"));

  // A fenced commit keeps nothing.
  REQUIRE(s.TakeOver("default", "a1", "v2", "", absl::Seconds(30)).ok());
  c = Commit(epoch, true, 7, "k-5");
  c.kept = kept("quote-5", 6, "e6", "");
  REQUIRE(CommitOne(s, c)->fenced);
  CHECK(absl::IsNotFound(s.GetKeptRecord("default", "k-5").status()));

  // The record in force: the newest at or before the moment.
  absl::StatusOr<std::string> at =
      s.RecordAt("default", "a1", absl::Now() + absl::Hours(1));
  REQUIRE(at.ok());
  CHECK(*at == "k-4");
  CHECK(absl::IsNotFound(s.RecordAt("default", "a1", before).status()));
  CHECK(absl::IsNotFound(
      s.RecordAt("other", "a1", absl::Now() + absl::Hours(1)).status()));

  // A rebind: the registrar activates another AIK for the agent id; the
  // records from before it keep the AIK they were verified with.
  f.Reactivate("a1", "\x03");
  absl::StatusOr<store::Takeover> rebound =
      s.TakeOver("default", "a1", "v3", "", absl::Seconds(30));
  REQUIRE(rebound.ok());
  // The new AIK's first commit is fenced (a stale epoch): it keeps
  // nothing, so the next one must still keep the AIK.
  c = Commit(epoch, true, 7, "k-6-fenced");
  c.aik_name = "\x03";
  c.kept = kept("quote-6", 6, "e6", "");
  c.kept->aik_public = "new-aik-public";
  REQUIRE(CommitOne(s, c)->fenced);
  c = Commit(rebound->agent.epoch, true, 7, "k-6");
  c.ima_from = 6;
  c.aik_name = "\x03";
  c.kept = kept("quote-6", 6, "e6", "");
  c.kept->aik_public = "new-aik-public";
  absl::StatusOr<store::VerdictApplied> applied = CommitOne(s, c);
  REQUIRE(applied.ok());
  REQUIRE(!applied->fenced);
  r = s.GetKeptRecord("default", "k-6");
  REQUIRE(r.ok());
  CHECK(r->aik_name == "\x03");
  CHECK(r->evidence.aik_public == "new-aik-public");
  // Later records of the same AIK (the database may skip keeping it again)
  // read it too.
  c = Commit(rebound->agent.epoch, true, 7, "k-7");
  c.ima_from = 7;
  c.aik_name = "\x03";
  c.kept = kept("quote-7", 7, "", "");
  c.kept->aik_public = "new-aik-public";
  REQUIRE(!CommitOne(s, c)->fenced);
  r = s.GetKeptRecord("default", "k-7");
  REQUIRE(r.ok());
  CHECK(r->evidence.aik_public == "new-aik-public");
  CHECK(r->evidence.quote == "quote-7");
  r = s.GetKeptRecord("default", "k-1");
  REQUIRE(r.ok());
  CHECK(r->evidence_status.ok());
  CHECK(r->aik_name == "\x02");
  CHECK(r->evidence.aik_public == "aik-public");
}

// The ids of a history page, in order.
std::vector<std::string> Ids(const std::vector<store::HistoryRow>& rows) {
  std::vector<std::string> ids;
  for (const store::HistoryRow& r : rows) ids.push_back(r.row.attestation_id);
  return ids;
}

// Attestation history: the half-open range, the state filter, every agent
// of a tenant, and keyset pages through records of equal times.
void HistoryContract(Fixture& f) {
  store::AgentStore& s = f.agents();
  store::Enrollment e = TwoAgents(f);
  std::map<std::string, int64_t> epochs;
  for (const char* id : {"a1", "a2"}) {
    e.agent_id = id;
    REQUIRE(s.Enroll(e).ok());
    absl::StatusOr<store::Takeover> t =
        s.TakeOver("default", id, "v1", "", absl::Seconds(30));
    REQUIRE(t.ok());
    epochs[id] = t->agent.epoch;
  }
  // Whole seconds of tomorrow (a partition exists for it).
  const absl::Time t0 =
      absl::FromUnixSeconds((absl::ToUnixSeconds(absl::Now()) / 86400 + 1) *
                            86400) +
      absl::Hours(1);
  struct Rec {
    const char* agent;
    const char* id;
    bool passed;
    int second;
  };
  // h-r2..h-r4 and h-s1 share a time: ids order them (descending).
  const Rec recs[] = {{"a1", "h-r1", true, 1},  {"a1", "h-r2", false, 2},
                      {"a1", "h-r3", true, 2},  {"a1", "h-r4", false, 2},
                      {"a1", "h-r5", false, 3}, {"a2", "h-s1", true, 2},
                      {"a2", "h-s2", false, 4}};
  for (const Rec& r : recs) {
    store::VerdictCommit c = Commit(epochs[r.agent], r.passed, 1, r.id);
    c.agent_id = r.agent;
    c.failures = r.passed ? "" : "encoded failures";
    absl::StatusOr<store::VerdictApplied> applied = CommitOne(s, c);
    REQUIRE(applied.ok());
    REQUIRE(!applied->fenced);
    f.SetRecordTime(r.id, t0 + absl::Seconds(r.second));
  }
  auto query = [&](const std::string& agent) {
    store::HistoryQuery q;
    q.tenant = "default";
    q.agent_id = agent;
    q.limit = 100;
    return q;
  };
  auto ids = [&](const store::HistoryQuery& q) {
    absl::StatusOr<std::vector<store::HistoryRow>> rows = s.QueryHistory(q);
    REQUIRE(rows.ok());
    return Ids(*rows);
  };
  using V = std::vector<std::string>;

  store::HistoryQuery q = query("a1");
  CHECK(ids(q) == V{"h-r5", "h-r4", "h-r3", "h-r2", "h-r1"});
  absl::StatusOr<std::vector<store::HistoryRow>> rows = s.QueryHistory(q);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 5);
  CHECK(rows->at(0).agent_id == "a1");
  CHECK(rows->at(0).row.state == v1::ATTESTATION_STATE_FAIL);
  CHECK(rows->at(0).failures == "encoded failures");
  CHECK(rows->at(0).row.at == t0 + absl::Seconds(3));
  CHECK(rows->at(4).row.state == v1::ATTESTATION_STATE_PASS);
  CHECK(rows->at(4).failures.empty());

  // [from, to): the lower edge is in, the upper edge is out.
  q.from = t0 + absl::Seconds(2);
  q.to = t0 + absl::Seconds(3);
  CHECK(ids(q) == V{"h-r4", "h-r3", "h-r2"});
  q.to = t0 + absl::Seconds(3) + absl::Microseconds(1);
  CHECK(ids(q) == V{"h-r5", "h-r4", "h-r3", "h-r2"});
  q.from = q.to = t0 + absl::Seconds(2);
  CHECK(ids(q).empty());
  q.from = std::nullopt;
  CHECK(ids(q) == V{"h-r1"});
  q.to = std::nullopt;
  q.from = t0 + absl::Seconds(3);
  CHECK(ids(q) == V{"h-r5"});

  // States.
  q = query("a1");
  q.states = {v1::ATTESTATION_STATE_FAIL};
  CHECK(ids(q) == V{"h-r5", "h-r4", "h-r2"});
  q.states = {v1::ATTESTATION_STATE_PASS};
  CHECK(ids(q) == V{"h-r3", "h-r1"});
  q.states = {v1::ATTESTATION_STATE_PASS, v1::ATTESTATION_STATE_FAIL};
  CHECK(ids(q).size() == 5);

  // Every agent of the tenant; none of another tenant.
  CHECK(ids(query("")) ==
        V{"h-s2", "h-r5", "h-s1", "h-r4", "h-r3", "h-r2", "h-r1"});
  q = query("");
  q.tenant = "other";
  CHECK(ids(q).empty());
  CHECK(ids(query("nobody")).empty());

  // Pages of 2 through the equal times, resuming after the last row.
  for (const std::string agent : {"a1", ""}) {
    INFO(agent);
    q = query(agent);
    const V all = ids(q);
    q.limit = 2;
    V paged;
    for (int page = 0; page < 10; ++page) {
      rows = s.QueryHistory(q);
      REQUIRE(rows.ok());
      CHECK(rows->size() <= 2);
      if (rows->empty()) break;
      for (const std::string& id : Ids(*rows)) paged.push_back(id);
      q.after_at = rows->back().row.at;
      q.after_id = rows->back().row.attestation_id;
    }
    CHECK(paged == all);
  }
  // A position with filters: after h-r4, failures only.
  q = query("a1");
  q.states = {v1::ATTESTATION_STATE_FAIL};
  q.after_at = t0 + absl::Seconds(2);
  q.after_id = "h-r4";
  CHECK(ids(q) == V{"h-r2"});
  // A position between records (not one of them) resumes after it too.
  q = query("a1");
  q.after_at = t0 + absl::Seconds(2);
  q.after_id = "h-r35";
  CHECK(ids(q) == V{"h-r3", "h-r2", "h-r1"});
  q.limit = 0;
  CHECK(ids(q).empty());
  // The newest-first convenience read agrees.
  absl::StatusOr<std::vector<store::AttestationRow>> newest =
      s.History("default", "a1", 2);
  REQUIRE(newest.ok());
  REQUIRE(newest->size() == 2);
  CHECK(newest->at(0).attestation_id == "h-r5");
  CHECK(newest->at(1).attestation_id == "h-r4");
}

// Roll-outs of a runtime policy and the shadow report written with
// verdicts (same transaction, same fence).
void RolloutContract(Fixture& f) {
  store::PolicyStore& p = f.policies();
  store::AgentStore& s = f.agents();
  f.Register("a1");
  REQUIRE(p.AddPolicy(Policy("web")).ok());
  REQUIRE(p.AddPolicy(Policy("web-next")).ok());
  REQUIRE(p.AddPolicy(Policy("boot", 2)).ok());
  store::RolloutRow r;
  r.tenant = "default";
  r.policy = "web";
  r.kind = store::RolloutKind::kShadow;
  r.candidate = "web-next";
  r.created_by = "op";
  // Both must be live runtime policies, and not the same one.
  for (const char* bad : {"missing", "boot", "web"}) {
    store::RolloutRow b = r;
    b.candidate = bad;
    absl::Status st = p.SetRollout(b).status();
    INFO(bad << ": " << st);
    CHECK((absl::IsNotFound(st) || absl::IsInvalidArgument(st)));
  }
  {
    store::RolloutRow b = r;
    b.policy = "nope";
    CHECK(absl::IsNotFound(p.SetRollout(b).status()));
  }
  absl::StatusOr<store::RolloutRow> set = p.SetRollout(r);
  REQUIRE(set.ok());
  CHECK(set->all_agents);
  CHECK(set->not_before == absl::InfinitePast());
  CHECK(set->not_after == absl::InfiniteFuture());
  CHECK(set->created_by == "op");
  store::RolloutRow w = r;
  w.kind = store::RolloutKind::kWindow;
  w.all_agents = false;
  w.agent_ids = {"b2", "a1", "b2"};
  w.selector = "role=web";
  w.not_before = absl::FromUnixSeconds(1800000000);
  w.not_after = w.not_before + absl::Hours(2);
  REQUIRE(p.SetRollout(w).ok());
  absl::StatusOr<std::vector<store::RolloutRow>> all =
      p.ListRollouts("default", "");
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  CHECK(all->at(0).kind == store::RolloutKind::kShadow);
  const store::RolloutRow& got = all->at(1);
  CHECK(got.kind == store::RolloutKind::kWindow);
  CHECK_FALSE(got.all_agents);
  CHECK(got.agent_ids == std::vector<std::string>{"a1", "b2"});
  CHECK(got.selector == "role=web");
  CHECK(got.not_before == w.not_before);
  CHECK(got.not_after == w.not_after);
  CHECK(got.Applies("a1", w.not_before));
  CHECK_FALSE(got.Applies("a1", w.not_after));  // The end is excluded.
  CHECK_FALSE(got.Applies("a1", w.not_before - absl::Seconds(1)));
  CHECK_FALSE(got.Applies("c3", w.not_before + absl::Minutes(1)));
  CHECK(p.ListRollouts("default", "web-next")->empty());
  CHECK(p.ListRollouts("other", "")->empty());

  // The shadow's report: written with the verdict, summed per candidate
  // version, fenced like the verdict.
  EnrollA1(s, "web", "");
  absl::StatusOr<store::Takeover> t =
      s.TakeOver("default", "a1", "v1", "", absl::Seconds(30));
  REQUIRE(t.ok());
  const int64_t epoch = t->agent.epoch;
  absl::StatusOr<store::EventPosition> start = f.events().EventHorizon();
  REQUIRE(start.ok());
  // The shadow judgements EventsAfter has after `start`.
  auto shadow_events = [&](bool verdicts,
                           const std::vector<core::AgentState>& states) {
    absl::StatusOr<std::vector<store::EventRow>> rows =
        f.events().EventsAfter("default", *start, {}, states, verdicts, 100);
    REQUIRE(rows.ok());
    std::vector<store::EventRow> out;
    for (const store::EventRow& e : *rows) {
      if (e.shadow) out.push_back(e);
    }
    return out;
  };
  auto judged = [&](int64_t e, const std::string& nonce, uint64_t version,
                    uint64_t failures) {
    store::VerdictCommit c = Commit(e, true, 3, nonce);
    store::ShadowCommit& sh = c.shadow.emplace();
    sh.policy = "web";
    sh.candidate = "web-next";
    sh.candidate_version = version;
    sh.entries_checked = 3;
    sh.failure_count = failures;
    sh.failures = failures > 0 ? "listed by " + nonce : "";
    return CommitOne(s, c);
  };
  REQUIRE(judged(epoch, "s1", 1, 2).ok());
  REQUIRE(judged(epoch, "s2", 1, 0).ok());
  // A fenced verdict writes no report either.
  CHECK(judged(epoch - 1, "s-stale", 1, 5)->fenced);
  absl::StatusOr<std::vector<store::ShadowResultRow>> report =
      p.ShadowReport("default", "web");
  REQUIRE(report.ok());
  REQUIRE(report->size() == 1);
  CHECK(report->at(0).agent_id == "a1");
  CHECK(report->at(0).rounds == 2);
  CHECK(report->at(0).entries_checked == 6);
  CHECK(report->at(0).failure_count == 2);
  CHECK(report->at(0).failures == "listed by s1");  // Newest with any.
  // One event: the agent's newest failing judgement, with verdicts only,
  // whatever the state filter.
  std::vector<store::EventRow> events = shadow_events(true, {});
  REQUIRE(events.size() == 1);
  CHECK(events[0].agent_id == "a1");
  CHECK(events[0].policy == "web");
  CHECK(events[0].candidate == "web-next");
  CHECK(events[0].candidate_version == 1);
  CHECK(events[0].shadow_failure_count == 2);
  CHECK(events[0].failures == "listed by s1");
  CHECK(shadow_events(false, {}).empty());
  CHECK(shadow_events(true, {v1::ATTESTATION_STATE_FAIL}).size() == 1);
  // A new candidate version starts over.
  REQUIRE(judged(epoch, "s3", 2, 1).ok());
  report = p.ShadowReport("default", "web");
  REQUIRE(report.ok());
  REQUIRE(report->size() == 1);
  CHECK(report->at(0).candidate_version == 2);
  CHECK(report->at(0).rounds == 1);
  CHECK(report->at(0).failure_count == 1);
  CHECK(report->at(0).failures == "listed by s3");
  events = shadow_events(true, {});
  REQUIRE(events.size() == 1);  // s3's replaced s1's.
  CHECK(events[0].candidate_version == 2);
  CHECK(events[0].shadow_failure_count == 1);
  // Setting the shadow again starts an empty report; a window does not.
  REQUIRE(p.SetRollout(w).ok());
  CHECK(p.ShadowReport("default", "web")->size() == 1);
  REQUIRE(p.SetRollout(r).ok());
  CHECK(p.ShadowReport("default", "web")->empty());
  CHECK(shadow_events(true, {}).empty());
  REQUIRE(judged(epoch, "s4", 2, 0).ok());
  CHECK(p.ShadowReport("default", "web")->size() == 1);
  // Deleting the shadow drops its report.
  CHECK(absl::IsNotFound(
      p.DeleteRollout("default", "web-next", store::RolloutKind::kShadow)));
  REQUIRE(p.DeleteRollout("default", "web", store::RolloutKind::kShadow).ok());
  CHECK(p.ShadowReport("default", "web")->empty());
  CHECK(p.ListRollouts("default", "web")->size() == 1);
  // Removing the candidate ends the roll-outs that name it.
  REQUIRE(p.RemovePolicy("default", "web-next").ok());
  CHECK(p.ListRollouts("default", "")->empty());
}

TEST_CASE("verifier store contract: roll-outs (in memory)", "[core][store]") {
  MemoryFixture f;
  RolloutContract(f);
}
TEST_CASE("verifier store contract: roll-outs (PostgreSQL)", "[pg][store]") {
  PgFixture f;
  RolloutContract(f);
}

TEST_CASE("verifier store contract: attestation history (in memory)",
          "[core][store]") {
  MemoryFixture f;
  HistoryContract(f);
}
TEST_CASE("verifier store contract: attestation history (PostgreSQL)",
          "[pg][store]") {
  PgFixture f;
  HistoryContract(f);
}

TEST_CASE("verifier store contract: policies (in memory)", "[core][store]") {
  MemoryFixture f;
  PolicyContract(f);
}
TEST_CASE("verifier store contract: agents and verdicts (in memory)",
          "[core][store]") {
  MemoryFixture f;
  AgentContract(f);
}
TEST_CASE("verifier store contract: the registration's AIK (in memory)",
          "[core][store]") {
  MemoryFixture f;
  RegistrationContract(f);
}
TEST_CASE("verifier store contract: the registration's AIK (PostgreSQL)",
          "[pg][store][registrar]") {
  PgFixture f;
  RegistrationContract(f);
}
TEST_CASE("verifier store contract: events (in memory)", "[core][store]") {
  MemoryFixture f;
  EventContract(f);
}
TEST_CASE("verifier store contract: policies (PostgreSQL)", "[pg][store]") {
  PgFixture f;
  PolicyContract(f);
}
TEST_CASE("verifier store contract: agents and verdicts (PostgreSQL)",
          "[pg][store]") {
  PgFixture f;
  AgentContract(f);
}
TEST_CASE("verifier store contract: events (PostgreSQL)", "[pg][store]") {
  PgFixture f;
  EventContract(f);
}
TEST_CASE("verifier store contract: boot PCRs and versions (in memory)",
          "[core][store]") {
  MemoryFixture f;
  BootContract(f);
}
TEST_CASE("verifier store contract: boot PCRs and versions (PostgreSQL)",
          "[pg][store]") {
  PgFixture f;
  BootContract(f);
}

TEST_CASE("verifier store contract: kept evidence (in memory)",
          "[core][store]") {
  MemoryFixture f;
  KeptContract(f);
}
TEST_CASE("verifier store contract: kept evidence (PostgreSQL)",
          "[pg][store]") {
  PgFixture f;
  KeptContract(f);
}

TEST_CASE(
    "PgVerifierStore: a Watch position from before the database was "
    "re-created or promoted is OUT_OF_RANGE",
    "[pg][store]") {
  PgFixture f;
  store::EventStore& ev = f.events();
  absl::StatusOr<store::EventPosition> before = ev.EventHorizon();
  REQUIRE(before.ok());
  // The timeline is part of it: a fresh cluster is on timeline 1.
  CHECK(absl::EndsWith(before->incarnation, "-00000001"));
  REQUIRE(ev.EventsAfter("default", *before, {}, {}, true, 10).ok());
  // A re-created database has a new id (as a restore into a new database
  // or a new schema would).
  f.Exec(
      "UPDATE database_incarnation SET id = replace(gen_random_uuid()::text, "
      "'-', '')",
      {});
  CHECK(absl::IsOutOfRange(
      ev.EventsAfter("default", *before, {}, {}, true, 10).status()));
  absl::StatusOr<store::EventPosition> after = ev.EventHorizon();
  REQUIRE(after.ok());
  CHECK(after->incarnation != before->incarnation);
  CHECK(ev.EventsAfter("default", *after, {}, {}, true, 10).ok());
}

}  // namespace
}  // namespace vouch
