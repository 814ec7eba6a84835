#include "verifier/verifier_app.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file.h"
#include "common/logging.h"
#include "common/service_config.h"
#include "common/thread_name.h"
#include "core/translog/tree_head.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "server/tls.h"
#include "startup/database_server.h"
#include "store/agent_counts.h"
#include "store/pg_pool.h"
#include "store/pg_translog.h"
#include "store/pg_verifier_store.h"
#include "store/retention.h"
#include "verifier/admin_service.h"
#include "verifier/attestation_service.h"
#include "verifier/executor.h"
#include "verifier/group_commit.h"
#include "verifier/policy_cache.h"
#include "verifier/result_issuer.h"
#include "verifier/translog_runner.h"
#include "verifier/verifier_metrics.h"
#include "verifier/webhook_delivery.h"

namespace vouch::verifier {

namespace {

// [admission] new_streams_*: the token bucket of new Attest streams.
void AddAdmissionRateKeys(ConfigSchema& schema) {
  const AdmissionOptions a;
  schema
      .Int("admission", "new_streams_per_second",
           static_cast<int64_t>(a.new_streams_per_second),
           "New Attest streams this verifier accepts per second (a reconnect "
           "storm is spread out); more are refused with RESOURCE_EXHAUSTED "
           "and a retry hint; 0 = unlimited",
           0, 1000000)
      .Int("admission", "new_streams_burst", a.new_streams_burst,
           "New Attest streams accepted at once before the per-second rate "
           "applies",
           1, 10000000);
}

// [database] admin_max_connections: the Admin API's and Watch's own pool.
void AddAdminPoolKeys(ConfigSchema& schema) {
  schema.Int("database", "admin_max_connections", 2,
             "Connections of the Admin API and Watch streams, a pool of "
             "their own so verdict commits never wait behind them",
             1, 64);
}

// [admission] watch_max_queued: how far a Watch reader may fall behind.
void AddWatchQueueKeys(ConfigSchema& schema) {
  schema.Int("admission", "watch_max_queued",
             static_cast<int64_t>(WatchHubOptions().max_queued),
             "Events a Watch stream may have queued and not yet written; a "
             "slower reader is closed with RESOURCE_EXHAUSTED and resumes "
             "from its last token",
             1, 10000000);
}

// [admission]: what one verifier holds for its agents and callers at most
// (AdmissionOptions, AdminService's Watch bounds).
void AddAdmissionKeys(ConfigSchema& schema) {
  const AdmissionOptions a;
  schema
      .Duration("admission", "hello_deadline", a.hello_deadline,
                "A stream that sends no Hello this long after it opened is "
                "closed (DEADLINE_EXCEEDED)")
      .Int("admission", "max_streams", static_cast<int64_t>(a.max_streams),
           "Attest streams this verifier holds at once; more are refused "
           "with RESOURCE_EXHAUSTED",
           1, 10000000)
      .Int("admission", "max_held_ima_bytes", a.max_held_ima_bytes,
           "Unproven IMA bytes (truncated chunks awaiting the rest) all "
           "streams hold at once; a stream that would go over is ended with "
           "RESOURCE_EXHAUSTED",
           1, int64_t{1} << 40)
      .Duration("admission", "retry_after", a.busy_retry_after,
                "Retry hint sent with a RESOURCE_EXHAUSTED refusal; agents "
                "wait this long or longer, jittered")
      .Int("admission", "max_watch_streams_per_caller",
           kDefaultMaxWatchPerCaller,
           "Watch streams one client certificate holds at once", 1, 10000)
      .Duration("admission", "watch_poll", kDefaultWatchPoll,
                "How often Watch streams look for new events");
  AddAdmissionRateKeys(schema);
  AddWatchQueueKeys(schema);
}

}  // namespace

AppSpec VerifierAppSpec() {
  AppSpec spec;
  spec.name = "vouch-verifier";
  spec.description =
      "Vouch verifier: takes agents' attestation streams, verifies quotes, "
      "boot and IMA logs, and shares state with its pool in PostgreSQL.";
  spec.default_config_path = "/etc/vouch/verifier.toml";
  spec.daemon = true;
  spec.schema
      .String("verifier", "listen", "[::]:8991",
              "gRPC listen address (Attestation and Admin services)")
      .String("verifier", "id", "",
              "Pool member name; empty uses the host name and process id")
      .String("verifier", "port_file", "",
              "If set, the bound port is written here once serving (for "
              "listen = \"...:0\")")
      .Int("verifier", "timeout_intervals", 3,
           "An agent silent for this many intervals is marked timeout; all "
           "verifiers of a pool must agree",
           1, 100)
      .Bool("verifier", "keep_evidence", true,
            "Each attestation record keeps its evidence (quote, PCRs, IMA "
            "entries, boot log, policy versions) for re-verification and "
            "the offline audit (docs/audit.md)")
      .Duration("verifier", "min_interval", absl::Seconds(1),
                "Least time between two pushes of one agent "
                "(Challenge.min_interval)")
      .Duration("verifier", "sweep_interval", absl::Seconds(5),
                "How often this verifier marks silent agents timeout and "
                "renews the leases of its streams")
      .Int("verifier", "max_agent_message_bytes", 6 << 20,
           "Largest AgentMessage accepted (the protocol's bound is 6 MiB)",
           4096, 6 << 20)
      .Int("verifier", "workers", 0,
           "Threads for verification and database work; 0 = one per core", 0,
           256)
      .Int("verifier", "commit_threads", 2,
           "Group-commit threads (each one database connection)", 1, 64)
      .Int("verifier", "max_commit_batch", 256,
           "Most verdicts committed in one transaction", 1, 10000)
      .StringList("verifier", "policy_signing_keys", {},
                  "PEM public keys or certificates trusted for DSSE-signed "
                  "policies of every tenant (pool-wide; each tenant adds its "
                  "own with vouchctl policy-keys)")
      .String("verifier", "policy_fetch_ca_file", "",
              "PEM CA bundle that policy URLs' servers are checked against; "
              "empty: the system's CA bundle")
      .Duration("verifier", "policy_fetch_timeout", absl::Seconds(60),
                "Longest a policy download may take (connecting: at most "
                "10 s of it)")
      .String("verifier", "results_key", "",
              "PEM ECDSA P-256 private key that signs attestation results "
              "(EAR tokens); empty: no tokens are issued")
      .StringList("verifier", "results_old_keys", {},
                  "PEM public keys of earlier results keys, still listed in "
                  "the JWKS so their tokens verify until they expire")
      .Duration("verifier", "results_ttl", absl::Minutes(5),
                "How long an attestation result token is valid (exp - iat), "
                "1s..24h")
      .Duration("verifier", "notice_ttl", absl::Minutes(5),
                "How long a signed action notice to an agent is valid "
                "(exp - iat); notices need verifier.results_key");
  spec.schema
      .Int("retention", "days", 30,
           "Attestation records and state-change events are kept at least "
           "this many days (at most one more: they go by day partitions); "
           "0 keeps them forever",
           0, 36500)
      .Int("retention", "days_ahead", 7,
           "Day partitions are created this many days ahead", 1, 365)
      .Duration("retention", "check_interval", absl::Hours(1),
                "How often this verifier runs the partition maintenance "
                "(one verifier of the pool at a time)");
  spec.schema
      .String("translog", "key", "",
              "PEM ECDSA P-256 or Ed25519 private key that signs the "
              "transparency log's tree heads (the pool log key; every "
              "verifier of a pool has the same); empty: no log")
      .Duration("translog", "interval", absl::Seconds(1),
                "How often this verifier sequences (when it holds the "
                "lease) and checks the log")
      .Duration("translog", "bound", absl::Minutes(1),
                "A committed entry not in the log after this long raises "
                "an alarm");
  AddAdmissionKeys(spec.schema);
  AddDatabaseKeys(spec.schema, /*default_max_connections=*/8);
  AddAdminPoolKeys(spec.schema);
  AddTlsKeys(spec.schema, "verifier",
             "CA that signs agent and client certificates");
  AddMetricsKeys(spec.schema);
  server::AddServerLimitKeys(spec.schema);
  AddWebhookKeys(spec.schema);
  return spec;
}

namespace {

std::string DefaultId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] != '\0' ? host : "verifier", "-", getpid());
}

