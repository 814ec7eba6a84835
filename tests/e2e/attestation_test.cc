// Issue #7 end to end: two real vouch-verifier processes sharing a real
// PostgreSQL, a real vouch-registrar, a real vouch-agent on swtpm, and
// `vouchctl dev ima-append` modelling the kernel's IMA. Failover, the epoch
// fence, a database outage, timeouts and a reboot are done to the real
// processes (SIGKILL, SIGSTOP, pg_ctl -m immediate, a swtpm power cycle).
//
// Latency goals of the issue (fail within 2 s of a new file, failover within
// 5 s) are measured and printed here, and reported in bench/README.md; the
// assertions use generous bounds that still fail if the mechanism (an early
// push, a reconnect) is missing, so a loaded CI machine does not flake.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file.h"
#include "e2e/e2e_util.h"
#include "sdk/channel.h"
#include "store/pg_connection.h"
#include "vouch/v1/admin.grpc.pb.h"

namespace vouch {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Polls up to `seconds`.
template <typename Pred>
bool Within(double seconds, Pred pred) {
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

// A vouch-verifier process of the pool: 1 s sweeps, timeout after 2
// intervals.
class Verifier : public ServerProcess {
 public:
  Verifier(const TempDir& dir, const PgCluster& pg, const Tls& tls,
           const std::string& id)
      : ServerProcess(
            dir, pg, tls, VOUCH_VERIFIER_BIN, "verifier", id,
            {"--verifier-id", id, "--verifier-sweep-interval", "1s",
             "--verifier-timeout-intervals", "2", "--verifier-min-interval",
             "1s", "--verifier-workers", "2"}) {}
};

TempDir NewDir() {
  absl::StatusOr<TempDir> d = TempDir::Create("pool");
  REQUIRE(d.ok());
  return *std::move(d);
}

// The whole system on this machine, with one enrolled agent.
class Pool {
 public:
  explicit Pool(const std::string& interval = "5s")
      : dir_(NewDir()), tls_(dir_.path()) {
    absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
    REQUIRE(pg.ok());
    pg_ = *std::move(pg);
    absl::StatusOr<std::unique_ptr<Swtpm>> tpm = Swtpm::Start();
    REQUIRE(tpm.ok());
    tpm_ = *std::move(tpm);
    registrar_.emplace(dir_, *pg_, tls_, CaDir(dir_, "ek-ca", {tpm_.get()}));
    v1_.emplace(dir_, *pg_, tls_, "v1");
    v2_.emplace(dir_, *pg_, tls_, "v2");
    ima_log_ = dir_.Join("ima.log");
    std::ofstream(ima_log_).flush();
    mkdir(dir_.Join("state").c_str(), 0700);
    testing::RunResult id = testing::RunCapture(
        {VOUCH_AGENT_BIN, "--print-agent-id", "--agent-tcti", tpm_->tcti(),
         "--agent-state-dir", dir_.Join("state")});
    INFO(id.err);
    REQUIRE(id.status.Success());
    agent_id_ = std::string(absl::StripAsciiWhitespace(id.out));
    agent_dir_ = tls_.Agent(agent_id_);
    // Known-good files and a policy learned from their measurements.
    for (int i = 0; i < 3; ++i) {
      const std::string f = dir_.Join(absl::StrCat("good", i));
      std::ofstream(f) << "good file " << i;
      good_.push_back(f);
    }
    Append(good_);
    const std::string policy = dir_.Join("policy.json");
    testing::RunResult learned =
        testing::RunCapture({VOUCHCTL_BIN, "policy", "create", "--from-ima-log",
                             ima_log_, "-o", policy});
    INFO(learned.err);
    REQUIRE(learned.status.Success());
    testing::RunResult added = Ctl({"policies", "add", "web", "-f", policy});
    INFO(added.err);
    REQUIRE(added.status.Success());
    StartAgent();
    REQUIRE(Eventually([&] {
      return absl::StrContains(Slurp(agent_log()), "agent ready to attest");
    }));
    testing::RunResult enrolled =
        Ctl({"agents", "enroll", agent_id_, "--runtime-policy", "web",
             "--interval", interval});
    INFO(enrolled.err);
    REQUIRE(enrolled.status.Success());
  }

  void StartAgent() {
    ProcessOptions opts;
    opts.stdout_path = opts.stderr_path = agent_log();
    absl::StatusOr<ChildProcess> p =
        ChildProcess::Start({VOUCH_AGENT_BIN,
                             "--agent-tcti",
                             tpm_->tcti(),
                             "--agent-state-dir",
                             dir_.Join("state"),
                             "--agent-registrars",
                             registrar_->address(),
                             "--agent-verifiers",
                             absl::StrCat(v1_->address(), ",", v2_->address()),
                             "--agent-ima-log",
                             ima_log_,
                             "--agent-boot-log",
                             "",
                             "--agent-keep-tpm-open",
                             "false",
                             "--agent-reply-timeout",
                             "3s",
                             "--agent-retry-initial",
                             "500ms",
                             "--agent-stream-retry-max",
                             "2s",
                             "--tls-ca-file",
                             agent_dir_ + "/ca.pem",
                             "--tls-cert-file",
                             agent_dir_ + "/agent.pem",
                             "--tls-key-file",
                             agent_dir_ + "/agent.key",
                             "--log-level",
                             "info"},
                            opts);
    REQUIRE(p.ok());
    agent_.emplace(*std::move(p));
  }
  void StopAgent() { agent_->Terminate(); }

  // `vouchctl dev ima-append` of `paths` (the kernel measuring them).
  void Append(const std::vector<std::string>& paths) {
    std::vector<std::string> argv = {VOUCHCTL_BIN, "dev",        "ima-append",
                                     "--tcti",     tpm_->tcti(), "--log",
                                     ima_log_};
    argv.insert(argv.end(), paths.begin(), paths.end());
    testing::RunResult r = testing::RunCapture(argv);
    INFO(r.err);
    REQUIRE(r.status.Success());
  }

  testing::RunResult Ctl(std::vector<std::string> args,
                         const Verifier* via = nullptr) {
    std::vector<std::string> argv = {VOUCHCTL_BIN, "--server",
                                     (via ? via : &*v1_)->address(),
                                     "--tls-dir", tls_.client_dir("admin")};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCapture(argv);
  }

  // The agent's status as `vouchctl agents get -o json` shows it (via a
  // verifier that is up); null when it could not be read.
  nlohmann::json Status(const Verifier* via = nullptr) {
    testing::RunResult r = Ctl({"agents", "get", agent_id_, "-o", "json"}, via);
    if (!r.status.Success()) return nullptr;
    return nlohmann::json::parse(r.out, nullptr, false);
  }
  std::string State(const Verifier* via = nullptr) {
    nlohmann::json j = Status(via);
    return j.is_object() ? j.value("state", "") : "";
  }

  std::unique_ptr<store::PgConnection> Db() {
    absl::StatusOr<std::unique_ptr<store::PgConnection>> c =
        store::PgConnection::Connect(pg_->conninfo());
    REQUIRE(c.ok());
    return *std::move(c);
  }
  int64_t QueryInt(const std::string& sql) {
    absl::StatusOr<store::PgRows> rows = Db()->Query(sql);
    REQUIRE(rows.ok());
    int64_t v = 0;
    REQUIRE(absl::SimpleAtoi(rows->rows.at(0).at(0).value_or(""), &v));
    return v;
  }

  // attestation_id of every verdict the agent logged, in order.
  std::vector<std::string> AgentVerdicts() {
    std::vector<std::string> ids;
    for (absl::string_view line : absl::StrSplit(Slurp(agent_log()), '\n')) {
      if (!absl::StrContains(line, "msg=verdict")) continue;
      const size_t at = line.find("attestation_id=");
      if (at == absl::string_view::npos) continue;
      ids.emplace_back(line.substr(at + 15, 32));
    }
    return ids;
  }

  std::string agent_log() const { return dir_.Join("agent.log"); }

  TempDir dir_;
  Tls tls_;
  std::unique_ptr<PgCluster> pg_;
  std::unique_ptr<Swtpm> tpm_;
  std::optional<Registrar> registrar_;
  std::optional<Verifier> v1_;
  std::optional<Verifier> v2_;
  std::optional<ChildProcess> agent_;
  std::string ima_log_;
  std::string agent_id_;
  std::string agent_dir_;
  std::vector<std::string> good_;
};

TEST_CASE(
    "pool: an agent passes, and a file not in its policy fails it at "
    "once, naming the file",
    "[e2e][pg][tpm]") {
  // A 60 s interval: only the push on new IMA entries can explain a quick
  // verdict.
  Pool pool("60s");
  REQUIRE(Within(60, [&] { return pool.State() == "pass"; }));
  nlohmann::json s = pool.Status();
  CHECK(s["ima_next_entry"] == 3);
  CHECK((s["verifier_id"] == "v1" || s["verifier_id"] == "v2"));
  CHECK(s["failures"].empty());

  // Known files measured again keep it passing.
  pool.Append({pool.good_[0]});
  REQUIRE(Within(30, [&] { return pool.Status()["ima_next_entry"] == 4; }));
  CHECK(pool.State() == "pass");

  const std::string evil = pool.dir_.Join("evil.sh");
  std::ofstream(evil) << "#!/bin/sh\necho pwned\n";
  const auto t0 = Clock::now();
  pool.Append({evil});
  REQUIRE(Within(20, [&] { return pool.State() == "fail"; }));
  const double latency = SecondsSince(t0);
  WARN("new unknown file to FAIL: " << latency << " s (goal 2 s)");
  CHECK(latency < 20);
  s = pool.Status();
  REQUIRE(s["failures"].size() >= 1);
  CHECK(s["failures"][0]["path"] == evil);
  CHECK(s["failures"][0]["code"] == "FAILURE_CODE_IMA_FILE_NOT_IN_POLICY");
  CHECK(s["failures"][0]["ima_entry_index"] == 4);

  // A failure is latched: more good measurements do not clear it.
  pool.Append({pool.good_[1]});
  REQUIRE(Within(30, [&] { return pool.Status()["ima_next_entry"] == 6; }));
  CHECK(pool.State() == "fail");
  // Every verdict the agent saw is an attestation committed in the database.
  for (const std::string& id : pool.AgentVerdicts()) {
    CHECK(pool.QueryInt(absl::StrCat(
              "SELECT count(*) FROM attestations WHERE attestation_id = '", id,
              "'")) == 1);
  }
}

TEST_CASE(
    "pool: SIGKILL of the owning verifier, SIGSTOP past the lease, "
    "and the epoch fence",
    "[e2e][pg][tpm]") {
  Pool pool("5s");
  REQUIRE(Within(60, [&] { return pool.State() == "pass"; }));
  std::string owner = pool.Status()["verifier_id"];
  Verifier* own = owner == "v1" ? &*pool.v1_ : &*pool.v2_;
  Verifier* other = owner == "v1" ? &*pool.v2_ : &*pool.v1_;
  pool.Append({pool.good_[0], pool.good_[1]});
  REQUIRE(Within(30, [&] { return pool.Status()["ima_next_entry"] == 5; }));

  // SIGKILL the owner; the agent continues on the other verifier from the
  // stored offset.
  own->Kill();
  const auto t0 = Clock::now();
  pool.Append({pool.good_[2]});
  REQUIRE(Within(30, [&] {
    nlohmann::json s = pool.Status(other);
    return s.is_object() && s["verifier_id"] == other->id() &&
           s["state"] == "pass" && s["ima_next_entry"] == 6;
  }));
  const double failover = SecondsSince(t0);
  WARN("failover after SIGKILL: " << failover << " s (goal 5 s)");
  CHECK(failover < 30);
  // No full replay: the new owner's first attestation started at the stored
  // offset and received only the new entry.
  auto db = pool.Db();
  absl::StatusOr<store::PgRows> first = db->Query(
      "SELECT ima_from, ima_entries_received FROM attestations WHERE "
      "verifier = $1 ORDER BY at LIMIT 1",
      {other->id()});
  REQUIRE(first.ok());
  REQUIRE(first->rows.size() == 1);
  CHECK(first->rows[0][0] == std::optional<std::string>("5"));
  CHECK(first->rows[0][1] == std::optional<std::string>("1"));
  CHECK(pool.QueryInt("SELECT count(*) FROM attestations WHERE ima_from = 0") ==
        1);
  // Nothing lost (each verdict the agent got is recorded), nothing
  // duplicated (one record per nonce, entries counted once).
  for (const std::string& id : pool.AgentVerdicts()) {
    CHECK(pool.QueryInt(absl::StrCat(
              "SELECT count(*) FROM attestations WHERE attestation_id = '", id,
              "'")) == 1);
  }
  CHECK(pool.QueryInt("SELECT count(DISTINCT nonce) - count(*) FROM "
                      "attestations") == 0);
  CHECK(pool.QueryInt("SELECT sum(ima_entries_received) FROM attestations") ==
        6);

  // Bring the killed verifier back, then freeze the owner past its lease:
  // the agent times out on its reply and the other verifier takes over.
  own->Start();
  other->Signal(SIGSTOP);
  REQUIRE(Within(40, [&] {
    nlohmann::json s = pool.Status(own);
    return s.is_object() && s["verifier_id"] == own->id();
  }));
  const int64_t taken_epoch = pool.QueryInt("SELECT epoch FROM agent_state");
  other->Signal(SIGCONT);
  // The old owner's write (the evidence it held, or its lease renewal) is
  // rejected by the fence, and it closes its stream.
  REQUIRE(Within(20, [&] {
    return absl::StrContains(Slurp(other->log()), "ownership lost");
  }));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  nlohmann::json s = pool.Status(own);
  CHECK(s["verifier_id"] == own->id());
  CHECK(pool.QueryInt("SELECT epoch FROM agent_state") >= taken_epoch);
  CHECK(pool.QueryInt(
            absl::StrCat("SELECT count(*) FROM attestations WHERE verifier = '",
                         other->id(), "' AND epoch >= ", taken_epoch)) == 0);
  pool.Append({pool.good_[0]});
  REQUIRE(Within(30, [&] {
    nlohmann::json st = pool.Status(own);
    return st.is_object() && st["ima_next_entry"] == 7 && st["state"] == "pass";
  }));
}

TEST_CASE("pool: no pass while PostgreSQL is down, attestation resumes after",
          "[e2e][pg][tpm]") {
  Pool pool("5s");
  REQUIRE(Within(60, [&] { return pool.State() == "pass"; }));
  REQUIRE(pool.pg_->Stop().ok());
  const size_t before = pool.AgentVerdicts().size();
  pool.Append({pool.good_[0]});  // A push is due now.
  std::this_thread::sleep_for(std::chrono::seconds(8));
  CHECK(pool.AgentVerdicts().size() == before);
  CHECK(absl::StrContains(Slurp(pool.agent_log()), "database unavailable"));
  REQUIRE(pool.pg_->Restart().ok());
  REQUIRE(Within(40, [&] {
    nlohmann::json s = pool.Status();
    return s.is_object() && s["state"] == "pass" && s["ima_next_entry"] == 4;
  }));
  CHECK(pool.AgentVerdicts().size() > before);
}

TEST_CASE(
    "pool: a silent agent times out, also across verifier restarts, "
    "and a rebooted one passes again from entry 0",
    "[e2e][pg][tpm]") {
  Pool pool("5s");
  REQUIRE(Within(60, [&] { return pool.State() == "pass"; }));
  const int boots = pool.Status()["reset_count"];
  pool.StopAgent();
  pool.v1_->Terminate();
  pool.v2_->Terminate();
  // With every verifier down the stored pass is stale after 2 x 5 s: no
  // sweeper ran, and still no pass is shown once one is back.
  std::this_thread::sleep_for(std::chrono::seconds(11));
  pool.v1_->Start();
  CHECK(pool.State() == "timeout");
  pool.v2_->Start();
  REQUIRE(Within(10, [&] {
    return pool.QueryInt(
               "SELECT count(*) FROM agent_state WHERE state = "
               "'timeout'") == 1;
  }));

  // A reboot: a power cycle of the TPM (resetCount grows, PCR 10 restarts)
  // with a new, empty measurement list.
  REQUIRE(pool.tpm_->Restart().ok());
  std::ofstream(pool.ima_log_, std::ios::trunc).flush();
  pool.Append({pool.good_[2]});
  pool.StartAgent();
  REQUIRE(Within(60, [&] {
    nlohmann::json s = pool.Status();
    return s.is_object() && s["state"] == "pass" && s["ima_next_entry"] == 1;
  }));
  CHECK(pool.Status()["reset_count"] == boots + 1);
  CHECK(absl::StrContains(Slurp(pool.v1_->log()) + Slurp(pool.v2_->log()),
                          "agent rebooted"));
}

}  // namespace
}  // namespace vouch
