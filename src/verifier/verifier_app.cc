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
#include "server/metrics.h"
#include "server/service_notify.h"
#include "server/tls.h"
#include "store/agent_counts.h"
#include "store/migrate.h"
#include "store/pg_pool.h"
#include "store/pg_verifier_store.h"
#include "store/retention.h"
#include "verifier/admin_service.h"
#include "verifier/attestation_service.h"
#include "verifier/executor.h"
#include "verifier/group_commit.h"
#include "verifier/policy_cache.h"
#include "verifier/result_issuer.h"
#include "verifier/verifier_metrics.h"

namespace vouch::verifier {

namespace {

// [admission]: what one verifier holds for its agents and callers at most
// (AttestationOptions, AdminOptions).
void AddAdmissionKeys(ConfigSchema& schema) {
  const AttestationOptions a;
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
                  "PEM public keys or certificates that DSSE-signed policy "
                  "imports must verify with (any one)")
      .String("verifier", "results_key", "",
              "PEM ECDSA P-256 private key that signs attestation results "
              "(EAR tokens); empty: no tokens are issued")
      .StringList("verifier", "results_old_keys", {},
                  "PEM public keys of earlier results keys, still listed in "
                  "the JWKS so their tokens verify until they expire")
      .Duration("verifier", "results_ttl", absl::Minutes(5),
                "How long an attestation result token is valid (exp - iat), "
                "1s..24h");
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
  AddAdmissionKeys(spec.schema);
  AddDatabaseKeys(spec.schema, /*default_max_connections=*/8);
  AddTlsKeys(spec.schema, "verifier",
             "CA that signs agent and client certificates");
  AddMetricsKeys(spec.schema);
  server::AddServerLimitKeys(spec.schema);
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

}  // namespace

int RunVerifier(AppContext& ctx) {
  const Config& cfg = ctx.config;
  const std::string listen = cfg.GetString("verifier", "listen");
  std::string id = cfg.GetString("verifier", "id");
  if (id.empty()) id = DefaultId();
  SetDeadlockDetection();
  const std::string url = cfg.GetString("database", "url");
  if (url.empty()) {
    Log(LogLevel::kError, "database.url is not set");
    return 2;
  }
  absl::StatusOr<server::ListenSetup> setup =
      server::ListenSetupFromConfig(cfg);
  if (!setup.ok()) {
    Log(LogLevel::kError, "TLS or [grpc] setup failed",
        {{"error", setup.status().message()}});
    return 2;
  }
  for (const char* key : {"hello_deadline", "retry_after", "watch_poll"}) {
    if (cfg.GetDuration("admission", key) <= absl::ZeroDuration()) {
      Log(LogLevel::kError, "admission: duration must be positive",
          {{"key", key}});
      return 2;
    }
  }
  const int timeout_intervals =
      static_cast<int>(cfg.GetInt("verifier", "timeout_intervals"));
  int workers = static_cast<int>(cfg.GetInt("verifier", "workers"));
  if (workers == 0) {
    workers = static_cast<int>(std::thread::hardware_concurrency());
    if (workers < 2) workers = 2;
  }
  const int commit_threads =
      static_cast<int>(cfg.GetInt("verifier", "commit_threads"));
  // Workers and committers each hold at most one connection at a time.
  int max_conn = static_cast<int>(cfg.GetInt("database", "max_connections"));
  if (max_conn < workers + commit_threads + 1) {
    max_conn = workers + commit_threads + 1;
  }
  Log(LogLevel::kInfo, "verifier starting",
      {{"listen", listen},
       {"id", id},
       {"workers", workers},
       {"db_connections", max_conn}});
  store::PgPool pool(url, max_conn, store::PgOptionsFromConfig(cfg));
  std::shared_ptr<server::Metrics> metrics =
      server::MetricsFromConfig(cfg, "vouch-verifier");
  absl::StatusOr<std::unique_ptr<server::MetricsServer>> http =
      server::ServeMetricsFromConfig(cfg, metrics, [&pool] {
        return store::SchemaReady(pool, absl::Seconds(2));
      });
  if (!http.ok()) return 1;
  if (std::optional<int> exit = store::PrepareDatabaseOrExit(
          pool, cfg.GetString("database", "migrate"))) {
    return *exit;
  }
  store::RetentionOptions retention;
  retention.keep_days = static_cast<int>(cfg.GetInt("retention", "days"));
  retention.days_ahead =
      static_cast<int>(cfg.GetInt("retention", "days_ahead"));
  PartitionMaintenance partitions(
      &pool, retention, cfg.GetDuration("retention", "check_interval"));
  // Before serving: the partitions of the coming days exist.
  partitions.RunIfDue();
  std::function<void()> maintain_partitions = [&partitions] {
    partitions.RunIfDue();
  };
  store::PgVerifierStore store(&pool, timeout_intervals);
  core::ima::PathHashKey key{};
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    Log(LogLevel::kError, "RAND_bytes failed");
    return 1;
  }
  Executor executor(workers, /*max_queued=*/100000);
  GroupCommitter committer(
      &store, commit_threads,
      static_cast<size_t>(cfg.GetInt("verifier", "max_commit_batch")));
  ApplyTestHooks(store, committer);
  PolicyCache policies(&store, absl::Seconds(1), key);
  std::unique_ptr<VerifierMetrics> vm;
  std::unique_ptr<store::AgentCounter> counter;
  std::function<void()> count_agents;
  if (metrics != nullptr) {
    vm = std::make_unique<VerifierMetrics>(metrics.get());
    committer.SetBatchObserver(
        [m = vm.get()](size_t n, absl::Duration took) { m->Batch(n, took); });
    counter = std::make_unique<store::AgentCounter>(url, id);
    count_agents = [&] { CountAgents(*counter, pool, *vm); };
  }
  absl::StatusOr<std::unique_ptr<ResultIssuer>> results = Results(cfg, id);
  if (!results.ok()) {
    Log(LogLevel::kError, "verifier.results_key or results_old_keys unusable",
        {{"error", results.status().message()}});
    return 2;
  }
  AttestationOptions options;
  options.session.verifier_id = id;
  options.session.min_interval = cfg.GetDuration("verifier", "min_interval");
  options.session.timeout_intervals = timeout_intervals;
  options.session.keep_evidence = cfg.GetBool("verifier", "keep_evidence");
  options.hello_deadline = cfg.GetDuration("admission", "hello_deadline");
  options.max_streams =
      static_cast<size_t>(cfg.GetInt("admission", "max_streams"));
  options.max_held_ima_bytes = cfg.GetInt("admission", "max_held_ima_bytes");
  options.busy_retry_after = cfg.GetDuration("admission", "retry_after");
  options.metrics = vm.get();
  options.results = results->get();
  AttestationService attestation(&store, &executor, &committer, &policies,
                                 options);
  std::optional<std::vector<std::string>> signing_keys = SigningKeys(cfg);
  if (!signing_keys) return 2;
  AdminService admin(&store, &store, &store, *std::move(signing_keys),
                     results->get());
  admin.watch_poll = cfg.GetDuration("admission", "watch_poll");
  admin.max_watch_per_caller =
      static_cast<int>(cfg.GetInt("admission", "max_watch_streams_per_caller"));
  admin.metrics = metrics.get();