// Abseil's mutex deadlock detection costs a graph update per lock: off in
// production, where the lock order written in attestation_service.h holds;
// on (abort on a cycle) in the sanitizer build the tests run.
void SetDeadlockDetection() {
#if defined(__SANITIZE_ADDRESS__)
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kAbort);
#else
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
}

// verifier.policy_signing_keys as PEM texts; nullopt (logged) when one is
// unreadable.
std::optional<std::vector<std::string>> SigningKeys(const Config& cfg) {
  std::vector<std::string> keys;
  for (const std::string& f :
       cfg.GetStringList("verifier", "policy_signing_keys")) {
    absl::StatusOr<std::string> pem = ReadFileUpTo(f, 1 << 20);
    if (!pem.ok()) {
      Log(LogLevel::kError, "verifier.policy_signing_keys: unreadable",
          {{"file", f}, {"error", pem.status().message()}});
      return std::nullopt;
    }
    keys.push_back(*std::move(pem));
  }
  return keys;
}

// The results issuer from verifier.results_key (nullptr when unset);
// an error (logged) when a key is unreadable or not P-256.
absl::StatusOr<std::unique_ptr<ResultIssuer>> Results(const Config& cfg,
                                                      const std::string& id) {
  const std::string path = cfg.GetString("verifier", "results_key");
  if (path.empty()) return nullptr;
  absl::StatusOr<std::string> pem = ReadFileUpTo(path, 1 << 16);
  if (!pem.ok()) return pem.status();
  std::vector<std::string> old;
  for (const std::string& f :
       cfg.GetStringList("verifier", "results_old_keys")) {
    absl::StatusOr<std::string> text = ReadFileUpTo(f, 1 << 16);
    if (!text.ok()) return text.status();
    old.push_back(*std::move(text));
  }
  const absl::Duration ttl = cfg.GetDuration("verifier", "results_ttl");
  if (ttl < absl::Seconds(1) || ttl > absl::Hours(24)) {
    return absl::InvalidArgumentError("verifier.results_ttl: 1s..24h");
  }
  return ResultIssuer::Create(*pem, old, ttl, id);
}

