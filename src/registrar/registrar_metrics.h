// File: registrar/registrar_metrics.h
// The registrar's Prometheus metrics: vouch_registrations_total and
// vouch_activations_total by result (the gRPC status code's name, a closed
// set), recorded by a gRPC server interceptor that sees only Register and
// Activate calls, so the service code stays free of metrics. A Register
// refused by the per-address rate limit also counts in
// vouch_requests_refused_total{reason="register_rate"}. Thread-safe.
//
//   RegistrarMetrics rm(metrics.get());
//   builder.experimental().SetInterceptorCreators(rm.Interceptors());
#ifndef VOUCH_REGISTRAR_REGISTRAR_METRICS_H_
#define VOUCH_REGISTRAR_REGISTRAR_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <vector>

#include "server/metrics.h"

namespace vouch::registrar {

class RegistrarMetrics {
 public:
  explicit RegistrarMetrics(server::Metrics* metrics);

  // One status code's result for Register (`activate` false) or Activate.
  void Record(bool activate, grpc::StatusCode code);

  // Interceptor creators for ServerBuilder::experimental(); they refer to
  // this object, which must outlive the server.
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
  Interceptors();

 private:
  static constexpr int kCodes = 17;  // grpc::StatusCode OK..UNAUTHENTICATED.
  server::Metrics* metrics_;
  prometheus::Counter* register_[kCodes];
  prometheus::Counter* activate_[kCodes];
};

}  // namespace vouch::registrar

#endif  // VOUCH_REGISTRAR_REGISTRAR_METRICS_H_
