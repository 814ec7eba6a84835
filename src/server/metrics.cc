#include "server/metrics.h"

#include <civetweb.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <prometheus/text_serializer.h>

#include <cstring>
#include <ctime>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/app.h"
#include "common/file.h"
#include "common/logging.h"
#include "common/openssl_handle.h"

namespace vouch::server {
namespace {

constexpr const char* kRefusalNames[kRefusalCount] = {
    "hello_rate", "overloaded", "register_rate", "hello_deadline",
    "stream_cap", "ima_budget", "watch_cap",     "stream_rate"};

void Reply(mg_connection* conn, int status, absl::string_view reason,
           absl::string_view content_type, absl::string_view body) {
  const std::string head = absl::StrCat(
      "HTTP/1.1 ", status, " ", reason, "\r\nContent-Type: ", content_type,
      "\r\nContent-Length: ", body.size(),
      "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n");
  mg_write(conn, head.data(), head.size());
  mg_write(conn, body.data(), body.size());
}

bool IsGet(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  return info != nullptr && info->request_method != nullptr &&
         (std::strcmp(info->request_method, "GET") == 0 ||
          std::strcmp(info->request_method, "HEAD") == 0);
}

// "[::]:9102" and "127.0.0.1:0" as civetweb's listening_ports takes them
// ("+" before a port binds IPv4 and IPv6; an IPv6 host stays bracketed).
absl::StatusOr<std::string> CivetPorts(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics.listen must be host:port, got '", listen, "'"));
  }
  const std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  for (char c : port) {
    if (c < '0' || c > '9') {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics.listen: bad port in '", listen, "'"));
    }
  }
  if (host.empty() || host == "[::]") return absl::StrCat("+", port);
  return listen;
}

}  // namespace

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
          0.25,  0.5,    1,     2.5,  5,     10};
}

Metrics::Metrics(absl::string_view component)
    : registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::BuildGauge()
      .Name("vouch_build_info")
      .Help("Always 1; the labels say which build runs")
      .Register(*registry_)
      .Add({{"component", std::string(component)},
            {"version", BuildVersion()},
            {"commit", BuildCommit()}})
      .Set(1);
  cert_expiry_ =
      &prometheus::BuildGauge()
           .Name("vouch_tls_certificate_expiry_timestamp_seconds")
           .Help(
               "When this server's TLS certificate expires (Unix time); 0 "
               "when unknown")
           .Register(*registry_)
           .Add({});
  auto& refused = prometheus::BuildCounter()
                      .Name("vouch_requests_refused_total")
                      .Help(
                          "Requests refused by rate limits and caps, by "
                          "reason")
                      .Register(*registry_);
  for (int i = 0; i < kRefusalCount; ++i) {
    refused_[i] = &refused.Add({{"reason", kRefusalNames[i]}});
  }
}

absl::Status Metrics::SetCertificateExpiry(const std::string& cert_file) {
  absl::StatusOr<std::string> pem = ReadFileUpTo(cert_file, 1 << 20);
  if (!pem.ok()) return pem.status();
  BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(cert_file, ": no PEM certificate"));
  }
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(cert_file, ": unreadable notAfter"));
  }
  cert_expiry_->Set(static_cast<double>(timegm(&tm)));
  return absl::OkStatus();
}

void Metrics::OnScrape(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  hooks_.push_back(std::move(fn));
}

std::string Metrics::Scrape() {
  absl::MutexLock lock(&mu_);
  for (const auto& hook : hooks_) hook();
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

MetricsServer::MetricsServer(std::shared_ptr<Metrics> metrics, ReadyCheck ready)
    : metrics_(std::move(metrics)), ready_(std::move(ready)) {}

MetricsServer::~MetricsServer() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& listen, std::shared_ptr<Metrics> metrics,
    ReadyCheck ready) {
  absl::StatusOr<std::string> ports = CivetPorts(listen);
  if (!ports.ok()) return ports.status();
  static const bool initialised = [] {
    mg_init_library(0);
    return true;
  }();
  (void)initialised;
  std::unique_ptr<MetricsServer> server(
      new MetricsServer(std::move(metrics), std::move(ready)));
  const char* options[] = {"listening_ports",
                           ports->c_str(),
                           "num_threads",
                           "2",
                           "request_timeout_ms",
                           "10000",
                           "enable_keep_alive",
                           "no",
                           nullptr};
  mg_callbacks callbacks{};
  server->ctx_ = mg_start(&callbacks, nullptr, options);
  if (server->ctx_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", listen));
  }
  mg_server_port bound[4];
  const int n = mg_get_server_ports(server->ctx_, 4, bound);
  if (n < 1) return absl::InternalError("metrics: no bound port");
  server->port_ = bound[0].port;
  mg_set_request_handler(server->ctx_, "/metrics$", &HandleMetrics,
                         server.get());
  mg_set_request_handler(server->ctx_, "/healthz$", &HandleHealthz,
                         server.get());
  mg_set_request_handler(server->ctx_, "/readyz$", &HandleReadyz, server.get());
  Log(LogLevel::kInfo, "metrics serving",
      {{"listen", listen}, {"port", server->port_}});
  return server;
}

int MetricsServer::HandleMetrics(mg_connection* conn, void* self) {
  if (!IsGet(conn)) {
    Reply(conn, 405, "Method Not Allowed", "text/plain", "GET only\n");
    return 405;
  }
  const std::string body =
      static_cast<MetricsServer*>(self)->metrics_->Scrape();
  Reply(conn, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body);
  return 200;
}

int MetricsServer::HandleHealthz(mg_connection* conn, void*) {
  Reply(conn, 200, "OK", "text/plain", "ok\n");
  return 200;
}

int MetricsServer::HandleReadyz(mg_connection* conn, void* self) {
  auto* server = static_cast<MetricsServer*>(self);
  absl::Status ready;
  switch (server->phase_.load()) {
    case kStarting:
      ready = absl::UnavailableError("starting");
      break;
    case kDraining:
      ready = absl::UnavailableError("draining");
      break;
    default:
      if (server->ready_) ready = server->ready_();
  }
  if (ready.ok()) {
    Reply(conn, 200, "OK", "text/plain", "ready\n");
    return 200;
  }
  Reply(conn, 503, "Service Unavailable", "text/plain",
        absl::StrCat("not ready: ", ready.message(), "\n"));
  return 503;
}

std::shared_ptr<Metrics> MetricsFromConfig(const Config& config,
                                           absl::string_view component) {
  if (config.GetString("metrics", "listen").empty()) return nullptr;
  auto metrics = std::make_shared<Metrics>(component);
  const std::string& cert = config.GetString("tls", "cert_file");
  if (absl::Status s = metrics->SetCertificateExpiry(cert); !s.ok()) {
    Log(LogLevel::kWarning, "metrics: certificate expiry unknown",
        {{"error", s.message()}});
  }
  return metrics;
}

absl::StatusOr<std::unique_ptr<MetricsServer>> ServeMetricsFromConfig(
    const Config& config, std::shared_ptr<Metrics> metrics,
    MetricsServer::ReadyCheck ready) {
  if (metrics == nullptr) return std::unique_ptr<MetricsServer>();
  absl::StatusOr<std::unique_ptr<MetricsServer>> http =
      MetricsServer::Start(config.GetString("metrics", "listen"),
                           std::move(metrics), std::move(ready));
  if (!http.ok()) {
    Log(LogLevel::kError, "metrics endpoint failed",
        {{"error", http.status().message()}});
  }
  return http;
}

}  // namespace vouch::server