// The action notices to agents (notice_hub.h), signed with the results
// key; they read the event log on the Watch poll.
std::unique_ptr<NoticeHub> StartNotices(const Config& cfg,
                                        store::PgVerifierStore& store,
                                        const ResultIssuer* results) {
  NoticeHubOptions o;
  o.ttl = std::clamp(cfg.GetDuration("verifier", "notice_ttl"),
                     absl::Seconds(1), absl::Hours(24));
  o.poll = cfg.GetDuration("admission", "watch_poll");
  return std::make_unique<NoticeHub>(&store, &store, results, o);
}

// The agent-state gauges: this verifier's agents, and the pool's when this
// verifier is the elected reporter.
void CountAgents(store::AgentCounter& counter, store::PgPool& pool,
                 VerifierMetrics& metrics) {
  absl::StatusOr<store::AgentCounts> mine = counter.Owned(pool);
  if (mine.ok()) metrics.SetAgents(*mine, /*pool=*/false);
  absl::StatusOr<std::optional<store::AgentCounts>> all = counter.Pool();
  if (all.ok()) metrics.SetAgents(all->value_or(store::AgentCounts{}), true);
}

// Maintenance until `stop` is notified: the timeout sweeper (safe in every
// verifier at once), the partition maintenance (when due), lease renewal of
// this verifier's streams (which also finds streams another verifier took over
// and ends them), the agent-state gauges, and the latency figures of the last
// window in the log. Runs on its own thread: a database that does not answer
// holds it (up to the connection timeouts), never the thread that takes
// SIGTERM.
void Maintain(store::AgentStore& store, AttestationService& attestation,
              GroupCommitter& committer, absl::Duration sweep,
              VerifierMetrics* metrics, const std::function<void()>& count,
              const std::function<void()>& partitions,
              absl::Notification& stop) {
  SetThreadName("vouch-maintain");
  uint64_t last_batches = 0;
  uint64_t last_committed = 0;
  while (!stop.HasBeenNotified()) {
    absl::StatusOr<int64_t> swept = store.SweepTimeouts();
    if (!swept.ok()) {
      if (metrics != nullptr) metrics->SweepFailed();
      Log(LogLevel::kWarning, "timeout sweep failed",
          {{"error", swept.status().message()}});
    } else if (*swept > 0) {
      if (metrics != nullptr) metrics->TimedOut(*swept);
      Log(LogLevel::kInfo, "agents timed out", {{"count", *swept}});
    }
    if (stop.HasBeenNotified()) break;
    partitions();
    if (count) count();
    attestation.RenewLeases(sweep);
    const LatencyRecorder::Stats stats = attestation.TakeLatencyStats();
    const uint64_t batches = committer.batches();
    const uint64_t committed = committer.verdicts();
    if (stats.verdicts > 0) {
      Log(LogLevel::kInfo, "attestation latency",
          {{"verdicts", stats.verdicts},
           {"p50_us", absl::ToInt64Microseconds(stats.p50)},
           {"p99_us", absl::ToInt64Microseconds(stats.p99)},
           {"max_us", absl::ToInt64Microseconds(stats.max)},
           {"commit_p50_us", absl::ToInt64Microseconds(stats.commit_p50)},
           {"commit_p99_us", absl::ToInt64Microseconds(stats.commit_p99)},
           {"batches", batches - last_batches},
           {"batched_verdicts", committed - last_committed}});
    }
    last_batches = batches;
    last_committed = committed;
    stop.WaitForNotificationWithTimeout(sweep);
  }
}

