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

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/bytes.h"
#include "common/file.h"
#include "core/boot/event_log.h"
#include "e2e/e2e_util.h"
#include "e2e/registrar_client.h"
#include "sdk/channel.h"
#include "store/migrate.h"
#include "store/pg_connection.h"
#include "store/pg_pool.h"
#include "store/pg_verifier_store.h"
#include "tpm/esys_tpm.h"
#include "verifier/group_commit.h"
#include "vouch/v1/admin.grpc.pb.h"
#include "vouch/v1/attestation.grpc.pb.h"

namespace vouch {
namespace {

using Clock = std::chrono::steady_clock;

// A vouch-verifier process of the pool: 1 s sweeps, timeout after 2
// intervals; `extra`: more flags (admission caps).
class Verifier : public ServerProcess {
 public:
  Verifier(const TempDir& dir, const PgCluster& pg, const Tls& tls,
           const std::string& id, const std::vector<std::string>& extra = {})
      : ServerProcess(dir, pg, tls, VOUCH_VERIFIER_BIN, "verifier", id,
                      Args(id, extra)) {}

 private:
  static std::vector<std::string> Args(const std::string& id,
                                       std::vector<std::string> extra) {
    extra.insert(extra.begin(),
                 {"--verifier-policy-signing-keys",
                  VOUCH_TEST_DATA_DIR "/keylime/runtime-policy-pubkey.pub"});
    return PoolVerifierArgs(id, extra);
  }
};

TempDir NewDir() {
  absl::StatusOr<TempDir> d = TempDir::Create("pool");
  REQUIRE(d.ok());
  return *std::move(d);
}

// The whole system on this machine, with one enrolled agent; with_boot_log:
// the agent reads its boot log from boot_log_ (written by the test);
// verifier_args: more flags of both verifiers.
class Pool {
 public:
  explicit Pool(const std::string& interval = "5s", bool with_boot_log = false,
                const std::vector<std::string>& verifier_args = {})
      : dir_(NewDir()), tls_(dir_.path()) {
    if (with_boot_log) boot_log_ = dir_.Join("binary_bios_measurements");
    absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
    REQUIRE(pg.ok());
    pg_ = *std::move(pg);
    absl::StatusOr<std::unique_ptr<Swtpm>> tpm = Swtpm::Start();
    REQUIRE(tpm.ok());
    tpm_ = *std::move(tpm);
    registrar_.emplace(dir_, *pg_, tls_, CaDir(dir_, "ek-ca", {tpm_.get()}));
    v1_.emplace(dir_, *pg_, tls_, "v1", verifier_args);
    v2_.emplace(dir_, *pg_, tls_, "v2", verifier_args);
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
        testing::RunCapture({VOUCHCTL_BIN, "policy-file", "create",
                             "--from-ima-log", ima_log_, "-f", policy});
    INFO(learned.err);
    REQUIRE(learned.status.Success());
    testing::RunResult added = Ctl({"policies", "add", "web", "-f", policy});
    INFO(added.err);
    REQUIRE(added.status.Success());
    StartAgent();
    testing::RunResult enrolled =
        Ctl({"agents", "enroll", agent_id_, "--runtime-policy", "web",
             "--interval", interval});
    INFO(enrolled.err);
    REQUIRE(enrolled.status.Success());
  }

  void StartAgent() {
    AgentProcessOptions o;
    o.tcti = tpm_->tcti();
    o.state_dir = dir_.Join("state");
    o.registrars = registrar_->address();
    o.verifiers = absl::StrCat(v1_->address(), ",", v2_->address());
    o.ima_log = ima_log_;
    o.boot_log = boot_log_;
    o.tls_dir = agent_dir_;
    o.log = agent_log();
    o.reply_timeout = "3s";
    agent_.emplace(StartAgentProcess(o));
  }
  // Stops the agent with SIGTERM, which it must obey at once (exit 0, not
  // the SIGKILL after the grace). A SIGKILL mid-quote can still leave its
  // EK and AIK loaded in swtpm, which has no resource manager; whoever opens
  // the TPM next flushes them (EsysTpm::FlushTransientObjects), as the
  // agent does.
  void StopAgent() {
    const testing::ExitStatus stopped = agent_->Terminate();
    INFO(stopped.ToString());
    CHECK(stopped.Success());
  }

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
    return VerdictIdsInLog(agent_log());
  }
  // Measures something into PCR 9 (as grub does after boot) and waits for
  // the agent's FAIL; returns the seconds it took.
  double ExtendPcr9UntilFail() {
    const auto t0 = Clock::now();
    testing::RunResult extended =
        testing::RunCapture({"tpm2_pcrextend", "-T", tpm_->tcti(),
                             absl::StrCat("9:sha256=", std::string(64, 'a'))});
    INFO(extended.err);
    REQUIRE(extended.status.Success());
    REQUIRE(Within(60, [&] { return State() == "fail"; }));
    return SecondsSince(t0);
  }
  // Every verdict the agent logged (saw acknowledged) is committed.
  void CheckVerdictsStored() {
    for (const std::string& id : AgentVerdicts()) {
      INFO(id);
      CHECK(QueryInt(absl::StrCat(
                "SELECT count(*) FROM attestations WHERE attestation_id = '",
                id, "'")) == 1);
    }
  }
  // Unenrolls the agent, enrolls it again with the runtime policy "web",
  // a 5 s interval and `policies` (flags), and waits for its PASS.
  void Reenroll(const std::vector<std::string>& policies) {
    REQUIRE(Ctl({"agents", "delete", agent_id_}).status.Success());
    std::vector<std::string> args = {
        "agents", "enroll",     agent_id_, "--runtime-policy",
        "web",    "--interval", "5s"};
    args.insert(args.end(), policies.begin(), policies.end());
    testing::RunResult enrolled = Ctl(args);
    INFO(enrolled.err);
    REQUIRE(enrolled.status.Success());
    REQUIRE(Within(60, [&] { return State() == "pass"; }));
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
  std::string boot_log_;
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
  // An operator follows state changes (Watch) from here on.
  const std::string watch_out = pool.dir_.Join("watch.out");
  ProcessOptions wopts;
  wopts.stdout_path = watch_out;
  wopts.stderr_path = pool.dir_.Join("watch.err");
  absl::StatusOr<ChildProcess> watcher = ChildProcess::Start(
      {VOUCHCTL_BIN, "--server", pool.v1_->address(), "--tls-dir",
       pool.tls_.client_dir("admin"), "-o", "json", "agents", "watch"},
      wopts);
  REQUIRE(watcher.ok());
  std::this_thread::sleep_for(std::chrono::seconds(2));
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
  CHECK(s["failures"][0]["code"] == "ima.file_not_in_policy");
  CHECK(s["failures"][0]["ima_entry_index"] == 4);

  // A failure is latched: more good measurements do not clear it.
  pool.Append({pool.good_[1]});
  REQUIRE(Within(30, [&] { return pool.Status()["ima_next_entry"] == 6; }));
  CHECK(pool.State() == "fail");
  // Every verdict the agent saw is an attestation committed in the database.
  pool.CheckVerdictsStored();

  // The watcher saw the failure, with the file.
  REQUIRE(Within(10, [&] {
    return absl::StrContains(Slurp(watch_out), "\"state\":\"fail\"");
  }));
  std::string fail_token;
  for (absl::string_view line : absl::StrSplit(Slurp(watch_out), '\n')) {
    if (!absl::StrContains(line, "\"state\":\"fail\"")) continue;
    nlohmann::json e = nlohmann::json::parse(line);
    CHECK(e["agent_id"] == pool.agent_id_);
    CHECK(e["previous_state"] == "pass");
    CHECK(e["failures"][0]["path"] == evil);
    fail_token = e["resume_token"];
  }
  REQUIRE(!fail_token.empty());
  // The verifier it watches restarts; the watcher resumes from its token.
  pool.v1_->Kill();
  pool.v1_->Start();

  // Unenrolled: the verifier holding the stream tells the agent and ends it;
  // the history stays.
  testing::RunResult removed = pool.Ctl({"agents", "delete", pool.agent_id_});
  INFO(removed.err);
  REQUIRE(removed.status.Success());
  // The notice, then the stream's end (two log lines, a moment apart).
  REQUIRE(Within(20, [&] {
    const std::string log = Slurp(pool.agent_log());
    return absl::StrContains(log, "state=unenrolled") &&
           absl::StrContains(log, "the agent was unenrolled");
  }));
  CHECK(pool.Status().is_null());
  CHECK(pool.QueryInt("SELECT count(*) FROM attestations") > 0);

  // Nothing missed or repeated across the restart; a later Watch resumed
  // from the failure's token gets exactly what followed it.
  REQUIRE(Within(20, [&] {
    return absl::StrContains(Slurp(watch_out), "\"state\":\"unenrolled\"");
  }));
  int fails = 0;
  for (absl::string_view line : absl::StrSplit(Slurp(watch_out), '\n')) {
    if (absl::StrContains(line, "\"state\":\"fail\"")) ++fails;
  }
  CHECK(fails == 1);
  watcher->Terminate();
  testing::RunResult resumed =
      pool.Ctl({"-o", "json", "agents", "watch", "--resume", fail_token,
                "--count", "1"});
  INFO(resumed.err);
  REQUIRE(resumed.status.Success());
  nlohmann::json next = nlohmann::json::parse(resumed.out);
  CHECK(next["previous_state"] == "fail");
  CHECK(next["state"] == "unenrolled");
  CHECK(next["cause"] == "STATE_CHANGE_CAUSE_UNENROLLED");
  // From the very beginning: enrolled (pending), then pass, then fail.
  testing::RunResult history = pool.Ctl(
      {"-o", "json", "agents", "watch", "--resume", "w1:0:0", "--count", "3"});
  INFO(history.err);
  REQUIRE(history.status.Success());
  std::vector<nlohmann::json> from_start;
  for (absl::string_view line : absl::StrSplit(history.out, '\n')) {
    if (!line.empty()) from_start.push_back(nlohmann::json::parse(line));
  }
  REQUIRE(from_start.size() == 3);
  CHECK(from_start[0]["state"] == "pending");
  CHECK(from_start[0]["cause"] == "STATE_CHANGE_CAUSE_ENROLLED");
  CHECK(from_start[1]["state"] == "pass");
  CHECK(from_start[1]["cause"] == "STATE_CHANGE_CAUSE_VERDICT");
  CHECK(from_start[2]["state"] == "fail");

  // With --verdicts the same position also yields attestation records.
  testing::RunResult verdicts =
      pool.Ctl({"-o", "json", "agents", "watch", "--verdicts", "--resume",
                fail_token, "--count", "2"});
  INFO(verdicts.err);
  REQUIRE(verdicts.status.Success());
  int verdict_events = 0;
  for (absl::string_view line : absl::StrSplit(verdicts.out, '\n')) {
    if (line.empty()) continue;
    nlohmann::json e = nlohmann::json::parse(line);
    if (e["kind"] != "verdict") continue;
    ++verdict_events;
    CHECK(pool.QueryInt(absl::StrCat(
              "SELECT count(*) FROM attestations WHERE attestation_id = '",
              e["attestation_id"].get<std::string>(), "'")) == 1);
  }
  CHECK(verdict_events >= 1);
  testing::RunResult bad =
      pool.Ctl({"agents", "watch", "--resume", "w1:garbage"});
  CHECK(bad.status.code == 1);
  CHECK(absl::StrContains(bad.err, "resume_token is not valid"));
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
  // No full replay: the new owner's attestations start at the stored
  // offset and received only the new entry, once. (Its first attestation
  // may come before the agent read the appended entry, with none.)
  auto db = pool.Db();
  absl::StatusOr<store::PgRows> first = db->Query(
      "SELECT min(ima_from)::text || ' ' || sum(ima_entries_received)::text "
      "FROM attestations WHERE verifier = $1 AND ima_from IS NOT NULL",
      {other->id()});
  REQUIRE(first.ok());
  REQUIRE(first->rows.size() == 1);
  CHECK(first->rows[0][0].value_or("null") == "5 1");
  CHECK(pool.QueryInt("SELECT count(*) FROM attestations WHERE ima_from = 0") ==
        1);
  // Nothing lost (each verdict the agent got is recorded), nothing
  // duplicated (one record per nonce, entries counted once).
  pool.CheckVerdictsStored();
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

  // A bad policy upload is refused with the first schema error; a viewer
  // may not change anything.
  const std::string bad = pool.dir_.Join("bad.json");
  std::ofstream(bad) << R"({"meta": {"version": 2}})";
  testing::RunResult refused =
      pool.Ctl({"policies", "update", "web", "-f", bad});
  CHECK(refused.status.code == 1);
  CHECK(absl::StrContains(refused.err, "meta.version"));
  testing::RunResult viewer = testing::RunCapture(
      {VOUCHCTL_BIN, "--server", pool.v1_->address(), "--tls-dir",
       pool.tls_.client_dir("viewer"), "agents", "delete", pool.agent_id_});
  CHECK(viewer.status.code == 1);
  CHECK(pool.State() == "pass");
  // A policy update reaches the running agent without re-enrollment: the
  // new version no longer allows good0, so measuring it again fails.
  const std::string v2 = pool.dir_.Join("policy-v2.json");
  {
    nlohmann::json p =
        nlohmann::json::parse(Slurp(pool.dir_.Join("policy.json")));
    p["digests"].erase(pool.good_[0]);
    std::ofstream(v2) << p.dump();
  }
  testing::RunResult updated =
      pool.Ctl({"policies", "update", "web", "-f", v2});
  INFO(updated.err);
  REQUIRE(updated.status.Success());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  pool.Append({pool.good_[0]});
  REQUIRE(Within(30, [&] { return pool.State() == "fail"; }));
  nlohmann::json after = pool.Status();
  CHECK(after["runtime_policy_version"] == 2);
  CHECK(after["failures"][0]["path"] == pool.good_[0]);
}

}  // namespace
}  // namespace vouch

