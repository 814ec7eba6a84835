// Fault injection end to end: real vouch-verifier processes reaching a real
// PostgreSQL through harness/tcp_proxy (which can blackhole or reset the
// database's traffic), a real vouch-registrar, and real vouch-agents on
// swtpm. Each scenario ends with the same exactly-once audit, from the
// database and the agents' logs (FaultPool::AuditExactlyOnce).
//
// The time bounds asserted here are the product's promises (UNAVAILABLE
// within 30 s of a database that stops answering, exit within 10 s of
// SIGTERM, verdicts again within two intervals of the database's return);
// the measured values are printed (WARN) for bench/README.md.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "e2e/e2e_util.h"
#include "harness/tcp_proxy.h"
#include "store/pg_connection.h"
#include "store/pg_pool.h"
#include "store/pg_verifier_store.h"

namespace vouch {
namespace {

using Clock = std::chrono::steady_clock;
using testing::TcpProxy;

using AgentVerdict = LoggedVerdict;

// A real agent on its own swtpm, with its own IMA log.
struct Agent {
  std::unique_ptr<Swtpm> tpm;
  std::string id;
  std::string dir;  // state dir, IMA log and agent log live here
  std::string tls_dir;
  std::optional<ChildProcess> process;
  int ima_entries = 0;  // Appended to its IMA log so far.

  std::string ima_log() const { return dir + "/ima.log"; }
  std::string log() const { return dir + "/agent.log"; }

  std::vector<AgentVerdict> Verdicts() const { return VerdictsInLog(log()); }
};

struct PoolOptions {
  int agents = 1;
  int verifiers = 2;
  int interval_s = 5;
  // Extra environment of every verifier, and of v1 only (test hooks).
  std::vector<std::pair<std::string, std::string>> verifier_env;
  std::vector<std::pair<std::string, std::string>> v1_env;
  // More flags of every verifier.
  std::vector<std::string> verifier_args;
};

// PostgreSQL behind a TcpProxy, a registrar (direct), verifiers (through
// the proxy), and enrolled agents that have passed once.
class FaultPool {
 public:
  explicit FaultPool(const PoolOptions& o)
      : options_(o), dir_(NewDir()), tls_(dir_.path()) {
    absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
    REQUIRE(pg.ok());
    pg_ = *std::move(pg);
    absl::StatusOr<std::unique_ptr<TcpProxy>> proxy =
        TcpProxy::Start("127.0.0.1", pg_->port());
    REQUIRE(proxy.ok());
    proxy_ = *std::move(proxy);
    for (int i = 0; i < options_.agents; ++i) {
      Agent a;
      absl::StatusOr<std::unique_ptr<Swtpm>> tpm = Swtpm::Start();
      REQUIRE(tpm.ok());
      a.tpm = *std::move(tpm);
      a.dir = dir_.Join(absl::StrCat("agent", i));
      mkdir(a.dir.c_str(), 0700);
      std::ofstream(a.ima_log()).flush();
      agents_.push_back(std::move(a));
    }
    std::vector<const Swtpm*> tpms;
    for (const Agent& a : agents_) tpms.push_back(a.tpm.get());
    registrar_.emplace(dir_, *pg_, tls_, CaDir(dir_, "ek-ca", tpms));
    for (int i = 0; i < options_.verifiers; ++i) {
      std::vector<std::pair<std::string, std::string>> env =
          options_.verifier_env;
      if (i == 0) env.insert(env.end(), o.v1_env.begin(), o.v1_env.end());
      verifiers_.push_back(std::make_unique<ServerProcess>(
          dir_, *pg_, tls_, VOUCH_VERIFIER_BIN, "verifier",
          absl::StrCat("v", i + 1), VerifierArgs(absl::StrCat("v", i + 1)),
          env));
    }
    for (int i = 0; i < 3; ++i) {
      const std::string f = dir_.Join(absl::StrCat("good", i));
      std::ofstream(f) << "good file " << i;
      good_.push_back(f);
    }
    for (Agent& a : agents_) Append(a, good_);
    const std::string policy = dir_.Join("policy.json");
    testing::RunResult learned = testing::RunCapture(
        {VOUCHCTL_BIN, "policy-file", "create", "--from-ima-log",
         agents_[0].ima_log(), "-f", policy});
    INFO(learned.err);
    REQUIRE(learned.status.Success());
    testing::RunResult added = Ctl({"policies", "add", "web", "-f", policy});
    INFO(added.err);
    REQUIRE(added.status.Success());
    for (Agent& a : agents_) {
      testing::RunResult id = testing::RunCapture(
          {VOUCH_AGENT_BIN, "--print-agent-id", "--agent-tcti", a.tpm->tcti(),
           "--agent-state-dir", a.dir});
      INFO(id.err);
      REQUIRE(id.status.Success());
      a.id = std::string(absl::StripAsciiWhitespace(id.out));
      a.tls_dir = tls_.Agent(a.id);
      StartAgent(a);
    }
    for (Agent& a : agents_) {
      testing::RunResult enrolled =
          Ctl({"agents", "enroll", a.id, "--runtime-policy", "web",
               "--interval", absl::StrCat(options_.interval_s, "s")});
      INFO(enrolled.err);
      REQUIRE(enrolled.status.Success());
    }
    for (Agent& a : agents_) {
      INFO(a.id);
      REQUIRE(Within(90, [&] { return !PassesOf(a).empty(); }));
    }
  }