// The partition maintenance (store/retention.h) at most once per
// `interval`; every verifier calls it, one at a time does the work.
class PartitionMaintenance {
 public:
  PartitionMaintenance(store::PgPool* pool, store::RetentionOptions options,
                       absl::Duration interval)
      : pool_(pool), options_(options), interval_(interval) {}

  void RunIfDue() {
    const absl::Time now = absl::Now();
    if (now < next_) return;
    next_ = now + interval_;
    absl::StatusOr<store::RetentionRun> run = [&] {
      absl::StatusOr<store::PgPool::Lease> db = pool_->Acquire();
      if (!db.ok()) return absl::StatusOr<store::RetentionRun>(db.status());
      return store::MaintainPartitions(**db, options_);
    }();
    if (!run.ok()) {
      Log(LogLevel::kWarning, "partition maintenance failed; retrying later",
          {{"error", run.status().message()}});
      next_ = now + std::min(interval_, absl::Minutes(1));
    } else if (run->created > 0 || run->dropped > 0) {
      Log(LogLevel::kInfo, "partition maintenance",
          {{"created", run->created},
           {"dropped", run->dropped},
           {"nonces_deleted", run->nonces_deleted}});
    }
  }

 private:
  store::PgPool* const pool_;
  const store::RetentionOptions options_;
  const absl::Duration interval_;
  absl::Time next_ = absl::InfinitePast();
};

// After a stop signal the orderly shutdown (drain, in-flight commits, the
// maintenance thread) waits on the database at most this long; then the
// process exits anyway. Nothing is lost: a verdict is sent only after its
// commit, so an exit here is like a crash between two verdicts.
constexpr absl::Duration kShutdownGrace = absl::Seconds(7);

void ExitAfterGrace() {
  std::thread([] {
    absl::SleepFor(kShutdownGrace);
    Log(LogLevel::kWarning,
        "shutdown still waiting on the database; exiting without it");
    std::_Exit(0);
  }).detach();
}

// Fault injection for tests only (tests/e2e/fault_test.cc), from the
// environment so that no config file or flag can carry it:
//   VOUCH_TEST_COMMIT_DELAY=3s      each verdict transaction sleeps 3 s
//                                   before COMMIT;
//   VOUCH_TEST_EXIT_AFTER_COMMITS=N exit (137) after the N-th committed
//                                   batch, before its verdicts are sent;
//   VOUCH_TEST_FAIL_EVERY_BATCH=N   every N-th verdict batch fails in the
//                                   commit task, before the store (nothing
//                                   committed, each verdict gets an error).
// Each is logged as a warning when set.
void ApplyTestHooks(store::PgVerifierStore& store, GroupCommitter& committer) {
  if (const char* d = std::getenv("VOUCH_TEST_COMMIT_DELAY")) {
    absl::Duration delay;
    if (absl::ParseDuration(d, &delay) && delay > absl::ZeroDuration()) {
      Log(LogLevel::kWarning, "test hook: commit delay",
          {{"delay", absl::FormatDuration(delay)}});
      store.SetCommitDelayForTests(delay);
    }
  }
  if (const char* n = std::getenv("VOUCH_TEST_EXIT_AFTER_COMMITS")) {
    int count = 0;
    if (absl::SimpleAtoi(n, &count) && count > 0) {
      Log(LogLevel::kWarning, "test hook: exit after commits",
          {{"commits", count}});
      committer.SetExitAfterCommitsForTests(count);
    }
  }
  if (const char* n = std::getenv("VOUCH_TEST_FAIL_EVERY_BATCH")) {
    int every = 0;
    if (absl::SimpleAtoi(n, &every) && every > 0) {
      Log(LogLevel::kWarning, "test hook: fail every n-th commit batch",
          {{"every", every}});
      committer.SetFailEveryBatchForTests(every);
    }
  }
}