  // The scrape hooks read the objects above: stop serving before they go.
  absl::Cleanup stop_http = [&http] { http->reset(); };
  if (vm != nullptr) {
    metrics->OnScrape([&] {
      vm->SetStreams(attestation.streams());
      vm->SetPolicyTotals(policies.hits(),
                          static_cast<uint64_t>(policies.loads()));
      const store::PgPool::Stats db = pool.stats();
      vm->SetPoolStats(db.max, db.open, db.in_use, db.acquired, db.failed,
                       db.wait_seconds);
    });
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, setup->credentials, &port);
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(cfg.GetInt("verifier", "max_agent_message_bytes")));
  // Agents keep their streams alive with pings (agent_app.cc); [grpc]
  // permits them and bounds everything else a peer can make us hold.
  server::ApplyServerLimits(setup->limits, builder);
  builder.RegisterService(&attestation);
  builder.RegisterService(&admin);
  std::unique_ptr<grpc::Server> server =
      server::StartServing(builder, port, listen,
                           cfg.GetString("verifier", "port_file"), "verifier");
  if (server == nullptr) return 1;
  if (*http != nullptr) (*http)->SetServing();
  // PrepareDatabase above reached the database; the server listens now.
  server::NotifyReady(absl::StrCat("serving on port ", port)).IgnoreError();

  absl::Notification stop_maintenance;
  std::thread maintenance(
      Maintain, std::ref(store), std::ref(attestation), std::ref(committer),
      cfg.GetDuration("verifier", "sweep_interval"), vm.get(),
      std::cref(count_agents), std::cref(maintain_partitions),
      std::ref(stop_maintenance));
  const int sig = WaitForShutdown();
  Log(LogLevel::kInfo, "verifier stopping", {{"signal", sig}});
  server::NotifyStopping().IgnoreError();
  ExitAfterGrace();
  if (*http != nullptr) (*http)->SetDraining();
  server->GetHealthCheckService()->Shutdown();
  stop_maintenance.Notify();
  attestation.Drain();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  maintenance.join();
  return 0;
}

}  // namespace vouch::verifier
