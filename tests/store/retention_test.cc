// The data lifecycle against a real PostgreSQL ([pg][store]): migration
// 0008 turns attestations and agent_events into day-partitioned tables and
// keeps their rows; the maintenance creates partitions ahead and drops
// those older than the retention (nothing younger), also when two
// verifiers run it at once; a nonce stays accepted once across partitions;
// a Watch position older than the retention answers OUT_OF_RANGE; agent
// state that names a dropped record stays readable; --migrate modes; and
// the rule that migration files only add.
#include "store/retention.h"

#include <catch2/catch.hpp>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "harness/pg_cluster.h"
#include "store/migrate.h"
#include "store/pg_pool.h"
#include "store/pg_verifier_store.h"

namespace vouch {
namespace {

using testing::PgCluster;

constexpr int64_t kDayUs = int64_t{86400} * 1000000;

struct Db {
  Db() {
    absl::StatusOr<std::unique_ptr<PgCluster>> started = PgCluster::Start();
    REQUIRE(started.ok());
    pg = *std::move(started);
    pool = std::make_unique<store::PgPool>(pg->conninfo(), 4);
  }
  std::unique_ptr<store::PgConnection> Connect() {
    absl::StatusOr<std::unique_ptr<store::PgConnection>> c =
        store::PgConnection::Connect(pg->conninfo());
    REQUIRE(c.ok());
    return *std::move(c);
  }
  store::PgRows Query(const std::string& sql,
                      const std::vector<store::PgParam>& params = {}) {
    absl::StatusOr<store::PgPool::Lease> db = pool->Acquire();
    REQUIRE(db.ok());
    absl::StatusOr<store::PgRows> rows = (*db)->Query(sql, params);
    INFO(sql << ": " << rows.status().message());
    REQUIRE(rows.ok());
    return *std::move(rows);
  }
  int64_t Int(const std::string& sql,
              const std::vector<store::PgParam>& params = {}) {
    store::PgRows rows = Query(sql, params);
    int64_t v = 0;
    REQUIRE(absl::SimpleAtoi(rows.rows.at(0).at(0).value_or(""), &v));
    return v;
  }
  std::set<std::string> Partitions(const std::string& table) {
    std::set<std::string> out;
    for (const auto& r :
         Query("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid "
               "= i.inhrelid WHERE i.inhparent = $1::regclass",
               {table})
             .rows) {
      out.insert(r[0].value_or(""));
    }
    return out;
  }
  std::unique_ptr<PgCluster> pg;
  std::unique_ptr<store::PgPool> pool;
};

// Today's UTC midnight, by the database clock.
absl::Time Today(Db& db) {
  const int64_t now = db.Int(
      "SELECT (extract(epoch from date_trunc('day', now() AT TIME ZONE "
      "'UTC') AT TIME ZONE 'UTC') * 1000000)::bigint");
  return absl::FromUnixMicros(now);
}

std::string Day(absl::Time t) {
  return absl::FormatTime("%Y%m%d", t, absl::UTCTimeZone());
}

std::string Ts(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E6S+00", t, absl::UTCTimeZone());
}

// One record and one event of agent a1 at `at`.
void Insert(Db& db, const std::string& id, absl::Time at) {
  db.Query(
      "INSERT INTO attestations (attestation_id, tenant, agent_id, verifier, "
      "epoch, nonce, state, reset_count, evidence_sha256, at) VALUES ($1, "
      "'default', 'a1', 'v', 1, convert_to($1, 'UTF8'), 'pass', 0, '\\x00', "
      "$2::timestamptz)",
      {id, Ts(at)});
  db.Query(
      "INSERT INTO agent_events (tenant, agent_id, previous_state, state, "
      "cause, attestation_id, at) VALUES ('default', 'a1', 'pending', "
      "'pass', 'verdict', $1, $2::timestamptz)",
      {id, Ts(at)});
}

void Register(Db& db, const std::string& id) {
  db.Query(
      "INSERT INTO registrations (agent_id, tenant, ek_public, ek_sha256, "
      "ek_certificate, aik_public, aik_name, activated_at) VALUES ($1, "
      "'default', '\\x00', sha256(convert_to($1::text, 'UTF8')), '\\x00', "
      "'\\x01', '\\x02', now())",
      {id});
}

store::VerdictCommit Commit(int64_t epoch, const std::string& nonce) {
  store::VerdictCommit c;
  c.tenant = "default";
  c.agent_id = "a1";
  c.owner = "v1";
  c.epoch = epoch;
  c.aik_name = "\x02";
  c.attestation_id = nonce;
  c.nonce = nonce;
  c.passed = true;
  c.evidence_sha256 = "x";
  c.lease = absl::Seconds(30);
  return c;
}

absl::Status CommitOne(store::PgVerifierStore& s,
                       const store::VerdictCommit& c) {
  std::vector<absl::StatusOr<store::VerdictApplied>> r = s.CommitVerdicts({&c});
  REQUIRE(r.size() == 1);
  if (r[0].ok() && r[0]->fenced) return absl::AbortedError("fenced");
  return r[0].status();
}

// Enrolls a1 and takes it over (epoch 1).
store::PgVerifierStore& Enrolled(Db& db, store::PgVerifierStore& s) {
  Register(db, "a1");
  store::Enrollment e;
  e.tenant = "default";
  e.agent_id = "a1";
  e.interval = absl::Seconds(60);
  REQUIRE(s.Enroll(e).ok());
  REQUIRE(s.TakeOver("default", "a1", "v1", "", absl::Seconds(60)).ok());
  return s;
}

TEST_CASE(
    "retention: partitions are created ahead, those older than the "
    "retention are dropped and nothing younger, Watch tokens before them are "
    "OUT_OF_RANGE, agent state naming a dropped record stays readable",
    "[pg][store]") {
  Db db;
  REQUIRE(store::PrepareDatabase(*db.pool, absl::Seconds(30)).ok());
  const absl::Time today = Today(db);
  // The migration made today and 8 days ahead; nothing before (empty).
  std::set<std::string> parts = db.Partitions("attestations");
  CHECK(parts.size() == 9);
  CHECK(parts.count("attestations_p" + Day(today)) == 1);
  CHECK(db.Partitions("agent_events").size() == 9);
  CHECK(db.Partitions("attestation_evidence").size() == 9);
  CHECK(db.Partitions("ima_segments").size() == 9);

  store::PgVerifierStore s(db.pool.get(), 3);
  Enrolled(db, s);
  // A watcher's position from before anything below.
  absl::StatusOr<store::EventPosition> early = s.EventHorizon();
  REQUIRE(early.ok());

  // 40 days back, as if the maintenance had run then: 12 days of
  // partitions (-40 .. -29).
  store::RetentionOptions o;
  o.keep_days = 30;
  o.days_ahead = 11;
  std::unique_ptr<store::PgConnection> c = db.Connect();
  absl::StatusOr<store::RetentionRun> back =
      store::MaintainPartitions(*c, o, today - absl::Hours(24 * 40));
  INFO(back.status().message());
  REQUIRE(back.ok());
  CHECK(back->ran);
  CHECK(back->created == 48);  // 12 days of the four partitioned tables.
  CHECK(back->dropped == 0);
  // Rows on day -40, -31 (older than 30 days), -29 and today.
  Insert(db, "d40", today - absl::Hours(24 * 40) + absl::Hours(1));
  Insert(db, "d31", today - absl::Hours(24 * 31) + absl::Hours(23));
  Insert(db, "d29", today - absl::Hours(24 * 29) + absl::Hours(1));
  // The agent's newest verdict, committed now, then moved 35 days back
  // (its state keeps naming it).
  REQUIRE(CommitOne(s, Commit(1, "old-verdict")).ok());
  db.Query(
      "UPDATE attestations SET at = at - interval '35 days' WHERE "
      "attestation_id = 'old-verdict'");
  db.Query(
      "UPDATE agent_events SET at = at - interval '35 days' WHERE "
      "attestation_id = 'old-verdict'");
  db.Query(
      "UPDATE attestation_nonces SET at = at - interval '35 days' WHERE "
      "nonce = convert_to('old-verdict', 'UTF8')");
  absl::StatusOr<store::EventPosition> middle = s.EventHorizon();
  REQUIRE(middle.ok());
  // Nothing dropped yet: the early position still reads every event.
  CHECK(s.EventsAfter("default", *early, {}, {}, true, 100).ok());

  // Now: days -40 .. -31 go (their last row is older than 30 days), -30
  // and younger stay; today + 11 ahead exist.
  absl::StatusOr<store::RetentionRun> run = store::MaintainPartitions(*c, o);
  INFO(run.status().message());
  REQUIRE(run.ok());
  CHECK(run->ran);
  CHECK(run->dropped == 40);  // 10 days of the four tables.
  CHECK(run->nonces_deleted >= 1);
  parts = db.Partitions("attestations");
  for (int d = 40; d >= 31; --d) {
    CHECK(parts.count("attestations_p" + Day(today - absl::Hours(24 * d))) ==
          0);
  }
  for (int d = 30; d >= 29; --d) {
    CHECK(parts.count("attestations_p" + Day(today - absl::Hours(24 * d))) ==
          1);
  }
  CHECK(parts.count("attestations_p" + Day(today + absl::Hours(24 * 11))) == 1);
  CHECK(db.Int("SELECT count(*) FROM attestations WHERE attestation_id IN "
               "('d40', 'd31', 'old-verdict')") == 0);
  CHECK(db.Int("SELECT count(*) FROM agent_events WHERE attestation_id IN "
               "('d40', 'd31', 'old-verdict')") == 0);
  CHECK(db.Int("SELECT count(*) FROM attestations WHERE attestation_id = "
               "'d29'") == 1);
  CHECK(db.Int("SELECT count(*) FROM agent_events WHERE attestation_id = "
               "'d29'") == 1);

  // The agent's state still names the dropped record and reads fine.
  absl::StatusOr<store::AgentRow> agent = s.GetAgent("default", "a1");
  REQUIRE(agent.ok());
  CHECK(agent->last_attestation_id == "old-verdict");
  CHECK(s.History("default", "a1", 10).ok());
  CHECK(s.ListAgents("default", "", {}, 10, "").ok());

  // A position from before the dropped events: OUT_OF_RANGE, saying so.
  for (bool verdicts : {false, true}) {
    absl::StatusOr<std::vector<store::EventRow>> gone =
        s.EventsAfter("default", *early, {}, {}, verdicts, 100);
    REQUIRE(absl::IsOutOfRange(gone.status()));
    CHECK(absl::StrContains(gone.status().message(), "have expired"));
    CHECK(absl::StrContains(
        gone.status().message(),
        absl::FormatTime("%Y-%m-%d", today - absl::Hours(24 * 30),
                         absl::UTCTimeZone())));
  }
  // Positions after them read on.
  CHECK(s.EventsAfter("default", *middle, {}, {}, true, 100).ok());
  absl::StatusOr<store::EventPosition> now = s.EventHorizon();
  REQUIRE(now.ok());
  CHECK(s.EventsAfter("default", *now, {}, {}, true, 100).ok());

  // Running again changes nothing.
  run = store::MaintainPartitions(*c, o);
  REQUIRE(run.ok());
  CHECK(run->created == 0);
  CHECK(run->dropped == 0);
}

TEST_CASE("retention: 0 days keeps everything", "[pg][store]") {
  Db db;
  REQUIRE(store::PrepareDatabase(*db.pool, absl::Seconds(30)).ok());
  const absl::Time today = Today(db);
  std::unique_ptr<store::PgConnection> c = db.Connect();
  store::RetentionOptions o;
  o.keep_days = 0;
  REQUIRE(store::MaintainPartitions(*c, o, today - absl::Hours(24 * 400)).ok());
  Insert(db, "ancient", today - absl::Hours(24 * 400));
  absl::StatusOr<store::RetentionRun> run = store::MaintainPartitions(*c, o);
  REQUIRE(run.ok());
  CHECK(run->dropped == 0);
  CHECK(db.Int("SELECT count(*) FROM attestations") == 1);
}

TEST_CASE("retention: two verifiers running the maintenance at once is safe",
          "[pg][store]") {
  Db db;
  REQUIRE(store::PrepareDatabase(*db.pool, absl::Seconds(30)).ok());
  const absl::Time today = Today(db);
  Insert(db, "young", absl::Now());
  store::RetentionOptions o;
  o.keep_days = 3;
  o.days_ahead = 20;
  // Each "verifier" runs 8 times, stepping through 8 days back, on its own
  // connection; every run must succeed (ran or skipped for the other).
  std::vector<std::thread> threads;
  std::vector<absl::Status> failures(2);
  std::vector<int> ran(2, 0);
  for (int v = 0; v < 2; ++v) {
    threads.emplace_back([&, v] {
      absl::StatusOr<std::unique_ptr<store::PgConnection>> c =
          store::PgConnection::Connect(db.pg->conninfo());
      if (!c.ok()) {
        failures[v] = c.status();
        return;
      }
      for (int i = 8; i >= 0; --i) {
        absl::StatusOr<store::RetentionRun> run = store::MaintainPartitions(
            **c, o, today - absl::Hours(24 * i) + absl::Hours(12));
        if (!run.ok()) {
          failures[v] = run.status();
          return;
        }
        if (run->ran) ++ran[v];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& f : failures) {
    INFO(f.message());
    CHECK(f.ok());
  }
  CHECK(ran[0] + ran[1] >= 1);
  // One more run from now: the layout is whole, old days gone.
  std::unique_ptr<store::PgConnection> c = db.Connect();
  REQUIRE(store::MaintainPartitions(*c, o).ok());
  for (const char* table : {"attestations", "agent_events"}) {
    std::set<std::string> parts = db.Partitions(table);
    INFO(table);
    for (int d = 0; d <= 20; ++d) {
      CHECK(parts.count(absl::StrCat(table, "_p",
                                     Day(today + absl::Hours(24 * d)))) == 1);
    }
    CHECK(parts.count(absl::StrCat(table, "_p",
                                   Day(today - absl::Hours(24 * 4)))) == 0);
  }
  CHECK(db.Int("SELECT count(*) FROM attestations") == 1);
}

TEST_CASE("a nonce is accepted once in the pool, across day partitions",
          "[pg][store]") {
  Db db;
  REQUIRE(store::PrepareDatabase(*db.pool, absl::Seconds(30)).ok());
  std::unique_ptr<store::PgConnection> c = db.Connect();
  REQUIRE(store::MaintainPartitions(*c, store::RetentionOptions(),
                                    absl::Now() - absl::Hours(24))
              .ok());
  store::PgVerifierStore s(db.pool.get(), 3);
  Enrolled(db, s);
  REQUIRE(CommitOne(s, Commit(1, "n1")).ok());
  // The record moves to yesterday's partition: (nonce, at) would no longer
  // collide, the pool's nonce table still does.
  db.Query(
      "UPDATE attestations SET at = at - interval '1 day' WHERE nonce = "
      "convert_to('n1', 'UTF8')");
  store::VerdictCommit again = Commit(1, "n1");
  again.attestation_id = "another-id";
  CHECK(absl::IsAlreadyExists(CommitOne(s, again)));
  CHECK(db.Int("SELECT count(*) FROM attestations WHERE nonce = "
               "convert_to('n1', 'UTF8')") == 1);
  CHECK(CommitOne(s, Commit(1, "n2")).ok());
}

TEST_CASE("migration 0008 keeps the records and events it finds",
          "[pg][store]") {
  Db db;
  {
    std::unique_ptr<store::PgConnection> c = db.Connect();
    absl::StatusOr<int> applied = store::MigrateTo(*c, 7);
    REQUIRE(applied.ok());
    CHECK(*applied == 7);
  }
  Register(db, "a1");
  db.Query(
      "INSERT INTO agent_state (agent_id, tenant, interval_ms, hash_alg, "
      "last_attestation_id, state) VALUES ('a1', 'default', 5000, 11, "
      "'r-old', 'pass')");
  // An old record (a year ago) and one from today, with their events.
  for (const auto& [id, age] : std::vector<std::pair<std::string, std::string>>{
           {"r-old", "365 days"}, {"r-new", "0"}}) {
    db.Query(
        "INSERT INTO attestations (attestation_id, tenant, agent_id, "
        "verifier, epoch, nonce, state, reset_count, evidence_sha256, at) "
        "VALUES ($1, 'default', 'a1', 'v', 1, convert_to($1, 'UTF8'), "
        "'pass', 0, '\\x00', now() - $2::interval)",
        {id, age});
    db.Query(
        "INSERT INTO agent_events (tenant, agent_id, previous_state, state, "
        "cause, attestation_id, at) VALUES ('default', 'a1', 'pending', "
        "'pass', 'verdict', $1, now() - $2::interval)",
        {id, age});
  }
  const int64_t max_seq = db.Int("SELECT max(seq) FROM agent_events");
  {
    std::unique_ptr<store::PgConnection> c = db.Connect();
    absl::StatusOr<int> applied = store::Migrate(*c);
    INFO(applied.status().message());
    REQUIRE(applied.ok());
    CHECK(*applied >= 1);
  }
  CHECK(db.Int("SELECT count(*) FROM attestations") == 2);
  CHECK(db.Int("SELECT count(*) FROM agent_events") == 2);
  CHECK(db.Int("SELECT count(*) FROM attestation_nonces") == 2);
  CHECK(db.Partitions("attestations").count("attestations_before") == 1);
  CHECK(db.Int("SELECT count(*) FROM attestations_before") == 1);
  CHECK(db.Query("SELECT relkind::text FROM pg_class WHERE relname = "
                 "'attestations'")
            .rows.at(0)
            .at(0) == std::optional<std::string>("p"));
  store::PgVerifierStore s(db.pool.get(), 3);
  absl::StatusOr<store::AgentRow> agent = s.GetAgent("default", "a1");
  REQUIRE(agent.ok());
  CHECK(agent->last_attestation_id == "r-old");
  absl::StatusOr<std::vector<store::AttestationRow>> history =
      s.History("default", "a1", 10);
  REQUIRE(history.ok());
  CHECK(history->size() == 2);
  // Nonces from before the migration are still refused; numbering goes on.
  REQUIRE(s.TakeOver("default", "a1", "v1", "", absl::Seconds(60)).ok());
  store::VerdictCommit replay = Commit(1, "r-old");
  replay.attestation_id = "fresh-id";
  CHECK(absl::IsAlreadyExists(CommitOne(s, replay)));
  REQUIRE(CommitOne(s, Commit(1, "n-after")).ok());
  CHECK(db.Int("SELECT min(seq) FROM attestations WHERE attestation_id = "
               "'n-after'") > max_seq);

  // The old year-long partition goes with the retention.
  std::unique_ptr<store::PgConnection> c = db.Connect();
  store::RetentionOptions o;
  absl::StatusOr<store::RetentionRun> run =
      store::MaintainPartitions(*c, o, absl::Now() + absl::Hours(24 * 31));
  REQUIRE(run.ok());
  // "before" and today's, of the four tables (the kept-evidence ones
  // were made with the attestations table's bounds).
  CHECK(run->dropped == 8);
  CHECK(db.Partitions("attestations").count("attestations_before") == 0);
}

TEST_CASE(
    "migrate modes: off refuses an older schema, naming both versions, "
    "auto and only migrate",
    "[pg][store]") {
  CHECK(store::ParseMigrateMode("auto").value() == store::MigrateMode::kAuto);
  CHECK(store::ParseMigrateMode("off").value() == store::MigrateMode::kOff);
  CHECK(store::ParseMigrateMode("only").value() == store::MigrateMode::kOnly);
  CHECK(absl::IsInvalidArgument(store::ParseMigrateMode("yes").status()));

  Db db;
  const int newest = store::Migrations().back().version;
  // The one before the newest (versions need not be contiguous while
  // branches number their migrations ahead of each other).
  const int previous =
      store::Migrations()[store::Migrations().size() - 2].version;
  absl::Status empty = store::PrepareDatabase(*db.pool, absl::Seconds(5),
                                              store::MigrateMode::kOff);
  CHECK(absl::IsFailedPrecondition(empty));
  CHECK(absl::StrContains(empty.message(), "version 0"));
  {
    std::unique_ptr<store::PgConnection> c = db.Connect();
    REQUIRE(store::MigrateTo(*c, previous).ok());
  }
  absl::Status older = store::PrepareDatabase(*db.pool, absl::Seconds(5),
                                              store::MigrateMode::kOff);
  CHECK(absl::IsFailedPrecondition(older));
  CHECK(absl::StrContains(older.message(),
                          absl::StrCat("database schema is version ", previous,
                                       ", this binary needs ", newest)));
  CHECK(absl::IsFailedPrecondition(
      store::SchemaReady(*db.pool, absl::Seconds(5))));
  REQUIRE(store::PrepareDatabase(*db.pool, absl::Seconds(5),
                                 store::MigrateMode::kOnly)
              .ok());
  CHECK(store::PrepareDatabase(*db.pool, absl::Seconds(5),
                               store::MigrateMode::kOff)
            .ok());
  CHECK(store::SchemaReady(*db.pool, absl::Seconds(5)).ok());
}

TEST_CASE(
    "a database restored into another cluster is a new incarnation, events "
    "ahead of the cluster's transaction ids are refused until pg_resetwal",
    "[pg][store]") {
  Db db;
  REQUIRE(store::PrepareDatabase(*db.pool, absl::Seconds(30)).ok());
  const std::string home = db.Query("SELECT home FROM database_incarnation")
                               .rows.at(0)
                               .at(0)
                               .value();
  CHECK(absl::StrContains(home, "/"));
  store::PgVerifierStore s(db.pool.get(), 3);
  absl::StatusOr<store::EventPosition> before = s.EventHorizon();
  REQUIRE(before.ok());
  // The same database again: nothing changes.
  REQUIRE(store::PrepareDatabase(*db.pool, absl::Seconds(30)).ok());
  CHECK(s.EventsAfter("default", *before, {}, {}, true, 10).ok());

  // As pg_restore leaves it in a new cluster: another home, and an event
  // whose transaction id (an epoch later) this cluster has not reached.
  db.Query("UPDATE database_incarnation SET home = '1/5'");
  db.Query(
      "INSERT INTO agent_events (tenant, agent_id, previous_state, state, "
      "cause, xid) VALUES ('default', 'a1', 'pending', 'pass', 'verdict', "
      "(pg_current_xact_id()::text::bigint + 4294967296)::text::xid8)");
  absl::Status ahead = store::PrepareDatabase(*db.pool, absl::Seconds(30));
  INFO(ahead.message());
  CHECK(absl::IsFailedPrecondition(ahead));
  CHECK(absl::StrContains(ahead.message(), "pg_resetwal -e 2 "));
  // Nothing adopted yet: the old position still reads.
  CHECK(s.EventsAfter("default", *before, {}, {}, true, 10).ok());

  db.Query("DELETE FROM agent_events");
  REQUIRE(store::PrepareDatabase(*db.pool, absl::Seconds(30)).ok());
  CHECK(db.Query("SELECT home FROM database_incarnation").rows.at(0).at(0) ==
        std::optional<std::string>(home));
  absl::StatusOr<std::vector<store::EventRow>> old =
      s.EventsAfter("default", *before, {}, {}, true, 10);
  CHECK(absl::IsOutOfRange(old.status()));
  CHECK(absl::StrContains(old.status().message(), "another database"));
  absl::StatusOr<store::EventPosition> now = s.EventHorizon();
  REQUIRE(now.ok());
  CHECK(now->incarnation != before->incarnation);
  CHECK(s.EventsAfter("default", *now, {}, {}, true, 10).ok());
}

// Expand, then contract: a migration may only add what the previous
// release ignores (tables, columns with defaults, indexes, rows). The
// statements that remove or rewrite are refused outside the reviewed list
// below, each with why the previous release keeps working.
TEST_CASE("migration files only add, except the reviewed ones", "[store]") {
  struct Reviewed {
    int version;
    const char* why;
  };
  const Reviewed reviewed[] = {
      {5,
       "drops the EK uniqueness over every row for a partial unique "
       "index: the old rule implies the new one"},
      {8,
       "copies attestations and agent_events into partitioned tables of "
       "the same columns and names, in one transaction; the previous "
       "release's statements work on them unchanged"},
      {20,
       "drops an index every query by agent can do without (they name the "
       "tenant: attestations_history_agent) and the state CHECKs, whose "
       "values the previous release writes only from fixed literals"},
  };
  const char* const removing[] = {"DROP",         "RENAME", "ALTER COLUMN",
                                  "TRUNCATE",     "DELETE", "UPDATE",
                                  "SET NOT NULL", "TYPE"};
  for (const store::Migration& m : store::Migrations()) {
    INFO(m.name);
    // The code as upper-case words between single spaces, comments left
    // out.
    std::string code = " ";
    for (absl::string_view line : absl::StrSplit(m.sql, '\n')) {
      for (char ch : line.substr(0, line.find("--"))) {
        const bool word = absl::ascii_isalnum(ch) || ch == '_';
        if (word) {
          code.push_back(absl::ascii_toupper(ch));
        } else if (code.back() != ' ') {
          code.push_back(' ');
        }
      }
      if (code.back() != ' ') code.push_back(' ');
    }
    // The registrar's append-only rules name DELETE and UPDATE as events.
    code = absl::StrReplaceAll(code, {{" ON UPDATE TO ", " "},
                                      {" ON DELETE TO ", " "},
                                      {" ON DELETE CASCADE ", " "}});
    bool is_reviewed = false;
    for (const Reviewed& r : reviewed) is_reviewed |= r.version == m.version;
    if (is_reviewed) continue;
    for (const char* word : removing) {
      INFO(word);
      CHECK(!absl::StrContains(code, absl::StrCat(" ", word, " ")));
    }
  }
  // None contracts yet: the rule's contract step (IsContract) is for a
  // later release, and marking one means the previous release refuses the
  // schema it leaves.
  for (const store::Migration& m : store::Migrations()) {
    INFO(m.name);
    CHECK(!store::IsContract(m));
  }
  // Every migration after the newest reviewed one is checked above; the
  // list only grows with a reason.
  CHECK(store::Migrations().back().version >= 8);
}

}  // namespace
}  // namespace vouch