// What RunVerifier reads from the config beyond the objects' own keys,
// checked once at start.
struct VerifierConfig {
  std::string listen;
  std::string id;
  server::ListenSetup setup;
  int timeout_intervals = 0;
  int workers = 0;
  int commit_threads = 0;
  int db_connections = 0;
};

// The config-reading step: the [verifier], [admission] and [tls]/[grpc]
// values RunVerifier needs; an exit code (2, logged) when one is unusable.
std::optional<int> ReadVerifierConfig(const Config& cfg, VerifierConfig& out) {
  out.listen = cfg.GetString("verifier", "listen");
  out.id = cfg.GetString("verifier", "id");
  if (out.id.empty()) out.id = DefaultId();
  if (std::optional<int> exit = startup::CheckDatabaseConfig(cfg)) return exit;
  absl::StatusOr<server::ListenSetup> setup =
      server::ListenSetupFromConfig(cfg);
  if (!setup.ok()) {
    Log(LogLevel::kError, "TLS or [grpc] setup failed",
        {{"error", setup.status().message()}});
    return 2;
  }
  out.setup = *std::move(setup);
  for (const char* key : {"hello_deadline", "retry_after", "watch_poll"}) {
    if (cfg.GetDuration("admission", key) <= absl::ZeroDuration()) {
      Log(LogLevel::kError, "admission: duration must be positive",
          {{"key", key}});
      return 2;
    }
  }
  if (cfg.GetDuration("verifier", "policy_fetch_timeout") < absl::Seconds(1)) {
    Log(LogLevel::kError, "verifier.policy_fetch_timeout: at least 1s");
    return 2;
  }
  out.timeout_intervals =
      static_cast<int>(cfg.GetInt("verifier", "timeout_intervals"));
  out.workers = static_cast<int>(cfg.GetInt("verifier", "workers"));
  if (out.workers == 0) {
    out.workers =
        std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  }
  out.commit_threads =
      static_cast<int>(cfg.GetInt("verifier", "commit_threads"));
  // Workers and committers each hold at most one connection at a time.
  out.db_connections =
      std::max(static_cast<int>(cfg.GetInt("database", "max_connections")),
               out.workers + out.commit_threads + 1);
  return std::nullopt;
}

// The agent-facing service's options from [verifier] and [admission].
AttestationOptions AttestationOptionsFrom(const Config& cfg,
                                          const VerifierConfig& vc) {
  AttestationOptions options;
  options.session.verifier_id = vc.id;
  options.session.min_interval = cfg.GetDuration("verifier", "min_interval");
  options.session.timeout_intervals = vc.timeout_intervals;
  options.session.keep_evidence = cfg.GetBool("verifier", "keep_evidence");
  AdmissionOptions& admission = options.admission;
  admission.hello_deadline = cfg.GetDuration("admission", "hello_deadline");
  admission.max_streams =
      static_cast<size_t>(cfg.GetInt("admission", "max_streams"));
  admission.max_held_ima_bytes = cfg.GetInt("admission", "max_held_ima_bytes");
  admission.busy_retry_after = cfg.GetDuration("admission", "retry_after");
  admission.new_streams_per_second =
      static_cast<double>(cfg.GetInt("admission", "new_streams_per_second"));
  admission.new_streams_burst =
      static_cast<int>(cfg.GetInt("admission", "new_streams_burst"));
  return options;
}

// Each agent stream is a socket: a file limit below admission.max_streams
// refuses streams at accept(), before admission control can answer them with
// a retry hint. Said once at start, so the operator raises LimitNOFILE.
void WarnIfFewFiles(const Config& cfg, const VerifierConfig& vc,
                    uint64_t open_files) {
  const auto max_streams =
      static_cast<uint64_t>(cfg.GetInt("admission", "max_streams"));
  // Database connections, the listening sockets, logs and key files.
  const uint64_t reserve = static_cast<uint64_t>(vc.db_connections) + 64;
  if (open_files == 0 || open_files >= max_streams + reserve) return;
  Log(LogLevel::kWarning,
      "open-file limit below admission.max_streams: agents past it cannot "
      "connect; raise LimitNOFILE or lower admission.max_streams",
      {{"open_files", open_files},
       {"max_streams", max_streams},
       {"streams_that_fit",
        open_files > reserve ? open_files - reserve : uint64_t{0}}});
}