  // Verifier flags: 1 s sweeps, timeout after 2 intervals, the database
  // through the proxy (as a flag: the URL names no fixture directory).
  std::vector<std::string> VerifierArgs(const std::string& id) const {
    std::vector<std::string> extra = {
        "--database-url",
        absl::StrCat("host=127.0.0.1 port=", proxy_->port(),
                     " user=", PgCluster::kUser, " dbname=postgres")};
    extra.insert(extra.end(), options_.verifier_args.begin(),
                 options_.verifier_args.end());
    return PoolVerifierArgs(id, extra);
  }

  void StartAgent(Agent& a) {
    std::string verifiers;
    for (const auto& v : verifiers_) {
      absl::StrAppend(&verifiers, verifiers.empty() ? "" : ",", v->address());
    }
    AgentProcessOptions o;
    o.tcti = a.tpm->tcti();
    o.state_dir = a.dir;
    o.registrars = registrar_->address();
    o.verifiers = verifiers;
    o.ima_log = a.ima_log();
    o.tls_dir = a.tls_dir;
    o.log = a.log();
    o.reply_timeout = "30s";
    a.process.emplace(StartAgentProcess(o));
  }

  // The kernel measuring `paths` on agent `a`.
  void Append(Agent& a, const std::vector<std::string>& paths) {
    std::vector<std::string> argv = {VOUCHCTL_BIN, "dev",         "ima-append",
                                     "--tcti",     a.tpm->tcti(), "--log",
                                     a.ima_log()};
    argv.insert(argv.end(), paths.begin(), paths.end());
    testing::RunResult r = testing::RunCapture(argv);
    INFO(r.err);
    REQUIRE(r.status.Success());
    a.ima_entries += static_cast<int>(paths.size());
  }

  testing::RunResult Ctl(std::vector<std::string> args,
                         const ServerProcess* via = nullptr) {
    if (via == nullptr) {  // The first verifier that runs.
      for (const auto& v : verifiers_) {
        if (via == nullptr && v->process().Running()) via = v.get();
      }
      REQUIRE(via != nullptr);
    }
    std::vector<std::string> argv = {VOUCHCTL_BIN, "--server", via->address(),
                                     "--tls-dir", tls_.client_dir("admin")};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCapture(argv, {}, std::chrono::seconds(60));
  }

  std::vector<AgentVerdict> PassesOf(const Agent& a) const {
    std::vector<AgentVerdict> out;
    for (AgentVerdict& v : a.Verdicts()) {
      if (v.state == "pass") out.push_back(std::move(v));
    }
    return out;
  }

  // Direct to PostgreSQL (Unix socket), not through the proxy.
  std::unique_ptr<store::PgConnection> Db() {
    absl::StatusOr<std::unique_ptr<store::PgConnection>> c =
        store::PgConnection::Connect(pg_->conninfo());
    REQUIRE(c.ok());
    return *std::move(c);
  }
  int64_t QueryInt(const std::string& sql,
                   const std::vector<store::PgParam>& params = {}) {
    absl::StatusOr<store::PgRows> rows = Db()->Query(sql, params);
    INFO(sql);
    REQUIRE(rows.ok());
    int64_t v = 0;
    REQUIRE(absl::SimpleAtoi(rows->rows.at(0).at(0).value_or("0"), &v));
    return v;
  }

