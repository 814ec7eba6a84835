#include "registrar/registrar_metrics.h"

#include <cstring>
#include <string>

namespace vouch::registrar {
namespace {

constexpr const char* kCodeNames[] = {"ok",
                                      "cancelled",
                                      "unknown",
                                      "invalid_argument",
                                      "deadline_exceeded",
                                      "not_found",
                                      "already_exists",
                                      "permission_denied",
                                      "resource_exhausted",
                                      "failed_precondition",
                                      "aborted",
                                      "out_of_range",
                                      "unimplemented",
                                      "internal",
                                      "unavailable",
                                      "data_loss",
                                      "unauthenticated"};

class ResultInterceptor final : public grpc::experimental::Interceptor {
 public:
  ResultInterceptor(RegistrarMetrics* metrics, bool activate)
      : metrics_(metrics), activate_(activate) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    if (m->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_->Record(activate_, m->GetSendStatus().error_code());
    }
    m->Proceed();
  }

 private:
  RegistrarMetrics* metrics_;
  const bool activate_;
};

class ResultInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit ResultInterceptorFactory(RegistrarMetrics* metrics)
      : metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const char* method = info->method();
    if (method == nullptr) return nullptr;
    if (std::strcmp(method, "/vouch.v1.Registrar/Register") == 0) {
      return new ResultInterceptor(metrics_, /*activate=*/false);
    }
    if (std::strcmp(method, "/vouch.v1.Registrar/Activate") == 0) {
      return new ResultInterceptor(metrics_, /*activate=*/true);
    }
    return nullptr;  // Other methods are not intercepted at all.
  }

 private:
  RegistrarMetrics* metrics_;
};

}  // namespace

RegistrarMetrics::RegistrarMetrics(server::Metrics* metrics)
    : metrics_(metrics) {
  prometheus::Registry& r = metrics->registry();
  auto& reg = prometheus::BuildCounter()
                  .Name("vouch_registrations_total")
                  .Help("Register calls by result (gRPC status code)")
                  .Register(r);
  auto& act = prometheus::BuildCounter()
                  .Name("vouch_activations_total")
                  .Help(
                      "Activate calls (credential activation) by result "
                      "(gRPC status code)")
                  .Register(r);
  for (int i = 0; i < kCodes; ++i) {
    register_[i] = &reg.Add({{"result", kCodeNames[i]}});
    activate_[i] = &act.Add({{"result", kCodeNames[i]}});
  }
}

void RegistrarMetrics::Record(bool activate, grpc::StatusCode code) {
  const int i = static_cast<int>(code);
  if (i < 0 || i >= kCodes) return;
  (activate ? activate_ : register_)[i]->Increment();
  if (!activate && code == grpc::StatusCode::RESOURCE_EXHAUSTED) {
    metrics_->Refused(server::Refusal::kRegisterRate);
  }
}

std::vector<
    std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
RegistrarMetrics::Interceptors() {
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      out;
  out.push_back(std::make_unique<ResultInterceptorFactory>(this));
  return out;
}

}  // namespace vouch::registrar