// The Admin pool's options: operator calls are rare, so its connections sit
// idle long and are the ones a database restart leaves dead; one idle for a
// second is checked (SELECT 1) before it serves a call, so the first call
// after a restart is answered instead of failing UNAVAILABLE.
store::PgOptions AdminPoolOptions(const Config& cfg) {
  store::PgOptions o = store::PgOptionsFromConfig(cfg);
  o.idle_check = std::min(o.idle_check, absl::Seconds(1));
  return o;
}

// The server-building step: both services on verifier.listen with the
// [grpc] limits; nullptr (logged) when it cannot listen. `port` is the bound
// port once it returns.
std::unique_ptr<grpc::Server> BuildServer(const Config& cfg,
                                          const VerifierConfig& vc,
                                          AttestationService& attestation,
                                          AdminService& admin, int& port) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(vc.listen, vc.setup.credentials, &port);
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(cfg.GetInt("verifier", "max_agent_message_bytes")));
  // Agents keep their streams alive with pings (agent_app.cc); [grpc]
  // permits them and bounds everything else a peer can make us hold.
  server::ApplyServerLimits(vc.setup.limits, builder);
  builder.RegisterService(&attestation);
  builder.RegisterService(&admin);
  return server::StartServing(builder, port, vc.listen,
                              cfg.GetString("verifier", "port_file"),
                              "verifier");
}

// The verifier's metrics: recorded by the committer, the reactors and the
// maintenance loop, and read at each scrape. nullptr when metrics are off.
struct VerifierObservers {
  std::unique_ptr<VerifierMetrics> vm;
  std::unique_ptr<store::AgentCounter> counter;
  std::function<void()> count_agents;  // Empty when metrics are off.
};

void ObserveVerifier(const Config& cfg, const std::string& id,
                     startup::DatabaseServer& db, GroupCommitter& committer,
                     VerifierObservers& out) {
  if (db.metrics == nullptr) return;
  out.vm = std::make_unique<VerifierMetrics>(db.metrics.get());
  committer.SetBatchObserver(
      [m = out.vm.get()](size_t n, absl::Duration took) { m->Batch(n, took); });
  out.counter = std::make_unique<store::AgentCounter>(
      cfg.GetString("database", "url"), id);
  out.count_agents = [&out, &db] {
    CountAgents(*out.counter, *db.pool, *out.vm);
  };
}

// The scrape hooks read the objects RunVerifier owns; it stops serving
// /metrics before they go.
void HookScrapes(startup::DatabaseServer& db, VerifierMetrics* vm,
                 AttestationService& attestation, PolicyCache& policies) {
  if (vm == nullptr) return;
  db.metrics->OnScrape([vm, &attestation, &policies, &db] {
    vm->SetStreams(attestation.streams());
    vm->SetPolicyTotals(policies.hits(),
                        static_cast<uint64_t>(policies.loads()));
    const store::PgPool::Stats s = db.pool->stats();
    vm->SetPoolStats(s.max, s.open, s.in_use, s.acquired, s.failed,
                     s.wait_seconds);
  });
}

// The partition maintenance from [retention]; run once before serving, so
// the partitions of the coming days exist.
std::unique_ptr<PartitionMaintenance> StartPartitions(const Config& cfg,
                                                      store::PgPool* pool) {
  store::RetentionOptions retention;
  retention.keep_days = static_cast<int>(cfg.GetInt("retention", "days"));
  retention.days_ahead =
      static_cast<int>(cfg.GetInt("retention", "days_ahead"));
  auto partitions = std::make_unique<PartitionMaintenance>(
      pool, retention, cfg.GetDuration("retention", "check_interval"));
  partitions->RunIfDue();
  return partitions;
}

// The scheduled refresh of policy sources (PolicyFetcher::RefreshDue) on
// its own thread, every kPolicyRefreshPoll, until this is destroyed.
constexpr absl::Duration kPolicyRefreshPoll = absl::Milliseconds(500);

struct PolicyRefresher {
  absl::Notification stop;
  std::thread thread;
  void Start(PolicyFetcher* fetcher, const std::string& id) {
    thread = std::thread([this, fetcher, id] {
      SetThreadName("vouch-policies");
      do {
        fetcher->RefreshDue(id);
      } while (!stop.WaitForNotificationWithTimeout(kPolicyRefreshPoll));
    });
  }
  ~PolicyRefresher() {
    stop.Notify();
    if (thread.joinable()) thread.join();
  }
};