  // Waits until every agent's stored IMA position has caught up with its
  // log (each push accepted), then checks exactly-once from the database
  // and the agents' logs:
  //  - no (agent, nonce) twice;
  //  - each agent's IMA entries are accepted exactly once: its
  //    ima_next_entry equals what its log holds, its attestations' accepted
  //    ranges [ima_from, ima_next_entry) follow each other without gap or
  //    overlap and add up to it, and no attestation received fewer entries
  //    than it accepted. (Entries received can exceed those accepted: the
  //    agent quotes first and reads its log after, so entries beyond the
  //    quote are received, left for the next round and sent again.)
  //  - every verdict an agent logged (saw acknowledged) is stored;
  //  - no PASS logged inside an outage window;
  //  - no stale PASS: an agent shown as passing has a verdict younger than
  //    timeout_intervals x interval.
  void AuditExactlyOnce(
      const std::vector<std::pair<absl::Time, absl::Time>>& outages) {
    for (Agent& a : agents_) {
      INFO(a.id);
      CHECK(Within(60, [&] {
        return QueryInt(
                   "SELECT ima_next_entry FROM agent_state WHERE "
                   "agent_id = $1",
                   {a.id}) == a.ima_entries;
      }));
    }
    CHECK(QueryInt("SELECT count(*) - count(DISTINCT (agent_id, nonce)) "
                   "FROM attestations") == 0);
    for (const Agent& a : agents_) {
      INFO(a.id);
      CHECK(QueryInt("SELECT coalesce(sum(ima_next_entry - ima_from), 0) "
                     "FROM attestations WHERE agent_id = $1",
                     {a.id}) == a.ima_entries);
      CHECK(QueryInt("SELECT count(*) FROM (SELECT ima_from, "
                     "lag(ima_next_entry) OVER (ORDER BY at, seq) AS prev "
                     "FROM attestations WHERE agent_id = $1 AND ima_from IS "
                     "NOT NULL) t WHERE prev IS NOT NULL AND ima_from <> prev",
                     {a.id}) == 0);
      CHECK(QueryInt("SELECT count(*) FROM attestations WHERE agent_id = $1 "
                     "AND ima_entries_received < ima_next_entry - ima_from",
                     {a.id}) == 0);
      const std::vector<AgentVerdict> seen = a.Verdicts();
      CHECK(!seen.empty());
      for (const AgentVerdict& v : seen) {
        INFO(v.attestation_id);
        CHECK(QueryInt("SELECT count(*) FROM attestations WHERE "
                       "attestation_id = $1",
                       {v.attestation_id}) == 1);
        for (const auto& [from, to] : outages) {
          CHECK(!(v.state == "pass" && v.at > from && v.at < to));
        }
      }
    }
    testing::RunResult list = Ctl({"-o", "json", "agents", "list"});
    INFO(list.err);
    REQUIRE(list.status.Success());
    nlohmann::json j = nlohmann::json::parse(list.out, nullptr, false);
    REQUIRE(j.is_object());
    int shown = 0;
    for (const nlohmann::json& s : j["agents"]) {
      if (s.value("state", "") != "pass") continue;
      ++shown;
      INFO(s.dump());
      CHECK(QueryInt("SELECT (extract(epoch from now() - max(at)) * 1000)::"
                     "bigint FROM attestations WHERE agent_id = $1",
                     {s.value("agent_id", "")}) <=
            2 * options_.interval_s * 1000 + 1000);
    }
    CHECK(shown <= static_cast<int>(agents_.size()));
  }

  static TempDir NewDir() {
    absl::StatusOr<TempDir> d = TempDir::Create("fault");
    REQUIRE(d.ok());
    return *std::move(d);
  }