namespace vouch {
namespace {

TEST_CASE("migrations: servers starting together all migrate", "[pg]") {
  absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
  REQUIRE(pg.ok());
  std::vector<absl::Status> results(6);
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      store::PgPool pool((*pg)->conninfo(), 1);
      results[i] = store::PrepareDatabase(pool, absl::Seconds(30));
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : results) {
    INFO(s.message());
    CHECK(s.ok());
  }
}

}  // namespace
}  // namespace vouch

namespace vouch {
namespace {

// The test as an agent: the real TPM (the agent's AIK from its state dir)
// and a raw Attest stream, to send what an honest agent never would.
class RawAgent {
 public:
  // `via`: the verifier to stream to (default v1).
  RawAgent(Pool& pool, const std::string& claimed_id,
           const Verifier* via = nullptr)
      : pool_(pool) {
    absl::StatusOr<std::unique_ptr<tpm::EsysTpm>> t =
        tpm::EsysTpm::Open(pool.tpm_->tcti());
    REQUIRE(t.ok());
    tpm_ = *std::move(t);
    // What the stopped agent may have left loaded (see StopAgent).
    REQUIRE(tpm_->FlushTransientObjects().ok());
    REQUIRE(tpm_->LoadEk(tpm::EkType::kRsa2048).ok());
    REQUIRE(
        tpm_->LoadOrCreateAik(pool.dir_.Join("state"), tpm::AikType::kRsa2048)
            .ok());
    absl::StatusOr<store::PgRows> name = pool.Db()->Query(
        "SELECT aik_name FROM registrations WHERE agent_id = $1",
        {pool.agent_id_});
    REQUIRE(name.ok());
    aik_name_ = *store::FromBytea(*name->rows.at(0).at(0));
    sdk::ClientOptions o;
    o.server = (via != nullptr ? via : &*pool.v1_)->address();
    o.ca_file = pool.agent_dir_ + "/ca.pem";
    o.cert_file = pool.agent_dir_ + "/agent.pem";
    o.key_file = pool.agent_dir_ + "/agent.key";
    absl::StatusOr<std::shared_ptr<grpc::Channel>> ch = sdk::CreateChannel(o);
    REQUIRE(ch.ok());
    stub_ = v1::Attestation::NewStub(*ch);
    stream_ = stub_->Attest(&ctx_);
    v1::AgentMessage hello;
    hello.mutable_hello()->set_agent_id(claimed_id);
    hello.mutable_hello()->set_aik_name(aik_name_);
    hello.mutable_hello()->mutable_capabilities()->add_pcr_banks(
        v1::HASH_ALGORITHM_SHA256);
    REQUIRE(stream_->Write(hello));
  }
  ~RawAgent() {
    if (finished_) return;
    ctx_.TryCancel();
    (void)stream_->Finish();
  }

  bool Next(v1::VerifierMessage* m) { return stream_->Read(m); }
  grpc::Status Finish() {
    finished_ = true;
    return stream_->Finish();
  }
  // A trailing metadata value of the finished stream ("" if absent).
  std::string Trailer(const std::string& key) {
    const auto& t = ctx_.GetServerTrailingMetadata();
    auto it = t.find(key);
    return it == t.end() ? ""
                         : std::string(it->second.data(), it->second.size());
  }

  // Evidence for `c`: a real quote (of `nonce`, default the challenge's)
  // and the log's entries from `first` (default ima_from), `count` of them.
  v1::AgentMessage Evidence(const v1::Challenge& c,
                            std::optional<std::string> nonce = std::nullopt,
                            std::optional<uint64_t> first = std::nullopt,
                            std::optional<uint64_t> from_line = std::nullopt) {
    TPML_PCR_SELECTION sel{};
    sel.count = 1;
    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[0].sizeofSelect = 3;
    for (uint32_t pcr : c.pcr_selection().banks(0).pcr_indices()) {
      sel.pcrSelections[0].pcrSelect[pcr / 8] |=
          static_cast<uint8_t>(1u << (pcr % 8));
    }
    absl::StatusOr<tpm::QuoteBlob> q =
        tpm_->Quote(AsBytes(nonce.value_or(c.nonce())), sel);
    REQUIRE(q.ok());
    absl::StatusOr<core::tpm::PcrValues> pcrs = tpm_->PcrRead(sel);
    REQUIRE(pcrs.ok());
    v1::AgentMessage m;
    v1::Evidence* ev = m.mutable_evidence();
    ev->set_quote(std::string(AsString(q->attest)));
    ev->set_signature(std::string(AsString(q->signature)));
    v1::PcrBankValues* bank = ev->add_pcr_values();
    bank->set_hash_alg(v1::HASH_ALGORITHM_SHA256);
    for (const auto& [index, digest] : pcrs->at(TPM2_ALG_SHA256)) {
      v1::PcrValue* v = bank->add_values();
      v->set_index(index);
      v->set_digest(std::string(AsString(digest)));
    }
    std::vector<std::string> lines =
        absl::StrSplit(Slurp(pool_.ima_log_), '\n', absl::SkipEmpty());
    std::string data;
    for (size_t i = from_line.value_or(c.ima_from()); i < lines.size(); ++i) {
      absl::StrAppend(&data, lines[i], "\n");
    }
    v1::ImaLogChunk* chunk = ev->mutable_ima_entries();
    chunk->set_format(v1::IMA_LOG_FORMAT_ASCII);
    chunk->set_first_index(first.value_or(c.ima_from()));
    chunk->set_data(data);
    return m;
  }