PolicyFetchOptions PolicyFetchOptionsFrom(const Config& cfg) {
  PolicyFetchOptions o;
  o.ca_file = cfg.GetString("verifier", "policy_fetch_ca_file");
  o.timeout = cfg.GetDuration("verifier", "policy_fetch_timeout");
  o.connect_timeout = std::min(o.timeout, absl::Seconds(10));
  return o;
}

// Serving until a stop signal, then the orderly shutdown: the maintenance
// loop on its own thread meanwhile.
// The transparency log, when [translog] key names a pool log key: each
// verdict's statement queues its record's leaf, and a thread runs the
// sequencer and the watchdog (TranslogRunner) until this is destroyed.
struct VerifierTranslog {
  // Committed records waiting for the watchdog to find them in the tree
  // (48 bytes each: at most about 12 MB).
  static constexpr size_t kWaitingRecords = 1 << 18;
  std::optional<core::translog::LogKey> key;
  std::unique_ptr<store::PgTranslog> log;
  store::CommittedLeaves committed{kWaitingRecords};
  absl::Notification stop;
  std::thread thread;
  ~VerifierTranslog() {
    stop.Notify();
    if (thread.joinable()) thread.join();
  }
};

// Reads [translog] key into `t` and turns the store's leaf on; nullopt when
// done (or the log is off), else the exit code (logged).
std::optional<int> SetUpTranslog(const Config& cfg, store::PgPool* pool,
                                 store::PgVerifierStore& store,
                                 VerifierTranslog& t) {
  t.log = std::make_unique<store::PgTranslog>(pool);
  const std::string path = cfg.GetString("translog", "key");
  if (path.empty()) return std::nullopt;
  absl::StatusOr<std::string> pem = ReadFileUpTo(path, 1 << 16);
  absl::StatusOr<core::translog::LogKey> k =
      pem.ok() ? core::translog::LogKey::FromPrivatePem(*pem)
               : absl::StatusOr<core::translog::LogKey>(pem.status());
  if (!k.ok()) {
    Log(LogLevel::kError, "translog.key unusable",
        {{"file", path}, {"error", k.status().message()}});
    return 2;
  }
  t.key = *std::move(k);
  store.SetTranslog(true, &t.committed);
  Log(LogLevel::kInfo, "transparency log on", {{"key_file", path}});
  return std::nullopt;
}

// Starts the log's thread (when the log is on).
void StartTranslog(const Config& cfg, const std::string& id,
                   VerifierMetrics* vm, VerifierTranslog& t) {
  if (!t.key) return;
  TranslogOptions options;
  options.lease = 3 * cfg.GetDuration("translog", "interval");
  options.bound = cfg.GetDuration("translog", "bound");
  const absl::Duration every = cfg.GetDuration("translog", "interval");
  t.thread = std::thread([&t, options, id, vm, every] {
    SetThreadName("vouch-translog");
    TranslogRunner runner(t.log.get(), &*t.key, id, options, vm, &t.committed);
    do {
      runner.RunOnce(absl::Now());
    } while (!t.stop.WaitForNotificationWithTimeout(every));
  });
}

void ServeUntilStopped(const Config& cfg, startup::DatabaseServer& db,
                       grpc::Server& server, store::AgentStore& store,
                       AttestationService& attestation,
                       GroupCommitter& committer,
                       const VerifierObservers& observers,
                       PartitionMaintenance& partitions) {
  const std::function<void()> maintain_partitions = [&partitions] {
    partitions.RunIfDue();
  };
  absl::Notification stop_maintenance;
  std::thread maintenance(
      Maintain, std::ref(store), std::ref(attestation), std::ref(committer),
      cfg.GetDuration("verifier", "sweep_interval"), observers.vm.get(),
      std::cref(observers.count_agents), std::cref(maintain_partitions),
      std::ref(stop_maintenance));
  const int sig = WaitForShutdown();
  Log(LogLevel::kInfo, "verifier stopping", {{"signal", sig}});
  db.Stopping();
  ExitAfterGrace();
  server.GetHealthCheckService()->Shutdown();
  stop_maintenance.Notify();
  attestation.Drain();
  server.Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  maintenance.join();
}

}  // namespace