  PoolOptions options_;
  TempDir dir_;
  Tls tls_;
  std::unique_ptr<PgCluster> pg_;
  std::unique_ptr<TcpProxy> proxy_;
  std::vector<Agent> agents_;
  std::optional<Registrar> registrar_;
  std::vector<std::unique_ptr<ServerProcess>> verifiers_;
  std::vector<std::string> good_;
};

// How often `text` occurs in the agent's log.
int Occurrences(const Agent& a, absl::string_view text) {
  return LinesWith(a.log(), text);
}

TEST_CASE(
    "fault: a blackholed database makes verifiers answer UNAVAILABLE, "
    "never PASS, SIGTERM still works, verdicts resume after it heals",
    "[fault][pg][e2e][tpm]") {
  PoolOptions o;
  o.interval_s = 5;
  FaultPool pool(o);
  Agent& agent = pool.agents_[0];
  const size_t passes = pool.PassesOf(agent).size();
  const int unavailable_before = Occurrences(agent, "database unavailable");

  pool.proxy_->Blackhole();
  const auto t0 = Clock::now();
  const absl::Time down = absl::Now();
  pool.Append(agent, {pool.good_[0]});  // A push is due now.

  // The agent is told UNAVAILABLE (its stream ends with it) ...
  REQUIRE(Within(30, [&] {
    return Occurrences(agent, "database unavailable") > unavailable_before;
  }));
  WARN("blackhole to UNAVAILABLE on the agent's stream: " << SecondsSince(t0)
                                                          << " s");
  // ... and so is an operator.
  const auto t1 = Clock::now();
  testing::RunResult get = pool.Ctl({"agents", "get", agent.id});
  const double admin = SecondsSince(t1);
  WARN("Admin GetAgent during the blackhole: " << admin << " s");
  INFO(get.err);
  CHECK(get.status.code == 2);  // vouchctl's exit code for UNAVAILABLE
  CHECK(absl::StrContains(get.err, "verifier database unavailable"));
  CHECK(admin < 30);

  // SIGTERM ends a verifier within 10 s although its database hangs.
  ServerProcess& v2 = *pool.verifiers_[1];
  const auto t2 = Clock::now();
  v2.Signal(SIGTERM);
  absl::StatusOr<testing::ExitStatus> exited =
      v2.process().WaitFor(std::chrono::seconds(10));
  const double stop = SecondsSince(t2);
  WARN("SIGTERM to exit during the blackhole: " << stop << " s");
  REQUIRE(exited.ok());
  CHECK(exited->Success());
  CHECK(stop < 10);

  // No PASS anywhere while the database was unreachable.
  CHECK(pool.PassesOf(agent).size() == passes);
  pool.proxy_->Heal();
  const absl::Time up = absl::Now();
  const auto t3 = Clock::now();
  REQUIRE(Within(2 * o.interval_s,
                 [&] { return pool.PassesOf(agent).size() > passes; }));
  WARN("heal to the next PASS: " << SecondsSince(t3) << " s");
  v2.Start();
  pool.AuditExactlyOnce({{down + absl::Seconds(2), up}});
}

// A number from the environment (the soak settings), or `fallback`.
int EnvInt(const char* name, int fallback) {
  int v = 0;
  const char* text = std::getenv(name);
  return text != nullptr && absl::SimpleAtoi(text, &v) && v > 0 ? v : fallback;
}

// The agent's stored IMA position, read directly.
int64_t StoredNext(FaultPool& pool, const Agent& a) {
  return pool.QueryInt(
      "SELECT ima_next_entry FROM agent_state WHERE agent_id = $1", {a.id});
}

// Verdicts the agent logged from the verifier at `address`.
int VerdictsFrom(const Agent& a, const std::string& address) {
  int n = 0;
  for (const AgentVerdict& v : a.Verdicts()) n += v.verifier == address;
  return n;
}

TEST_CASE(
    "fault: kill -9 of the owning verifier inside a commit loses nothing "
    "and repeats nothing",
    "[fault][pg][e2e][tpm]") {
  PoolOptions o;
  // Every verdict transaction stays open 2 s before COMMIT.
  o.verifier_env = {{"VOUCH_TEST_COMMIT_DELAY", "2s"}};
  FaultPool pool(o);
  Agent& agent = pool.agents_[0];
  const std::string owner = pool.QueryInt(
                                "SELECT count(*) FROM agent_state WHERE "
                                "owner = 'v1'") == 1
                                ? "v1"
                                : "v2";
  ServerProcess& own = *pool.verifiers_[owner == "v1" ? 0 : 1];
  pool.Append(agent, {pool.good_[0]});
  // The owner's verdict transaction is open (sleeping before COMMIT).
  REQUIRE(Within(30, [&] {
    return pool.QueryInt(
               "SELECT count(*) FROM pg_stat_activity WHERE "
               "query LIKE 'SELECT pg_sleep%' AND state = "
               "'active'") > 0;
  }));
  own.Kill();
  // The agent goes on with the other verifier from the stored position.
  REQUIRE(
      Within(60, [&] { return StoredNext(pool, agent) == agent.ima_entries; }));
  // The killed verifier's open transaction either rolled back or, as its
  // COMMIT had already been sent (one pipelined round trip), committed
  // without anyone being told: at most one record more than the agent saw.
  const int64_t stored = pool.QueryInt(
      "SELECT count(*) FROM attestations WHERE verifier = $1", {owner});
  const int seen = VerdictsFrom(agent, own.address());
  CHECK(seen >= 1);
  CHECK((stored == seen || stored == seen + 1));
  own.Start();
  pool.AuditExactlyOnce({});
}

TEST_CASE(
    "fault: a verdict lost on the way back (verifier exits after commit, "
    "before send) is not counted twice",
    "[fault][pg][e2e][tpm]") {
  PoolOptions o;
  // v1 exits after its first committed batch, before sending the verdict.
  o.v1_env = {{"VOUCH_TEST_EXIT_AFTER_COMMITS", "1"}};
  FaultPool pool(o);
  Agent& agent = pool.agents_[0];
  ServerProcess& v1 = *pool.verifiers_[0];
  ServerProcess& v2 = *pool.verifiers_[1];
  // The agent tries v1 first; if it reached v2 first instead, v1 has not
  // committed yet: send the agent to it.
  if (v1.process().Running()) {
    v2.Kill();
    pool.Append(agent, {pool.good_[0]});
    absl::StatusOr<testing::ExitStatus> e =
        v1.process().WaitFor(std::chrono::seconds(60));
    REQUIRE(e.ok());
    v2.Start();
  }
  absl::StatusOr<testing::ExitStatus> exited =
      v1.process().WaitFor(std::chrono::seconds(1));
  REQUIRE(exited.ok());
  INFO(exited->ToString());
  CHECK(exited->code == 137);
  CHECK(absl::StrContains(Slurp(v1.log()), "exiting after commit"));
  // Committed, never acknowledged: the record exists, the agent never saw
  // a verdict from v1.
  CHECK(pool.QueryInt("SELECT count(*) FROM attestations WHERE verifier = "
                      "'v1'") == 1);
  CHECK(VerdictsFrom(agent, v1.address()) == 0);
  // v2 continues from the committed position: what v1 committed is not
  // asked for or counted again.
  pool.Append(agent, {pool.good_[1], pool.good_[2]});
  REQUIRE(
      Within(60, [&] { return StoredNext(pool, agent) == agent.ima_entries; }));
  pool.AuditExactlyOnce({});
}

// Attestation ids the verifier's commit task failed (test hook
// VOUCH_TEST_FAIL_EVERY_BATCH), from its log.
std::vector<std::string> FailedCommits(const ServerProcess& v) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(Slurp(v.log()), '\n')) {
    if (!absl::StrContains(line, "failing a commit batch")) continue;
    for (absl::string_view id : absl::StrSplit(
             LogField(line, "attestation_ids"), ',', absl::SkipEmpty())) {
      out.emplace_back(id);
    }
  }
  return out;
}