  void Send(const v1::AgentMessage& m) { REQUIRE(stream_->Write(m)); }
  // swtpm serves one connection at a time: let the real agent have it.
  void ReleaseTpm() { tpm_.reset(); }

 private:
  Pool& pool_;
  std::unique_ptr<tpm::EsysTpm> tpm_;
  std::string aik_name_;
  bool finished_ = false;
  std::unique_ptr<v1::Attestation::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::AgentMessage, v1::VerifierMessage>>
      stream_;
};

bool HasCode(const v1::Verdict& v, v1::FailureCode code) {
  for (const v1::Failure& f : v.failures()) {
    if (f.code() == code) return true;
  }
  return false;
}

TEST_CASE(
    "pool: replayed and wrong-nonce quotes fail, IMA gaps and overlaps "
    "are refused, a flooding agent is cut off, the position holds",
    "[e2e][pg][tpm]") {
  Pool pool("5s");
  REQUIRE(Within(60, [&] { return pool.State() == "pass"; }));
  pool.StopAgent();  // The test is the agent from here on.

  {  // Another agent's id on this agent's certificate.
    RawAgent liar(pool, "someone-else");
    v1::VerifierMessage m;
    CHECK(!liar.Next(&m));
    CHECK(liar.Finish().error_code() == grpc::StatusCode::PERMISSION_DENIED);
  }
  RawAgent agent(pool, pool.agent_id_);
  v1::VerifierMessage m;
  REQUIRE(agent.Next(&m));
  REQUIRE(m.has_challenge());
  const v1::Challenge c1 = m.challenge();
  CHECK(c1.ima_from() == 3);
  CHECK(c1.nonce().size() == 32);
  const v1::AgentMessage honest = agent.Evidence(c1);
  agent.Send(honest);
  REQUIRE(agent.Next(&m));
  REQUIRE(m.has_verdict());
  CHECK(m.verdict().state() == v1::ATTESTATION_STATE_PASS);
  v1::Challenge c = m.verdict().next_challenge();
  CHECK(c.nonce() != c1.nonce());

  // A gap: entries that do not start where the verifier asked.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  agent.Send(agent.Evidence(c, std::nullopt, c.ima_from() + 1));
  REQUIRE(agent.Next(&m));
  REQUIRE(m.has_error());
  CHECK(m.error().code() ==
        static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  CHECK(absl::StrContains(m.error().message(), "first_index"));

  // The old evidence replayed against the new challenge.
  agent.Send(honest);
  REQUIRE(agent.Next(&m));
  REQUIRE(m.has_verdict());
  CHECK(m.verdict().state() == v1::ATTESTATION_STATE_FAIL);
  CHECK(HasCode(m.verdict(), v1::FAILURE_CODE_NONCE_MISMATCH));
  CHECK(m.verdict().ima_next_entry() == 3);
  c = m.verdict().next_challenge();

  // An overlap: entry 2 again, labelled as entry 3, with a new measurement.
  pool.Append({pool.good_[0]});
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  agent.Send(agent.Evidence(c, std::nullopt, std::nullopt, /*from_line=*/2));
  REQUIRE(agent.Next(&m));
  REQUIRE(m.has_verdict());
  CHECK(m.verdict().state() == v1::ATTESTATION_STATE_FAIL);
  CHECK(HasCode(m.verdict(), v1::FAILURE_CODE_IMA_REPLAY_MISMATCH));
  CHECK(m.verdict().ima_next_entry() == 3);
  c = m.verdict().next_challenge();

  // The flood below is built now: the pace is checked before anything
  // else, and quoting takes long enough under a sanitizer that evidence
  // quoted after the next verdict might no longer come too fast.
  const v1::AgentMessage flood = agent.Evidence(c);

  // A quote of another nonce.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  agent.Send(agent.Evidence(c, std::string(32, 'z')));
  REQUIRE(agent.Next(&m));
  REQUIRE(m.has_verdict());
  CHECK(HasCode(m.verdict(), v1::FAILURE_CODE_NONCE_MISMATCH));
  CHECK(m.verdict().ima_next_entry() == 3);
  CHECK(m.verdict().agent_state() == v1::ATTESTATION_STATE_FAIL);

  // Flooding: evidence faster than min_interval is refused, then cut off.
  int refused = 0;
  for (int i = 0; i < 10; ++i) {
    agent.Send(flood);
    if (!agent.Next(&m)) break;
    REQUIRE(m.has_error());
    CHECK(m.error().code() ==
          static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
    ++refused;
  }
  CHECK(refused == 5);
  CHECK(agent.Finish().error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(pool.Status()["ima_next_entry"] == 3);

  agent.ReleaseTpm();
  // The verifier keeps serving: the real agent attests again (still FAIL,
  // latched) and the honest entry 3 is accepted.
  pool.StartAgent();
  REQUIRE(Within(40, [&] {
    nlohmann::json s = pool.Status();
    return s.is_object() && s["ima_next_entry"] == 4;
  }));
  CHECK(pool.State() == "fail");

  // The attestation history holds every verdict, newest first.
  testing::RunResult history = pool.Ctl(
      {"-o", "json", "agents", "history", pool.agent_id_, "--limit", "1000"});
  INFO(history.err);
  REQUIRE(history.status.Success());
  nlohmann::json records = nlohmann::json::parse(history.out)["records"];
  CHECK(records.size() == static_cast<size_t>(pool.QueryInt(
                              "SELECT count(*) FROM attestations")));
  CHECK(std::any_of(records.begin(), records.end(),
                    [](const auto& r) { return r["state"] == "fail"; }));

  // Imports: Keylime's signed policy verifies with the configured key, its
  // bad-signed twin is refused, a legacy allowlist is converted.
  const std::string data = VOUCH_TEST_DATA_DIR "/keylime/";
  testing::RunResult signed_ok =
      pool.Ctl({"policies", "import", "signed", "--format", "dsse", "-f",
                data + "runtime-policy-test-signed.json"});
  INFO(signed_ok.err);
  CHECK(signed_ok.status.Success());
  testing::RunResult signed_bad =
      pool.Ctl({"policies", "import", "signed-bad", "--format", "dsse", "-f",
                data + "runtime-policy-test-signed-bad.json"});
  CHECK(signed_bad.status.code == 1);
  CHECK(absl::StrContains(signed_bad.err, "does not verify"));
  testing::RunResult allow =
      pool.Ctl({"-o", "json", "policies", "import", "legacy", "--format",
                "allowlist", "-f", data + "allowlist-sha256"});
  INFO(allow.err);
  REQUIRE(allow.status.Success());
  CHECK(nlohmann::json::parse(allow.out)["kind"] == "runtime");
  testing::RunResult got =
      pool.Ctl({"-o", "json", "policies", "get", "legacy"});
  REQUIRE(got.status.Success());
  CHECK(absl::StrContains(
      nlohmann::json::parse(got.out)["content"].get<std::string>(),
      "\"digests\""));
}

}  // namespace
}  // namespace vouch

namespace vouch {
namespace {

TEST_CASE(
    "admin: lists page, and foreign, expired and missing client "
    "certificates are refused while the verifier keeps serving",
    "[e2e][pg]") {
  TempDir dir = NewDir();
  Tls tls(dir.path());
  absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
  REQUIRE(pg.ok());
  Verifier verifier(dir, **pg, tls, "v1");
  {
    store::PgPool pool((*pg)->conninfo(), 2);
    store::PgVerifierStore store(&pool, 3);
    absl::StatusOr<store::PgPool::Lease> db = pool.Acquire();
    REQUIRE(db.ok());
    store::PolicyRow policy;
    policy.tenant = "default";
    policy.name = "p";
    policy.kind = 1;
    policy.content = "{}";
    REQUIRE(store.AddPolicy(policy).ok());
    for (const char* id : {"node-a", "node-b", "node-c"}) {
      REQUIRE((*db)
                  ->Exec("INSERT INTO registrations (agent_id, tenant, "
                         "ek_public, ek_sha256, ek_certificate, aik_public, "
                         "aik_name, activated_at) VALUES ($1, 'default', "
                         "'\\x00', sha256(convert_to($1::text, 'UTF8')), "
                         "'\\x00', '\\x01', '\\x02', now())",
                         {id})
                  .ok());
    }
  }
  auto ctl = [&](const std::string& tls_dir, std::vector<std::string> args) {
    std::vector<std::string> argv = {
        VOUCHCTL_BIN, "--server", verifier.address(), "--tls-dir", tls_dir,
        "-o",         "json"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCapture(argv);
  };
  const std::string admin = tls.client_dir("admin");
  for (const char* id : {"node-c", "node-a", "node-b"}) {
    testing::RunResult r =
        ctl(admin, {"agents", "enroll", id, "--runtime-policy", "p"});
    INFO(r.err);
    REQUIRE(r.status.Success());
  }
  testing::RunResult page = ctl(admin, {"agents", "list", "--limit", "2"});
  REQUIRE(page.status.Success());
  nlohmann::json first = nlohmann::json::parse(page.out);
  REQUIRE(first["agents"].size() == 2);
  CHECK(first["agents"][0]["agent_id"] == "node-a");
  CHECK(first["agents"][1]["agent_id"] == "node-b");
  CHECK(!first["next_page_token"].get<std::string>().empty());
  testing::RunResult all = ctl(admin, {"agents", "list"});  // Every page.
  REQUIRE(all.status.Success());
  nlohmann::json every = nlohmann::json::parse(all.out);
  REQUIRE(every["agents"].size() == 3);
  CHECK(every["agents"][2]["agent_id"] == "node-c");
  CHECK(every["agents"][2]["state"] == "pending");
  testing::RunResult by_policy =
      ctl(admin, {"agents", "list", "--policy", "p"});
  REQUIRE(by_policy.status.Success());
  CHECK(nlohmann::json::parse(by_policy.out)["agents"].size() == 3);
  testing::RunResult none = ctl(admin, {"agents", "list", "--policy", "q"});
  INFO(none.err);
  REQUIRE(none.status.Success());
  CHECK(nlohmann::json::parse(none.out)["agents"].empty());

  // Certificates the verifier must refuse.
  sdk::IssueOptions expired;
  expired.ca_dir = tls.ca;
  expired.kind = sdk::CertKind::kClient;
  expired.name = "old";
  expired.roles = {Role::kAdmin};
  expired.validity = absl::Hours(1);
  expired.not_before = absl::Now() - absl::Hours(48);
  REQUIRE(sdk::IssueCertificate(expired).ok());
  Tls other(dir.Join("other"));
  const std::string foreign = other.client_dir("admin");
  std::ofstream(foreign + "/ca.pem", std::ios::trunc)
      << Slurp(tls.ca + "/ca.pem");  // trusts our server, presents theirs
  for (const std::string& d : {tls.client_dir("old"), foreign}) {
    INFO(d);
    testing::RunResult r = ctl(d, {"agents", "list"});
    CHECK(!r.status.Success());
  }
  {  // No client certificate at all.
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Slurp(tls.ca + "/ca.pem");
    auto stub = v1::Admin::NewStub(
        grpc::CreateChannel(verifier.address(), grpc::SslCredentials(ssl)));
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListAgentsResponse resp;
    grpc::Status st = stub->ListAgents(&c, v1::ListAgentsRequest(), &resp);
    CHECK(!st.ok());
  }
  // A viewer reads but may not enroll; an agent certificate may not use
  // the Admin service at all.
  testing::RunResult viewer = ctl(tls.client_dir("viewer"), {"agents", "list"});
  CHECK(viewer.status.Success());
  testing::RunResult refused =
      ctl(tls.client_dir("viewer"), {"agents", "delete", "node-a"});
  CHECK(refused.status.code == 1);
  CHECK(absl::StrContains(refused.err, "role"));
  const std::string agent_dir = tls.Agent("node-a");
  CHECK(ctl(agent_dir, {"agents", "list"}).status.code != 0);
  // Still serving.
  CHECK(ctl(admin, {"agents", "get", "node-a"}).status.Success());
}

// The firmware of a measured boot, modelled on swtpm: every event of a
// real UEFI event log extended into the SHA-256 bank with tpm2_pcrextend
// (the log has no StartupLocality event: swtpm starts at locality 0), and
// the log written where the agent reads it.
void MeasuredBoot(Pool& pool, const std::string& name) {
  absl::StatusOr<std::string> bytes =
      ReadFileUpTo(std::string(VOUCH_TEST_DATA_DIR) + "/" + name, 1 << 20);
  REQUIRE(bytes.ok());
  absl::StatusOr<core::boot::EventLog> log =
      core::boot::ParseEventLog(AsBytes(*bytes));
  REQUIRE(log.ok());
  REQUIRE(!log->startup_locality.has_value());
  std::ofstream(pool.boot_log_, std::ios::binary) << *bytes;
  std::vector<std::string> argv = {"tpm2_pcrextend", "-T", pool.tpm_->tcti()};
  auto flush = [&] {
    if (argv.size() == 3) return;
    testing::RunResult r = testing::RunCapture(argv);
    INFO(r.err);
    REQUIRE(r.status.Success());
    argv.resize(3);
  };
  int extended = 0;
  for (const core::boot::Event& e : log->events) {
    if (e.type == core::boot::kEvNoAction) continue;
    for (const core::boot::EventDigest& d : e.digests) {
      if (d.alg != core::boot::kAlgSha256) continue;
      argv.push_back(absl::StrCat(e.pcr, ":sha256=", HexEncode(d.value)));
      ++extended;
    }
    if (argv.size() >= 35) flush();
  }
  flush();
  REQUIRE(extended > 0);
}

TEST_CASE(
    "boot: a measured boot passes, and a boot policy without its kernel or "
    "PCR 9 extended after boot fails",
    "[e2e][pg][tpm]") {
  constexpr double kInterval = 5;
  Pool pool("5s", /*with_boot_log=*/true);
  REQUIRE(Within(60, [&] { return pool.State() == "pass"; }));
  const std::string name = "keylime/binary_bios_measurements-secureboot";
  MeasuredBoot(pool, name);
  const std::string policy = pool.dir_.Join("boot.json");
  testing::RunResult learned =
      testing::RunCapture({VOUCHCTL_BIN, "boot", "create-policy", "--eventlog",
                           pool.boot_log_, "-f", policy});
  INFO(learned.err);
  REQUIRE(learned.status.Success());
  testing::RunResult added =
      pool.Ctl({"policies", "add", "boot", "--kind", "boot", "-f", policy});
  INFO(added.err);
  REQUIRE(added.status.Success());
  auto enroll = [&] { pool.Reenroll({"--boot-policy", "boot"}); };
  enroll();
  // The accepted log's boot PCRs and policy version are kept in the
  // database; the next quotes are compared with them, without the log.
  CHECK(pool.QueryInt("SELECT length(boot_pcrs) FROM agent_state") == 352);
  CHECK(pool.QueryInt("SELECT boot_policy_version FROM agent_state") == 1);
  CHECK(pool.QueryInt("SELECT count(*) FROM attestations WHERE "
                      "boot_log_evaluated AND state = 'pass'") >= 1);
  testing::RunResult history =
      pool.Ctl({"-o", "json", "agents", "history", pool.agent_id_});
  INFO(history.err);
  REQUIRE(history.status.Success());
  INFO(history.out);
  const nlohmann::json records = nlohmann::json::parse(history.out)["records"];
  int evaluated = 0;
  for (const nlohmann::json& r : records) {
    if (r["boot_log_evaluated"] == true) ++evaluated;
  }
  CHECK(evaluated >= 1);
  REQUIRE(Within(30, [&] {
    return pool.QueryInt(
               "SELECT count(*) FROM attestations WHERE NOT "
               "boot_log_evaluated AND boot_policy_version = 1 AND "
               "state = 'pass'") >= 1;
  }));
  CHECK(pool.State() == "pass");

  // Version 2 no longer allows the running kernel.
  nlohmann::json doc = nlohmann::json::parse(Slurp(policy));
  REQUIRE(!doc["kernels"].empty());
  doc["kernels"] = nlohmann::json::array();
  const std::string without = pool.dir_.Join("boot-without-kernel.json");
  std::ofstream(without) << doc.dump();
  auto t0 = Clock::now();
  REQUIRE(
      pool.Ctl({"policies", "update", "boot", "-f", without}).status.Success());
  REQUIRE(Within(60, [&] { return pool.State() == "fail"; }));
  double latency = SecondsSince(t0);
  WARN("boot policy without the kernel to FAIL: "
       << latency << " s (goal: two intervals, " << 2 * kInterval << " s)");
  CHECK(latency < 2 * kInterval + 5);  // Slack for a loaded machine.
  nlohmann::json s = pool.Status();
  REQUIRE(s["failures"].size() >= 1);
  CHECK(s["failures"][0]["code"] == "boot.component_not_allowed");
  CHECK(pool.QueryInt("SELECT boot_policy_version FROM agent_state") == 2);

  // The good policy again (version 3) and a fresh enrollment: PASS. Then
  // something is measured into PCR 9 after boot.
  REQUIRE(
      pool.Ctl({"policies", "update", "boot", "-f", policy}).status.Success());
  enroll();
  latency = pool.ExtendPcr9UntilFail();
  WARN("PCR 9 extended to FAIL: " << latency << " s");
  CHECK(latency < 2 * kInterval + 5);
  s = pool.Status();
  REQUIRE(s["failures"].size() >= 1);
  CHECK(s["failures"][0]["code"] == "boot.pcrs_changed");
  CHECK(absl::StrContains(s["failures"][0]["detail"].get<std::string>(),
                          "PCR 9 "));
  // Every verdict the agent saw is committed.
  pool.CheckVerdictsStored();
}

// The SHA-256 values of `pcrs` as tpm2_pcrread prints them
// ("    9 : 0x<hex>"), as a PCR policy document.
nlohmann::json PcrPolicyOf(Pool& pool, const std::vector<int>& pcrs) {
  std::string list;
  for (int p : pcrs) absl::StrAppend(&list, list.empty() ? "" : ",", p);
  testing::RunResult read = testing::RunCapture(
      {"tpm2_pcrread", "-T", pool.tpm_->tcti(), absl::StrCat("sha256:", list)});
  INFO(read.err);
  REQUIRE(read.status.Success());
  nlohmann::json doc = nlohmann::json::object();
  for (absl::string_view line : absl::StrSplit(read.out, '\n')) {
    std::vector<std::string> parts =
        absl::StrSplit(line, " : 0x", absl::SkipEmpty());
    if (parts.size() != 2) continue;
    doc[std::string(absl::StripAsciiWhitespace(parts[0]))] = {
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(parts[1]))};
  }
  INFO(read.out);
  REQUIRE(doc.size() == pcrs.size());
  return doc;
}

TEST_CASE(
    "pcrs: a PCR policy of the TPM's own values passes, extending one of "
    "its PCRs fails",
    "[e2e][pg][tpm]") {
  constexpr double kInterval = 5;
  Pool pool("5s");
  REQUIRE(Within(60, [&] { return pool.State() == "pass"; }));
  // A policy in Keylime's tpm_policy shape, with a second allowed value
  // for PCR 0 and the selection mask Keylime writes.
  nlohmann::json doc = PcrPolicyOf(pool, {0, 7, 9});
  doc["0"].push_back(std::string(64, 'e'));
  doc["mask"] = "0x281";
  const std::string policy = pool.dir_.Join("pcrs.json");
  std::ofstream(policy) << doc.dump();
  testing::RunResult added =
      pool.Ctl({"policies", "add", "pcrs", "--kind", "pcr", "-f", policy});
  INFO(added.err);
  REQUIRE(added.status.Success());
  // A malformed one is refused as INVALID_ARGUMENT.
  const std::string bad = pool.dir_.Join("bad-pcrs.json");
  std::ofstream(bad) << R"({"24": ["00"]})";
  testing::RunResult refused =
      pool.Ctl({"policies", "add", "bad", "--kind", "pcr", "-f", bad});
  CHECK(!refused.status.Success());
  CHECK(absl::StrContains(refused.err, "PCR index 0-23"));

  pool.Reenroll({"--pcr-policy", "pcrs"});
  CHECK(pool.Status()["pcr_policy"] == "pcrs");
  // A second PASS under the PCR policy, so it is not a leftover.
  const std::string first = pool.Status().value("last_attestation_id", "");
  REQUIRE(Within(3 * kInterval, [&] {
    nlohmann::json s = pool.Status();
    return s.is_object() && s.value("state", "") == "pass" &&
           s.value("last_attestation_id", "") != first;
  }));

  const double latency = pool.ExtendPcr9UntilFail();
  WARN("PCR 9 extended to FAIL under a PCR policy: " << latency << " s");
  CHECK(latency < 2 * kInterval + 5);  // Slack for a loaded machine.
  nlohmann::json s = pool.Status();
  INFO(s.dump());
  REQUIRE(s["failures"].size() == 1);
  CHECK(s["failures"][0]["code"] == "pcr.value_not_allowed");
  CHECK(absl::StrContains(s["failures"][0]["detail"].get<std::string>(),
                          "PCR 9 "));
  // The policy is in use: it cannot be removed while enrolled.
  CHECK(!pool.Ctl({"policies", "delete", "pcrs"}).status.Success());
  pool.CheckVerdictsStored();
}

TEST_CASE(
    "pool: the registrar lifecycle ends streams (no delete while enrolled, "
    "a new AIK or unenroll and delete: the old stream passes no more)",
    "[e2e][pg][tpm][registrar]") {
  Pool pool("5s");
  REQUIRE(Within(60, [&] { return pool.State() == "pass"; }));
  const std::string id = pool.agent_id_;
  const std::string where = absl::StrCat("agent_id = '", id, "'");
  auto passes_after = [&](int64_t epoch, int64_t after_us) {
    return pool.QueryInt(
        absl::StrCat("SELECT count(*) FROM attestations WHERE ", where,
                     " AND state = 'pass' AND epoch = ", epoch,
                     " AND at > to_timestamp(", after_us, " / 1000000.0)"));
  };
  auto db_now_us = [&] {
    return pool.QueryInt(
        "SELECT (extract(epoch from now()) * 1000000)::bigint");
  };

  // 1. While enrolled the registration cannot be deleted, and the agent
  //    keeps passing on its stream.
  auto admin =
      Stub(pool.registrar_->address(), pool.tls_.client_dir("admin"), "client");
  v1::DeleteRegisteredAgentRequest del;
  del.set_agent_id(id);
  v1::DeleteRegisteredAgentResponse deleted;
  grpc::Status refused =
      Call(*admin, &v1::Registrar::Stub::DeleteRegisteredAgent, del, &deleted);
  CHECK(refused.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(absl::StrContains(refused.error_message(), "unenroll"));
  CHECK(pool.QueryInt(absl::StrCat("SELECT count(*) FROM registrations "
                                   "WHERE ",
                                   where)) == 1);
  const int64_t t1 = db_now_us();
  auto passes_since = [&](int64_t after_us) {
    return pool.QueryInt(
        absl::StrCat("SELECT count(*) FROM attestations WHERE ", where,
                     " AND state = 'pass' AND at > to_timestamp(", after_us,
                     " / 1000000.0)"));
  };
  REQUIRE(Within(60, [&] { return passes_since(t1) > 0; }));

  // 2. A new AIK of the same TPM is activated for the agent: the stream that
  //    verifies with the old one commits no further PASS and ends within a
  //    sweep (1 s) or its next commit.
  const int64_t epoch1 = pool.QueryInt(  // The stream holding the agent now.
      absl::StrCat("SELECT epoch FROM agent_state WHERE ", where));
  {
    // swtpm serves one connection at a time; the agent opens it per quote.
    TestAgent again(*pool.tpm_, id, pool.dir_.Join("state-new-aik"));
    auto stub = Stub(pool.registrar_->address(), pool.agent_dir_, "agent");
    grpc::Status activated = again.RegisterAndActivate(*stub);
    INFO(activated.error_message());
    REQUIRE(activated.ok());
  }
  const int64_t t2 = db_now_us();
  REQUIRE(Within(20, [&] {
    return pool.QueryInt(absl::StrCat("SELECT epoch FROM agent_state WHERE ",
                                      where)) > epoch1;
  }));
  // The agent keeps trying for two intervals; nothing of the old stream
  // (or a new one, whose Hello names the old AIK) passes.
  std::this_thread::sleep_for(std::chrono::seconds(11));
  CHECK(passes_after(epoch1, t2) == 0);
  CHECK(passes_since(t2) == 0);

  // 3. Unenrolled, the registration can be deleted; no PASS follows.
  testing::RunResult removed = pool.Ctl({"agents", "delete", id});
  INFO(removed.err);
  REQUIRE(removed.status.Success());
  grpc::Status gone =
      Call(*admin, &v1::Registrar::Stub::DeleteRegisteredAgent, del, &deleted);
  INFO(gone.error_message());
  REQUIRE(gone.ok());
  const int64_t records = pool.QueryInt(
      absl::StrCat("SELECT count(*) FROM attestations WHERE ", where));
  std::this_thread::sleep_for(std::chrono::seconds(6));
  CHECK(pool.QueryInt(absl::StrCat("SELECT count(*) FROM attestations WHERE ",
                                   where)) == records);
  CHECK(pool.QueryInt(absl::StrCat("SELECT count(*) FROM agent_state WHERE ",
                                   where)) == 0);
  pool.StopAgent();
}

}  // namespace
}  // namespace vouch

// Admission control: the bounds one verifier keeps on what its callers make
// it hold (docs/verifier.md "Admission control"). Caps are set low here.
namespace vouch {
namespace {

// An Attest stream on the certificate of agent `name` that sends nothing;
// `deadline`: the client gives up after it (zero: never).
class IdleStream {
 public:
  IdleStream(Pool& pool, const Verifier& via, const std::string& name,
             absl::Duration deadline = absl::ZeroDuration()) {
    const std::string dir = pool.tls_.Agent(name);
    sdk::ClientOptions o;
    o.server = via.address();
    o.ca_file = dir + "/ca.pem";
    o.cert_file = dir + "/agent.pem";
    o.key_file = dir + "/agent.key";
    absl::StatusOr<std::shared_ptr<grpc::Channel>> ch = sdk::CreateChannel(o);
    REQUIRE(ch.ok());
    stub_ = v1::Attestation::NewStub(*ch);
    if (deadline > absl::ZeroDuration()) {
      ctx_.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    }
    stream_ = stub_->Attest(&ctx_);
  }
  ~IdleStream() { (void)Cancel(); }

  // Reads until the server ends the stream; its status.
  grpc::Status Ended() {
    v1::VerifierMessage m;
    while (stream_->Read(&m)) {
    }
    return Finish();
  }
  grpc::Status Cancel() {
    if (finished_) return status_;
    ctx_.TryCancel();
    return Finish();
  }
  std::string Trailer(const std::string& key) {
    const auto& t = ctx_.GetServerTrailingMetadata();
    auto it = t.find(key);
    return it == t.end() ? ""
                         : std::string(it->second.data(), it->second.size());
  }

 private:
  grpc::Status Finish() {
    if (!finished_) status_ = stream_->Finish();
    finished_ = true;
    return status_;
  }

  std::unique_ptr<v1::Attestation::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::AgentMessage, v1::VerifierMessage>>
      stream_;
  bool finished_ = false;
  grpc::Status status_;
};

// Lines of the agent's log holding all of `parts`.
int AgentLogLines(Pool& pool, const std::vector<std::string>& parts) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(Slurp(pool.agent_log()), '\n')) {
    if (std::all_of(parts.begin(), parts.end(), [&](const std::string& p) {
          return absl::StrContains(line, p);
        })) {
      ++n;
    }
  }
  return n;
}

// Every verdict the agent saw is stored exactly once, no nonce twice.
void CheckVerdictsStoredOnce(Pool& pool) {
  for (const std::string& id : pool.AgentVerdicts()) {
    CHECK(pool.QueryInt(absl::StrCat(
              "SELECT count(*) FROM attestations WHERE attestation_id = '", id,
              "'")) == 1);
  }
  CHECK(pool.QueryInt("SELECT count(*) - count(DISTINCT (agent_id, nonce)) "
                      "FROM attestations") == 0);
}

TEST_CASE(
    "admission: a stream that never sends its Hello is closed at the "
    "deadline while the agent goes on attesting",
    "[e2e][pg][tpm]") {
  Pool pool("5s", false, {"--admission-hello-deadline", "1s"});
  REQUIRE(Within(60, [&] { return pool.State() == "pass"; }));
  IdleStream silent(pool, *pool.v1_, "silent");
  const auto t0 = Clock::now();
  const grpc::Status s = silent.Ended();
  WARN("silent stream closed after " << SecondsSince(t0)
                                     << " s (deadline 1 s)");
  CHECK(s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK(SecondsSince(t0) < 15);
  const size_t seen = pool.AgentVerdicts().size();
  REQUIRE(Within(20, [&] { return pool.AgentVerdicts().size() > seen; }));
  CHECK(pool.State() == "pass");
}

TEST_CASE(
    "admission: a second stream of one agent supersedes the first, and no "
    "verdict is lost or repeated",
    "[e2e][pg][tpm]") {
  Pool pool("5s");
  REQUIRE(Within(60, [&] { return pool.State() == "pass"; }));
  absl::StatusOr<store::PgRows> owner = pool.Db()->Query(
      "SELECT owner FROM agent_state WHERE agent_id = $1", {pool.agent_id_});
  REQUIRE(owner.ok());
  const std::string on = owner->rows.at(0).at(0).value_or("");
  REQUIRE((on == "v1" || on == "v2"));
  const Verifier* via = on == "v1" ? &*pool.v1_ : &*pool.v2_;
  {
    RawAgent second(pool, pool.agent_id_, via);
    second.ReleaseTpm();  // The real agent quotes again soon.
    v1::VerifierMessage m;
    REQUIRE(second.Next(&m));
    CHECK(m.has_challenge());  // The newer stream holds the agent ...
    // ... and the agent's own stream was ended, ABORTED, saying why.
    REQUIRE(Within(20, [&] {
      return AgentLogLines(pool, {"attestation stream ended", "code=10",
                                  "newer stream"}) > 0;
    }));
    // The agent comes straight back, superseding (or, on the other
    // verifier, taking over from) the newer stream in turn.
    while (second.Next(&m)) {
    }
    CHECK(second.Finish().error_code() == grpc::StatusCode::ABORTED);
  }
  const size_t seen = pool.AgentVerdicts().size();
  REQUIRE(Within(30, [&] { return pool.AgentVerdicts().size() > seen; }));
  CHECK(pool.State() == "pass");
  CheckVerdictsStoredOnce(pool);
}

TEST_CASE(
    "admission: at the stream cap an agent is refused RESOURCE_EXHAUSTED "
    "with a retry hint, backs off, and gets in when a stream ends",
    "[e2e][pg][tpm]") {
  Pool pool("5s", false,
            {"--admission-max-streams", "1", "--admission-retry-after", "2s",
             "--admission-hello-deadline", "120s"});
  REQUIRE(Within(60, [&] { return pool.State() == "pass"; }));
  pool.StopAgent();
  // Setup, not a measurement: the verifiers see the agent's stream go
  // before other certificates fill them; one more is then refused at once.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  IdleStream f1(pool, *pool.v1_, "filler-1");
  IdleStream f2(pool, *pool.v2_, "filler-2");
  REQUIRE(Within(20, [&] {
    IdleStream probe(pool, *pool.v1_, "probe", absl::Seconds(2));
    const grpc::Status s = probe.Ended();
    if (s.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) return false;
    CHECK(probe.Trailer("vouch-retry-after-ms") == "2000");
    return true;
  }));
  const size_t seen = pool.AgentVerdicts().size();
  pool.StartAgent();
  REQUIRE(Within(30, [&] {
    return AgentLogLines(pool, {"attestation stream ended", "code=8"}) >= 2;
  }));
  // Each refusal was honoured: a wait of at least the hint, jittered.
  for (absl::string_view line : absl::StrSplit(Slurp(pool.agent_log()), '\n')) {
    if (!absl::StrContains(line, "code=8")) continue;
    const size_t at = line.find("retry_in=");
    REQUIRE(at != absl::string_view::npos);
    absl::string_view v = line.substr(at + 9);
    v = v.substr(0, v.find(' '));
    absl::Duration wait;
    REQUIRE(absl::ParseDuration(v, &wait));
    CHECK(wait >= absl::Seconds(2));
  }
  CHECK(pool.AgentVerdicts().size() == seen);
  f1.Cancel();
  REQUIRE(Within(30, [&] { return pool.AgentVerdicts().size() > seen; }));
  CHECK(pool.State() == "pass");
}

TEST_CASE(
    "admission: the verifier-wide budget of held IMA bytes refuses a "
    "truncated chunk, and the agent's full push passes later",
    "[e2e][pg][tpm]") {
  Pool pool(
      "5s", false,
      {"--admission-max-held-ima-bytes", "1", "--admission-retry-after", "3s"});
  REQUIRE(Within(60, [&] { return pool.State() == "pass"; }));
  pool.StopAgent();
  pool.Append({pool.good_[0], pool.good_[1]});
  {
    RawAgent raw(pool, pool.agent_id_);
    v1::VerifierMessage m;
    REQUIRE(raw.Next(&m));
    REQUIRE(m.has_challenge());
    REQUIRE(m.challenge().ima_from() == 3);
    // Entry 3 of the two the quote covers, marked truncated: the verifier
    // would hold it and ask for the rest, but it has no room.
    v1::AgentMessage ev = raw.Evidence(m.challenge());
    v1::ImaLogChunk* chunk = ev.mutable_evidence()->mutable_ima_entries();
    const std::string data = chunk->data();
    chunk->set_data(data.substr(0, data.find('\n') + 1));
    chunk->set_truncated(true);
    raw.Send(ev);
    CHECK(!raw.Next(&m));
    CHECK(raw.Finish().error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK(raw.Trailer("vouch-retry-after-ms") == "3000");
    CHECK(pool.Status()["ima_next_entry"] == 3);
    raw.ReleaseTpm();
  }
  pool.StartAgent();
  REQUIRE(Within(40, [&] {
    nlohmann::json s = pool.Status();
    return s.is_object() && s["ima_next_entry"] == 5;
  }));
  CHECK(pool.State() == "pass");
}

// A Watch stream of the client certificate in `tls_dir`.
struct WatchStream {
  WatchStream(const Verifier& via, const std::string& tls_dir) {
    sdk::ClientOptions o;
    o.server = via.address();
    o.tls_dir = tls_dir;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> ch = sdk::CreateChannel(o);
    REQUIRE(ch.ok());
    stub = v1::Admin::NewStub(*ch);
    reader = stub->Watch(&ctx, v1::WatchRequest());
  }
  ~WatchStream() {
    ctx.TryCancel();
    (void)Finish();
  }
  grpc::Status Finish() {
    if (!finished) status = reader->Finish();
    finished = true;
    return status;
  }
  // Whether the first event (a heartbeat) came.
  bool Started() {
    v1::WatchEvent e;
    return reader->Read(&e) && e.has_heartbeat();
  }
  std::unique_ptr<v1::Admin::Stub> stub;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader;
  bool finished = false;
  grpc::Status status;
};

TEST_CASE(
    "admission: one caller's Watch streams are capped, others are not, and "
    "a closed one frees its place",
    "[e2e][pg][tpm]") {
  Pool pool("5s", false, {"--admission-max-watch-streams-per-caller", "2"});
  const std::string viewer = pool.tls_.client_dir("viewer");
  auto w1 = std::make_unique<WatchStream>(*pool.v1_, viewer);
  WatchStream w2(*pool.v1_, viewer);
  REQUIRE(w1->Started());
  REQUIRE(w2.Started());
  {
    WatchStream w3(*pool.v1_, viewer);
    CHECK(!w3.Started());
    CHECK(w3.Finish().error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  // Another caller, and the same caller on another verifier, are not held
  // back.
  WatchStream admin(*pool.v1_, pool.tls_.client_dir("admin"));
  CHECK(admin.Started());
  WatchStream elsewhere(*pool.v2_, viewer);
  CHECK(elsewhere.Started());
  w1.reset();
  REQUIRE(Within(10, [&] {
    WatchStream again(*pool.v1_, viewer);
    return again.Started();
  }));
}

// `vouchctl audit verify` of a bundle file: exit code and -o json output.
std::pair<int, nlohmann::json> AuditVerify(const std::string& bundle,
                                           const std::string& ek_ca) {
  testing::RunResult r =
      testing::RunCapture({VOUCHCTL_BIN, "-o", "json", "audit", "verify",
                           bundle, "--ek-ca", ek_ca});
  INFO(r.err);
  return {r.status.code, nlohmann::json::parse(r.out, nullptr, false)};
}

// A copy of `bundle` with one base64 field of its JSON changed by `edit`.
std::string Tampered(const TempDir& dir, const std::string& bundle,
                     const std::string& name,
                     const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j = nlohmann::json::parse(Slurp(bundle));
  edit(j);
  const std::string out = dir.Join(name);
  std::ofstream(out) << j.dump();
  return out;
}

void FlipBase64Byte(nlohmann::json& field, size_t at) {
  std::string raw;
  REQUIRE(absl::Base64Unescape(field.get<std::string>(), &raw));
  REQUIRE(raw.size() > at);
  raw[at] ^= 0x01;
  field = absl::Base64Escape(raw);
}

TEST_CASE(
    "audit: bundles of a moment of pass and of fail verify offline as "
    "pass and fail with every server stopped and tampering is caught "
    "naming the part",
    "[e2e][pg][tpm][audit]") {
  Pool pool("5s");
  REQUIRE(Within(60, [&] { return pool.State() == "pass"; }));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const absl::Time t1 = absl::Now();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const std::string evil = pool.dir_.Join("evil.sh");
  std::ofstream(evil) << "#!/bin/sh\necho pwned\n";
  pool.Append({evil});
  REQUIRE(Within(30, [&] { return pool.State() == "fail"; }));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const absl::Time t2 = absl::Now();

  auto rfc3339 = [](absl::Time t) {
    return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
  };
  const std::string b1 = pool.dir_.Join("t1.bundle");
  const std::string b2 = pool.dir_.Join("t2.bundle");
  for (const auto& [at, file] :
       {std::make_pair(t1, b1), std::make_pair(t2, b2)}) {
    testing::RunResult r =
        pool.Ctl({"audit", "export", "--agent", pool.agent_id_, "--at",
                  rfc3339(at), "-f", file});
    INFO(r.err);
    REQUIRE(r.status.Success());
  }
  // Before the first record there is nothing to audit.
  testing::RunResult early =
      pool.Ctl({"audit", "export", "--agent", pool.agent_id_, "--at",
                "2001-01-01T00:00:00Z", "-f", pool.dir_.Join("none")});
  CHECK(early.status.code == 1);
  CHECK(absl::StrContains(early.err, "no attestation record"));

  // Storage per kept record (bench/README.md): the evidence row, and the
  // IMA segment of a record that accepted new entries.
  auto bytes = [&](const std::string& sql) {
    return pool.QueryInt(absl::StrCat(
        "SELECT COALESCE(round(avg(b)), 0) FROM (", sql, ") AS x"));
  };
  const int64_t evidence_bytes =
      bytes("SELECT pg_column_size(e.*) AS b FROM attestation_evidence e");
  const int64_t segment_bytes =
      bytes("SELECT pg_column_size(s.*) AS b FROM ima_segments s");
  const int64_t entries = pool.QueryInt(
      "SELECT COALESCE(sum(next_index - first_index), 0) FROM ima_segments");
  WARN("kept record: " << evidence_bytes
                       << " bytes without new IMA entries; an IMA segment: "
                       << segment_bytes << " bytes on average (" << entries
                       << " entries in "
                       << pool.QueryInt("SELECT count(*) FROM ima_segments")
                       << " segments)");
  CHECK(evidence_bytes > 0);
  CHECK(pool.QueryInt("SELECT count(*) FROM kept_aiks") == 1);

  // Every server stopped: the audit needs none.
  pool.StopAgent();
  pool.v1_->Kill();
  pool.v2_->Kill();
  pool.registrar_->Kill();
  const std::string ek_ca = pool.dir_.Join("ek-ca");

  auto [code1, out1] = AuditVerify(b1, ek_ca);
  CHECK(code1 == 0);
  CHECK(out1["state"] == "pass");
  CHECK(out1["record_state"] == "pass");
  CHECK(out1["ek_chain_checked"] == true);
  auto [code2, out2] = AuditVerify(b2, ek_ca);
  CHECK(code2 == 1);
  CHECK(out2["state"] == "fail");
  CHECK(out2["record_state"] == "fail");
  REQUIRE(out2["reasons"].size() >= 1);
  CHECK(out2["reasons"][0]["path"] == evil);
  CHECK(out2["reasons"][0]["code"] == "FAILURE_CODE_IMA_FILE_NOT_IN_POLICY");

  // Tampering: each bundle below is refused (exit 2) naming the part.
  const std::string quote = Tampered(
      pool.dir_, b1, "quote.bundle",
      [](nlohmann::json& j) { FlipBase64Byte(j["evidence"]["quote"], 40); });
  auto [qc, qo] = AuditVerify(quote, ek_ca);
  CHECK(qc == 2);
  CHECK(qo["part"] == "evidence.quote");
  const std::string ima =
      Tampered(pool.dir_, b1, "ima.bundle", [](nlohmann::json& j) {
        std::string raw;
        REQUIRE(absl::Base64Unescape(
            j["evidence"]["ima_entries"]["data"].get<std::string>(), &raw));
        const size_t at = raw.find("good1");
        REQUIRE(at != std::string::npos);
        raw[at + 4] = '7';  // Another file name, same length.
        j["evidence"]["ima_entries"]["data"] = absl::Base64Escape(raw);
      });
  auto [ic, io] = AuditVerify(ima, ek_ca);
  CHECK(ic == 2);
  CHECK(io["part"] == "evidence.ima_entries");
  const std::string policy =
      Tampered(pool.dir_, b2, "policy.bundle", [](nlohmann::json& j) {
        FlipBase64Byte(j["policies"][0]["content"], 2);
      });
  auto [pc, po] = AuditVerify(policy, ek_ca);
  CHECK(pc == 2);
  CHECK(po["part"] == "policies[web]");
  // A passing record judged against another, valid policy (its digest made
  // to match) that lists none of the boot's files: the audit fails it, and
  // says the record itself passed (exit 1, never 0).
  const std::string stricter =
      Tampered(pool.dir_, b1, "stricter.bundle", [](nlohmann::json& j) {
        const std::string content =
            R"({"meta": {"version": 1}, "release": 0, "digests": {},
            "excludes": [], "keyrings": {}, "ima": {"ignored_keyrings": [],
            "log_hash_alg": "sha1", "dm_policy": null}, "ima-buf": {},
            "verification-keys": ""})";
        j["policies"][0]["content"] = absl::Base64Escape(content);
        j["policies"][0]["sha256"] = absl::Base64Escape(Sha256(content));
      });
  auto [tc, to] = AuditVerify(stricter, ek_ca);
  CHECK(tc == 1);
  CHECK(to["state"] == "fail");
  CHECK(to["record_state"] == "pass");
  testing::RunResult text = testing::RunCapture(
      {VOUCHCTL_BIN, "audit", "verify", stricter, "--ek-ca", ek_ca});
  CHECK(text.status.code == 1);
  CHECK(absl::StrContains(text.out, "the record itself passed"));
  // A record whose verdict is turned around is not believed either.
  const std::string state =
      Tampered(pool.dir_, b1, "state.bundle", [](nlohmann::json& j) {
        j["record"]["state"] = "ATTESTATION_STATE_FAIL";
      });
  auto [sc, so] = AuditVerify(state, ek_ca);
  CHECK(sc == 2);
  CHECK(so["part"] == "record.state");
  // Not a bundle at all.
  const std::string junk = pool.dir_.Join("junk.bundle");
  std::ofstream(junk) << "{\"version\": 1, \"nonsense\": true}";
  auto [jc, jo] = AuditVerify(junk, ek_ca);
  CHECK(jc == 2);
  CHECK(jo["part"] == "bundle");
}

// One GetAttestationHistory call through the admin client certificate.
grpc::Status HistoryCall(v1::Admin::Stub& stub,
                         const v1::GetAttestationHistoryRequest& req,
                         v1::GetAttestationHistoryResponse* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  return stub.GetAttestationHistory(&ctx, req, resp);
}

// Every page of `req` at `page_size`; the ids in order. Fails the test on
// an error or a page over size.
std::vector<std::string> AllPages(v1::Admin::Stub& stub,
                                  v1::GetAttestationHistoryRequest req,
                                  int page_size, int* pages) {
  std::vector<std::string> ids;
  req.set_page_size(page_size);
  *pages = 0;
  do {
    v1::GetAttestationHistoryResponse resp;
    grpc::Status st = HistoryCall(stub, req, &resp);
    INFO(st.error_message());
    REQUIRE(st.ok());
    CHECK(resp.records_size() <= page_size);
    for (const v1::AttestationRecord& r : resp.records()) {
      ids.push_back(r.attestation_id());
    }
    req.set_page_token(resp.next_page_token());
    REQUIRE(++*pages < 1000);
  } while (!req.page_token().empty());
  return ids;
}

TEST_CASE(
    "audit: an agent's history by time range, outcome and page, against a "
    "real pool and PostgreSQL",
    "[e2e][audit][pg][tpm]") {
  Pool pool("5s");
  REQUIRE(Within(60, [&] { return pool.State() == "pass"; }));
  // Passes, then a file not in the policy fails the agent; its pushes every
  // 5 s add records until there are enough of both outcomes.
  pool.Append({pool.good_[0]});
  REQUIRE(Within(30, [&] { return pool.Status()["ima_next_entry"] == 4; }));
  auto count = [&](const std::string& where) {
    return pool.QueryInt(
        absl::StrCat("SELECT count(*) FROM attestations WHERE ", where));
  };
  REQUIRE(Within(30, [&] { return count("state = 'pass'") >= 2; }));
  const std::string evil = pool.dir_.Join("evil.sh");
  std::ofstream(evil) << "#!/bin/sh\necho pwned\n";
  pool.Append({evil});
  REQUIRE(Within(30, [&] { return pool.State() == "fail"; }));
  REQUIRE(Within(30, [&] { return count("state = 'fail'") >= 1; }));
  REQUIRE(Within(30, [&] { return count("true") >= 5; }));
  pool.StopAgent();  // The history stops growing.

  // What PostgreSQL holds, newest first: (microseconds, id, state).
  struct Truth {
    int64_t us;
    std::string id;
    std::string state;
  };
  std::vector<Truth> truth;
  {
    absl::StatusOr<store::PgRows> rows = pool.Db()->Query(
        "SELECT (extract(epoch from at) * 1000000)::bigint, attestation_id, "
        "state FROM attestations WHERE agent_id = $1 ORDER BY at DESC, "
        "attestation_id DESC",
        {pool.agent_id_});
    REQUIRE(rows.ok());
    for (const auto& r : rows->rows) {
      Truth t;
      REQUIRE(absl::SimpleAtoi(r[0].value_or(""), &t.us));
      t.id = r[1].value_or("");
      t.state = r[2].value_or("");
      truth.push_back(t);
    }
  }
  const size_t n = truth.size();
  REQUIRE(n >= 5);
  auto ids_where = [&](const std::function<bool(const Truth&)>& keep) {
    std::vector<std::string> out;
    for (const Truth& t : truth) {
      if (keep(t)) out.push_back(t.id);
    }
    return out;
  };
  auto set_us = [](int64_t us, google::protobuf::Timestamp* ts) {
    ts->set_seconds(us / 1000000);
    ts->set_nanos(static_cast<int32_t>(us % 1000000) * 1000);
  };

  sdk::ClientOptions o;
  o.server = pool.v1_->address();
  o.tls_dir = pool.tls_.client_dir("admin");
  absl::StatusOr<std::shared_ptr<grpc::Channel>> ch = sdk::CreateChannel(o);
  REQUIRE(ch.ok());
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(*ch);

  // Pages of 2 (through both verifiers' records) give the whole history.
  v1::GetAttestationHistoryRequest req;
  req.set_agent_id(pool.agent_id_);
  int pages = 0;
  CHECK(AllPages(*stub, req, 2, &pages) ==
        ids_where([](const Truth&) { return true; }));
  CHECK(pages == static_cast<int>((n + 1) / 2));

  // [second oldest, second newest): the edges exactly, page by page.
  const int64_t from = truth[n - 2].us;
  const int64_t to = truth[1].us;
  v1::GetAttestationHistoryRequest ranged = req;
  set_us(from, ranged.mutable_start_time());
  set_us(to, ranged.mutable_end_time());
  const std::vector<std::string> in_range =
      ids_where([&](const Truth& t) { return t.us >= from && t.us < to; });
  CHECK(in_range.size() >= 2);
  CHECK(AllPages(*stub, ranged, 1, &pages) == in_range);

  // Only failures, and failures in the range.
  v1::GetAttestationHistoryRequest fails = req;
  fails.add_states(v1::ATTESTATION_STATE_FAIL);
  const std::vector<std::string> all_fails =
      ids_where([](const Truth& t) { return t.state == "fail"; });
  CHECK(AllPages(*stub, fails, 1, &pages) == all_fails);
  v1::GetAttestationHistoryResponse first;
  REQUIRE(HistoryCall(*stub, fails, &first).ok());
  REQUIRE(first.records_size() >= 1);
  CHECK(first.records(0).state() == v1::ATTESTATION_STATE_FAIL);
  CHECK(first.records(0).failures_size() >= 1);
  CHECK(first.records(0).agent_id() == pool.agent_id_);
  *fails.mutable_start_time() = ranged.start_time();
  *fails.mutable_end_time() = ranged.end_time();
  CHECK(AllPages(*stub, fails, 1, &pages) == ids_where([&](const Truth& t) {
          return t.state == "fail" && t.us >= from && t.us < to;
        }));

  // A token is for its own query: replayed against another filter, altered
  // or foreign it is INVALID_ARGUMENT; so are reversed ranges and states a
  // record cannot have.
  v1::GetAttestationHistoryRequest paged = req;
  paged.set_page_size(1);
  v1::GetAttestationHistoryResponse one;
  REQUIRE(HistoryCall(*stub, paged, &one).ok());
  REQUIRE(!one.next_page_token().empty());
  auto refused = [&](const v1::GetAttestationHistoryRequest& bad) {
    v1::GetAttestationHistoryResponse resp;
    grpc::Status st = HistoryCall(*stub, bad, &resp);
    INFO(st.error_message());
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(resp.records_size() == 0);
  };
  v1::GetAttestationHistoryRequest bad = paged;
  bad.set_page_token(one.next_page_token());
  bad.add_states(v1::ATTESTATION_STATE_PASS);
  refused(bad);
  bad = paged;
  std::string altered = one.next_page_token();
  altered[altered.size() / 2] = altered[altered.size() / 2] == 'A' ? 'B' : 'A';
  bad.set_page_token(altered);
  refused(bad);
  bad = paged;
  bad.set_page_token(absl::BytesToHexString("default\n/\nx"));
  refused(bad);
  bad = ranged;
  set_us(to, bad.mutable_start_time());
  set_us(from, bad.mutable_end_time());
  refused(bad);
  bad = req;
  bad.add_states(v1::ATTESTATION_STATE_TIMEOUT);
  refused(bad);
  bad = req;
  bad.mutable_start_time()->set_seconds(253402300800);
  refused(bad);

  // vouchctl: the same through its flags and every page.
  auto rfc3339 = [](int64_t us) {
    return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::FromUnixMicros(us),
                            absl::UTCTimeZone());
  };
  auto ctl_ids = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"-o", "json", "agents", "history",
                                     pool.agent_id_};
    argv.insert(argv.end(), args.begin(), args.end());
    testing::RunResult r = pool.Ctl(argv);
    INFO(r.err);
    REQUIRE(r.status.Success());
    std::vector<std::string> ids;
    const nlohmann::json out = nlohmann::json::parse(r.out);
    for (const auto& rec : out["records"]) {
      ids.push_back(rec["attestation_id"].get<std::string>());
    }
    return ids;
  };
  CHECK(ctl_ids({}) == ids_where([](const Truth&) { return true; }));
  CHECK(ctl_ids({"--from", rfc3339(from), "--to", rfc3339(to)}) == in_range);
  CHECK(ctl_ids({"--state", "fail"}) == all_fails);
  CHECK(ctl_ids({"--since", "1h", "--state", "pass"}) ==
        ids_where([](const Truth& t) { return t.state == "pass"; }));
  CHECK(ctl_ids({"--limit", "2"}) ==
        std::vector<std::string>{truth[0].id, truth[1].id});
  CHECK(ctl_ids({"--to", "1970-01-02"}).empty());
  CHECK(!pool.Ctl({"agents", "history", pool.agent_id_, "--state", "timeout"})
             .status.Success());
  testing::RunResult reversed =
      pool.Ctl({"agents", "history", pool.agent_id_, "--from", rfc3339(to),
                "--to", rfc3339(from)});
  CHECK(!reversed.status.Success());
  CHECK(absl::StrContains(reversed.err, "start_time"));
  CHECK(!pool.Ctl({"agents", "history", pool.agent_id_, "--from", "yesterday"})
             .status.Success());
  // describe agent still shows the newest records.
  testing::RunResult described =
      pool.Ctl({"-o", "json", "describe", "agent", pool.agent_id_});
  INFO(described.err);
  REQUIRE(described.status.Success());
  const nlohmann::json history =
      nlohmann::json::parse(described.out)["history"];
  REQUIRE(!history.empty());
  CHECK(history[0]["attestation_id"] == truth[0].id);
}

}  // namespace
}  // namespace vouch