int RunVerifier(AppContext& ctx) {
  const Config& cfg = ctx.config;
  VerifierConfig vc;
  SetDeadlockDetection();
  if (std::optional<int> exit = ReadVerifierConfig(cfg, vc)) return *exit;
  const uint64_t open_files = server::RaiseOpenFileLimit();
  Log(LogLevel::kInfo, "verifier starting",
      {{"listen", vc.listen},
       {"id", vc.id},
       {"workers", vc.workers},
       {"db_connections", vc.db_connections},
       {"open_files", open_files}});
  WarnIfFewFiles(cfg, vc, open_files);
  startup::DatabaseServer db;
  if (std::optional<int> exit = startup::StartDatabaseServer(
          cfg, "vouch-verifier", vc.db_connections, db)) {
    return *exit;
  }
  std::unique_ptr<PartitionMaintenance> partitions =
      StartPartitions(cfg, db.pool.get());
  store::PgVerifierStore store(db.pool.get(), vc.timeout_intervals);
  core::ima::PathHashKey key{};
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    Log(LogLevel::kError, "RAND_bytes failed");
    return 1;
  }
  Executor executor(vc.workers, /*max_queued=*/100000);
  GroupCommitter committer(
      &store, vc.commit_threads,
      static_cast<size_t>(cfg.GetInt("verifier", "max_commit_batch")));
  ApplyTestHooks(store, committer);
  PolicyCache policies(&store, absl::Seconds(1), key);
  VerifierObservers observers;
  ObserveVerifier(cfg, vc.id, db, committer, observers);
  absl::StatusOr<std::unique_ptr<ResultIssuer>> results = Results(cfg, vc.id);
  if (!results.ok()) {
    Log(LogLevel::kError, "verifier.results_key or results_old_keys unusable",
        {{"error", results.status().message()}});
    return 2;
  }
  VerifierTranslog translog;
  if (std::optional<int> exit =
          SetUpTranslog(cfg, db.pool.get(), store, translog)) {
    return *exit;
  }
  AttestationOptions options = AttestationOptionsFrom(cfg, vc);
  options.metrics = observers.vm.get();
  options.results = results->get();
  std::unique_ptr<NoticeHub> notices = StartNotices(cfg, store, results->get());
  options.notices = notices.get();
  AttestationService attestation(&store, &executor, &committer, &policies,
                                 options);
  std::optional<std::vector<std::string>> signing_keys = SigningKeys(cfg);
  if (!signing_keys) return 2;
  // The Admin API and Watch on their own pool: an operator's heavy read or
  // many Watch streams never hold a connection a verdict commit waits for.
  store::PgPool admin_pool(
      cfg.GetString("database", "url"),
      static_cast<int>(cfg.GetInt("database", "admin_max_connections")),
      AdminPoolOptions(cfg));
  store::PgVerifierStore admin_store(&admin_pool, vc.timeout_intervals);
  store::PgPolicySources policy_sources(&admin_pool);
  PolicyFetcher fetcher(&admin_store, &policy_sources, *signing_keys,
                        PolicyFetchOptionsFrom(cfg));
  AdminService admin(&admin_store, &admin_store, &admin_store,
                     *std::move(signing_keys), results->get());
  admin.sources = &policy_sources;
  admin.fetcher = &fetcher;
  admin.watch_poll = cfg.GetDuration("admission", "watch_poll");
  admin.max_watch_per_caller =
      static_cast<int>(cfg.GetInt("admission", "max_watch_streams_per_caller"));
  admin.watch_max_queued =
      static_cast<size_t>(cfg.GetInt("admission", "watch_max_queued"));
  admin.metrics = db.metrics.get();
  admin.tenant_settings = &admin_store;
  admin.fleet = &admin_store;
  if (translog.key) {
    admin.translog = translog.log.get();
    admin.log_key = &*translog.key;
  }
  const std::unique_ptr<Webhooks> webhooks = StartWebhooks(
      cfg, vc.id, &admin_pool, vc.timeout_intervals, db.metrics.get(), admin);

  // The scrape hooks read the objects above: stop serving before they go.
  absl::Cleanup stop_http = [&db] { db.http.reset(); };
  HookScrapes(db, observers.vm.get(), attestation, policies);
  int port = 0;
  std::unique_ptr<grpc::Server> server =
      BuildServer(cfg, vc, attestation, admin, port);
  if (server == nullptr) return 1;
  db.Serving(port);
  StartTranslog(cfg, vc.id, observers.vm.get(), translog);
  PolicyRefresher refresher;
  refresher.Start(&fetcher, vc.id);
  ServeUntilStopped(cfg, db, *server, store, attestation, committer, observers,
                    *partitions);
  return 0;
}

}  // namespace vouch::verifier