TEST_CASE(
    "fault: a failing commit task acknowledges nothing, stores nothing of "
    "its work, and verdicts resume",
    "[fault][pg][e2e][tpm]") {
  PoolOptions o;
  o.agents = 2;
  // Every third verdict batch of each verifier fails in the group-commit
  // worker, before the store: its verdicts get an error, nothing commits.
  o.verifier_env = {{"VOUCH_TEST_FAIL_EVERY_BATCH", "3"}};
  FaultPool pool(o);
  for (int round = 0; round < 3; ++round) {
    for (Agent& a : pool.agents_) pool.Append(a, {pool.good_[round]});
    for (const Agent& a : pool.agents_) {
      INFO(a.id);
      REQUIRE(Within(60, [&] { return StoredNext(pool, a) == a.ima_entries; }));
    }
  }
  std::vector<std::string> failed;
  for (const auto& v : pool.verifiers_) {
    for (std::string& id : FailedCommits(*v)) failed.push_back(std::move(id));
  }
  REQUIRE(!failed.empty());
  // The failed work is nowhere: not stored, not acknowledged to an agent.
  for (const std::string& id : failed) {
    INFO(id);
    CHECK(pool.QueryInt(
              "SELECT count(*) FROM attestations WHERE attestation_id = $1",
              {id}) == 0);
    for (const Agent& a : pool.agents_) {
      for (const AgentVerdict& v : a.Verdicts()) CHECK(v.attestation_id != id);
    }
  }
  // The stream whose commit failed ended UNAVAILABLE (the agent said so),
  // and verdicts resumed: every agent passes again after the last failure.
  int told = 0;
  for (const Agent& a : pool.agents_) {
    told += Occurrences(a, "database unavailable");
  }
  CHECK(told >= 1);
  for (Agent& a : pool.agents_) {
    INFO(a.id);
    const size_t passes = pool.PassesOf(a).size();
    REQUIRE(Within(3 * o.interval_s,
                   [&] { return pool.PassesOf(a).size() > passes; }));
  }
  pool.AuditExactlyOnce({});
}

