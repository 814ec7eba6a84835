#include "verifier/verifier_app.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <openssl/rand.h>
#include <unistd.h>

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
#include "server/tls.h"
#include "store/agent_counts.h"
#include "store/migrate.h"
#include "store/pg_pool.h"
#include "store/pg_verifier_store.h"
#include "verifier/admin_service.h"
#include "verifier/attestation_service.h"
#include "verifier/executor.h"
#include "verifier/group_commit.h"
#include "verifier/policy_cache.h"
#include "verifier/result_issuer.h"
#include "verifier/verifier_metrics.h"

namespace vouch::verifier {

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
// verifier at once), lease renewal of this verifier's streams (which also
// finds streams another verifier took over and ends them), the agent-state
// gauges, and the latency figures of the last window in the log. Runs on its
// own thread: a database that does not answer holds it (up to the connection
// timeouts), never the thread that takes SIGTERM.
void Maintain(store::AgentStore& store, AttestationService& attestation,
              GroupCommitter& committer, absl::Duration sweep,
              VerifierMetrics* metrics, const std::function<void()>& count,
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
//                                   batch, before its verdicts are sent.
// Both are logged as warnings when set.
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
  if (absl::Status s = store::PrepareDatabase(pool, absl::Seconds(60));
      !s.ok()) {
    Log(LogLevel::kError, "database unusable", {{"error", s.message()}});
    return 1;
  }
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
  options.metrics = vm.get();
  options.results = results->get();
  AttestationService attestation(&store, &executor, &committer, &policies,
                                 options);
  std::optional<std::vector<std::string>> signing_keys = SigningKeys(cfg);
  if (!signing_keys) return 2;
  AdminService admin(&store, &store, &store, *std::move(signing_keys),
                     results->get());

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

  absl::Notification stop_maintenance;
  std::thread maintenance(
      Maintain, std::ref(store), std::ref(attestation), std::ref(committer),
      cfg.GetDuration("verifier", "sweep_interval"), vm.get(),
      std::cref(count_agents), std::ref(stop_maintenance));
  const int sig = WaitForShutdown();
  Log(LogLevel::kInfo, "verifier stopping", {{"signal", sig}});
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
