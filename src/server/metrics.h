// File: server/metrics.h
// Prometheus metrics and HTTP health endpoints of a Vouch server. Metrics
// owns a prometheus-cpp registry with the metrics every binary shares
// (vouch_build_info, vouch_tls_certificate_expiry_timestamp_seconds,
// vouch_requests_refused_total); MetricsServer serves it as Prometheus text
// on GET /metrics, and GET /healthz (alive) and GET /readyz (the caller's
// readiness check, "not ready" while draining) on the same address, over
// plain HTTP with civetweb. Nothing here takes input from agents; HTTP
// requests are answered with fixed texts. Thread-safe.
//
//   auto metrics = std::make_shared<Metrics>("vouch-verifier");
//   metrics->OnScrape([&] { streams.Set(svc.streams()); });
//   VOUCH_ASSIGN_OR_RETURN(auto http,
//       MetricsServer::Start("127.0.0.1:0", metrics, [] { return Ready(); }));
//   http->port();  // The bound port.
#ifndef VOUCH_SERVER_METRICS_H_
#define VOUCH_SERVER_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/config.h"

struct mg_context;
struct mg_connection;

namespace vouch::server {

// Why a request was refused before any work was done; the `reason` label of
// vouch_requests_refused_total. A closed list, so the label stays bounded.
enum class Refusal {
  kHelloRate,      // An agent's Hello over its per-minute limit.
  kOverloaded,     // The verifier's work queue was full.
  kRegisterRate,   // Register over the registrar's per-minute limit.
  kHelloDeadline,  // A stream sent no Hello within the deadline.
  kStreamCap,      // The verifier held its most Attest streams.
  kImaBudget,      // The verifier-wide budget of held IMA bytes was full.
  kWatchCap,       // A caller held its most Watch streams.
  kStreamRate,     // New Attest streams over the verifier's admission rate.
};
constexpr int kRefusalCount = 8;

class Metrics {
 public:
  // `component`: the binary's name ("vouch-verifier"), the build_info label.
  explicit Metrics(absl::string_view component);

  prometheus::Registry& registry() { return *registry_; }

  // Counts one refused request. Cheap: a pre-resolved counter.
  void Refused(Refusal why) { refused_[static_cast<int>(why)]->Increment(); }

  // Sets vouch_tls_certificate_expiry_timestamp_seconds from the PEM
  // certificate in `cert_file` (kInvalidArgument when unreadable).
  absl::Status SetCertificateExpiry(const std::string& cert_file);

  // `fn` runs before each scrape (under the metrics lock), to set gauges
  // that are cheap to read at that moment (open streams, pool in use).
  void OnScrape(std::function<void()> fn);

  // The registry in Prometheus text format, after the scrape hooks.
  std::string Scrape();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* cert_expiry_;
  prometheus::Counter* refused_[kRefusalCount];
  absl::Mutex mu_;
  std::vector<std::function<void()>> hooks_ ABSL_GUARDED_BY(mu_);
};

// Histogram buckets in seconds for latencies from 1 ms to 10 s.
prometheus::Histogram::BucketBoundaries LatencyBuckets();

class MetricsServer {
 public:
  // Readiness: OK when ready, else why not (the body of the 503).
  using ReadyCheck = std::function<absl::Status()>;

  // Serves on `listen` ("127.0.0.1:0", "[::]:9102", "0.0.0.0:9102"); port 0
  // picks a free port (see port()). Logs the bound address.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& listen, std::shared_ptr<Metrics> metrics,
      ReadyCheck ready);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }
  // /readyz answers 503 "starting" until SetServing (the gRPC server
  // listens), then the ReadyCheck's answer, and 503 "draining" from
  // SetDraining (SIGTERM received) on.
  void SetServing() { phase_.store(kServing); }
  void SetDraining() { phase_.store(kDraining); }

 private:
  MetricsServer(std::shared_ptr<Metrics> metrics, ReadyCheck ready);
  static int HandleMetrics(mg_connection* conn, void* self);
  static int HandleHealthz(mg_connection* conn, void* self);
  static int HandleReadyz(mg_connection* conn, void* self);

  std::shared_ptr<Metrics> metrics_;
  ReadyCheck ready_;
  enum Phase { kStarting, kServing, kDraining };
  std::atomic<int> phase_{kStarting};
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

// For the binaries: when [metrics] listen is set, a Metrics for
// `component` with the TLS certificate's expiry from [tls] cert_file (when
// the schema has it); nullptr when metrics are disabled (listen empty), so
// services skip recording entirely.
std::shared_ptr<Metrics> MetricsFromConfig(const Config& config,
                                           absl::string_view component);

// Starts the HTTP endpoint for `metrics` on [metrics] listen; nullptr (and
// OK) when metrics are disabled; an error (logged) when it cannot listen.
absl::StatusOr<std::unique_ptr<MetricsServer>> ServeMetricsFromConfig(
    const Config& config, std::shared_ptr<Metrics> metrics,
    MetricsServer::ReadyCheck ready);

}  // namespace vouch::server

#endif  // VOUCH_SERVER_METRICS_H_