TEST_CASE("fault: kill -9 of the agent mid-push", "[fault][pg][e2e][tpm]") {
  FaultPool pool(PoolOptions{});
  Agent& agent = pool.agents_[0];
  for (int round = 0; round < 3; ++round) {
    pool.Append(agent, {pool.good_[round]});
    // Anywhere from before the quote to after the evidence left.
    std::this_thread::sleep_for(std::chrono::milliseconds(150 * round));
    ::kill(agent.process->pid(), SIGKILL);
    agent.process->Terminate();
    pool.StartAgent(agent);
    REQUIRE(Within(
        60, [&] { return StoredNext(pool, agent) == agent.ima_entries; }));
  }
  pool.AuditExactlyOnce({});
}

// The figure is twenty cycles under twenty agents; the default run
// does VOUCH_FAULT_CYCLES=3 under VOUCH_FAULT_AGENTS=3 to stay within a
// few minutes on two cores (scripts/fault-soak runs the full count).
TEST_CASE("fault: pg_ctl stop -m immediate / start cycles under several agents",
          "[fault][pg][e2e][tpm]") {
  PoolOptions o;
  o.agents = EnvInt("VOUCH_FAULT_AGENTS", 3);
  const int cycles = EnvInt("VOUCH_FAULT_CYCLES", 3);
  FaultPool pool(o);
  std::vector<std::pair<absl::Time, absl::Time>> outages;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    INFO("cycle " << cycle);
    for (Agent& a : pool.agents_) pool.Append(a, {pool.good_[cycle % 3]});
    // Stop while some pushes are in flight.
    std::this_thread::sleep_for(std::chrono::milliseconds(300 * (cycle % 3)));
    REQUIRE(pool.pg_->Stop().ok());
    const absl::Time down = absl::Now();
    std::vector<size_t> passes;
    for (const Agent& a : pool.agents_)
      passes.push_back(pool.PassesOf(a).size());
    std::this_thread::sleep_for(std::chrono::seconds(3));
    for (size_t i = 0; i < pool.agents_.size(); ++i) {
      CHECK(pool.PassesOf(pool.agents_[i]).size() == passes[i]);
    }
    // The outage ends when the restart begins: pg_ctl start -w notices a
    // ready server only at its next poll, and a verifier may commit (and
    // an agent log a PASS) before it returns.
    const absl::Time restarting = absl::Now();
    REQUIRE(pool.pg_->Restart().ok());
    outages.emplace_back(down + absl::Seconds(1), restarting);
    for (const Agent& a : pool.agents_) {
      INFO(a.id);
      REQUIRE(Within(90, [&] { return StoredNext(pool, a) == a.ima_entries; }));
    }
  }
  pool.AuditExactlyOnce(outages);
}

// The backup and restore runbook of docs/operations.md, end to end.
TEST_CASE(
    "backup and restore: pg_dump of a live pool restored into a new "
    "cluster, agents go on with no stale PASS and nothing attested twice, "
    "Watch tokens of the original are OUT_OF_RANGE",
    "[e2e][pg][tpm]") {
  PoolOptions o;
  o.agents = 2;
  o.interval_s = 5;
  FaultPool pool(o);
  // A Watch position of the original database.
  std::optional<store::EventPosition> token;
  {
    store::PgPool db(pool.pg_->conninfo(), 1);
    store::PgVerifierStore s(&db, 2);
    absl::StatusOr<store::EventPosition> p = s.EventHorizon();
    REQUIRE(p.ok());
    token = *p;
  }
  for (Agent& a : pool.agents_) pool.Append(a, {pool.good_[1]});
  for (const Agent& a : pool.agents_) {
    INFO(a.id);
    REQUIRE(Within(60, [&] { return StoredNext(pool, a) == a.ima_entries; }));
  }
  // The backup, while the agents attest.
  const std::string bin = pool.pg_->bin_dir();
  const std::string dump = pool.dir_.Join("vouch.dump");
  testing::RunResult dumped = testing::RunCapture(
      {bin + "/pg_dump", "-Fc", "-f", dump, "-d", pool.pg_->conninfo()});
  INFO(dumped.err);
  REQUIRE(dumped.status.Success());
  // The original is lost with its servers; verdicts after the dump go too.
  for (auto& v : pool.verifiers_) v->Terminate();
  for (Agent& a : pool.agents_) a.process->Terminate();
  pool.registrar_.reset();
  REQUIRE(pool.pg_->Stop().ok());

  // A new cluster from the dump.
  absl::StatusOr<std::unique_ptr<PgCluster>> fresh = PgCluster::Start();
  REQUIRE(fresh.ok());
  testing::RunResult restored =
      testing::RunCapture({bin + "/pg_restore", "--no-owner", "--exit-on-error",
                           "-d", (*fresh)->conninfo(), dump});
  INFO(restored.err);
  REQUIRE(restored.status.Success());
  pool.pg_ = *std::move(fresh);
  // Its transaction ids must pass the restored events' (Watch orders by
  // them): the runbook's pg_resetwal -e, on a cleanly stopped server.
  const int64_t epoch = pool.QueryInt(
      "SELECT floor(max(x)::text::numeric / 4294967296)::bigint + 1 FROM "
      "(SELECT max(xid) AS x FROM agent_events UNION ALL SELECT max(xid) "
      "FROM attestations) m");
  ProcessOptions server_side;
  server_side.run_as = pool.pg_->os_user();
  server_side.env = {{"LC_ALL", "C"}};
  absl::StatusOr<std::string> stopped = testing::RunCommand(
      {bin + "/pg_ctl", "stop", "-m", "fast", "-w", "-D", pool.pg_->data_dir()},
      server_side);
  INFO(stopped.status().message());
  REQUIRE(stopped.ok());
  REQUIRE(pool.pg_->Stop().ok());
  absl::StatusOr<std::string> reset =
      testing::RunCommand({bin + "/pg_resetwal", "-e", absl::StrCat(epoch),
                           "-D", pool.pg_->data_dir()},
                          server_side);
  INFO(reset.status().message());
  REQUIRE(reset.ok());
  REQUIRE(pool.pg_->Restart().ok());

  // The restored rows are consistent: every agent's state names a stored
  // record, no nonce twice, its IMA position is what its records add up to.
  CHECK(pool.QueryInt("SELECT count(*) FROM agent_state a WHERE NOT EXISTS "
                      "(SELECT 1 FROM attestations t WHERE t.attestation_id "
                      "= a.last_attestation_id)") == 0);
  CHECK(pool.QueryInt("SELECT count(*) - count(DISTINCT nonce) FROM "
                      "attestations") == 0);
  CHECK(pool.QueryInt("SELECT count(*) FROM agent_state a WHERE "
                      "ima_next_entry <> (SELECT coalesce(sum(ima_next_entry "
                      "- ima_from), 0) FROM attestations t WHERE t.agent_id "
                      "= a.agent_id)") == 0);

  // The pool comes back against it: registrar, verifiers, agents.
  std::vector<const Swtpm*> tpms;
  for (const Agent& a : pool.agents_) tpms.push_back(a.tpm.get());
  pool.registrar_.emplace(pool.dir_, *pool.pg_, pool.tls_,
                          CaDir(pool.dir_, "ek-ca", tpms));
  pool.verifiers_.clear();
  for (int i = 0; i < 2; ++i) {
    const std::string id = absl::StrCat("r", i + 1);
    std::vector<std::string> args = pool.VerifierArgs(id);
    args.back() = pool.pg_->tcp_conninfo();  // --database-url
    pool.verifiers_.push_back(std::make_unique<ServerProcess>(
        pool.dir_, *pool.pg_, pool.tls_, VOUCH_VERIFIER_BIN, "verifier", id,
        args));
  }
  // The original's tokens name another incarnation.
  {
    store::PgPool db(pool.pg_->conninfo(), 1);
    store::PgVerifierStore s(&db, 2);
    absl::StatusOr<std::vector<store::EventRow>> old =
        s.EventsAfter("default", *token, {}, {}, true, 10);
    INFO(old.status().message());
    CHECK(absl::IsOutOfRange(old.status()));
    absl::StatusOr<store::EventPosition> now = s.EventHorizon();
    REQUIRE(now.ok());
    CHECK(now->incarnation != token->incarnation);
  }
  const absl::Time back = absl::Now();
  for (Agent& a : pool.agents_) pool.StartAgent(a);
  for (Agent& a : pool.agents_) {
    INFO(a.id);
    REQUIRE(Within(90, [&] {
      for (const AgentVerdict& v : pool.PassesOf(a)) {
        if (v.at > back) return true;
      }
      return false;
    }));
  }
  // More measurements, each accepted once, then the audit of the restored
  // database (not of the agents' logs: verdicts between the dump and the
  // loss are gone with the original, and the agents sent those IMA entries
  // again from the restored position).
  for (Agent& a : pool.agents_) pool.Append(a, {pool.good_[2]});
  for (const Agent& a : pool.agents_) {
    INFO(a.id);
    REQUIRE(Within(60, [&] { return StoredNext(pool, a) == a.ima_entries; }));
    CHECK(pool.QueryInt("SELECT coalesce(sum(ima_next_entry - ima_from), 0) "
                        "FROM attestations WHERE agent_id = $1",
                        {a.id}) == a.ima_entries);
    CHECK(pool.QueryInt("SELECT count(*) FROM (SELECT ima_from, "
                        "lag(ima_next_entry) OVER (ORDER BY at, seq) AS prev "
                        "FROM attestations WHERE agent_id = $1 AND ima_from "
                        "IS NOT NULL) t WHERE prev IS NOT NULL AND ima_from "
                        "<> prev",
                        {a.id}) == 0);
  }
  CHECK(pool.QueryInt("SELECT count(*) - count(DISTINCT (agent_id, nonce)) "
                      "FROM attestations") == 0);
  CHECK(pool.QueryInt("SELECT count(*) - count(DISTINCT nonce) FROM "
                      "attestation_nonces") == 0);
  // No stale PASS: an agent shown passing has a verdict younger than two
  // intervals.
  testing::RunResult list = pool.Ctl({"-o", "json", "agents", "list"});
  INFO(list.err);
  REQUIRE(list.status.Success());
  nlohmann::json j = nlohmann::json::parse(list.out, nullptr, false);
  REQUIRE(j.is_object());
  for (const nlohmann::json& a : j["agents"]) {
    if (a.value("state", "") != "pass") continue;
    INFO(a.dump());
    CHECK(pool.QueryInt("SELECT (extract(epoch from now() - max(at)) * "
                        "1000)::bigint FROM attestations WHERE agent_id = $1",
                        {a.value("agent_id", "")}) <=
          2 * o.interval_s * 1000 + 1000);
  }
}

}  // namespace
}  // namespace vouch

namespace vouch {
namespace {

TEST_CASE(
    "fault: maximum connection age rotates every stream over the pool and "
    "loses no attestation",
    "[fault][pg][e2e][tpm]") {
  PoolOptions o;
  o.agents = 2;
  o.interval_s = 5;
  // Connections live 3 s (+-10%), calls on them 1 s more: the agents'
  // streams end every few seconds and come back, on either verifier.
  o.verifier_args = {"--grpc-max-connection-age", "3s",
                     "--grpc-max-connection-age-grace", "1s"};
  FaultPool pool(o);
  std::vector<int> ended_before;
  for (const Agent& a : pool.agents_) {
    ended_before.push_back(Occurrences(a, "attestation stream ended"));
  }
  for (int round = 0; round < 4; ++round) {
    for (Agent& a : pool.agents_) pool.Append(a, {pool.good_[round % 3]});
    std::this_thread::sleep_for(std::chrono::seconds(4));
  }
  for (size_t i = 0; i < pool.agents_.size(); ++i) {
    const Agent& a = pool.agents_[i];
    INFO(a.id);
    CHECK(Occurrences(a, "attestation stream ended") >= ended_before[i] + 2);
  }
  pool.AuditExactlyOnce({});
}

}  // namespace
}  // namespace vouch
