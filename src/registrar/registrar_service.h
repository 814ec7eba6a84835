// File: registrar/registrar_service.h
// The Registrar service of proto/vouch/v1/registrar.proto over gRPC's
// synchronous API: handlers run on gRPC's thread pool, so the blocking
// PostgreSQL calls inside them stall no event loop (the registrar is called
// once per agent boot, not per quote). Every request is untrusted; callers
// are identified by their verified client certificate (common/principal.h).
// Thread-safe.
#ifndef VOUCH_REGISTRAR_REGISTRAR_SERVICE_H_
#define VOUCH_REGISTRAR_REGISTRAR_SERVICE_H_

#include <memory>

#include "absl/time/time.h"
#include "core/tpm/ek_cert.h"
#include "server/rate_limiter.h"
#include "store/registrar_store.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch::registrar {

struct RegistrarOptions {
  bool require_ek_cert = true;
  absl::Duration challenge_ttl = absl::Minutes(2);
  int max_register_per_minute = 60;
  // Refuse a Register whose agent_id is not core::AgentIdFromEk of its EK.
  bool require_agent_id_is_ek_hash = false;
};

class RegistrarService final : public v1::Registrar::Service {
 public:
  // `ek_cas` may be null when EK certificates are not required and no CA
  // directory is configured.
  RegistrarService(store::PgRegistrarStore* store,
                   std::unique_ptr<core::tpm::EkCertVerifier> ek_cas,
                   const RegistrarOptions& options);

  grpc::Status Register(grpc::ServerContext* ctx,
                        const v1::RegisterRequest* req,
                        v1::RegisterResponse* resp) override;
  grpc::Status Activate(grpc::ServerContext* ctx,
                        const v1::ActivateRequest* req,
                        v1::ActivateResponse* resp) override;
  grpc::Status GetRegisteredAgent(grpc::ServerContext* ctx,
                                  const v1::GetRegisteredAgentRequest* req,
                                  v1::RegisteredAgent* resp) override;
  grpc::Status ListRegisteredAgents(
      grpc::ServerContext* ctx, const v1::ListRegisteredAgentsRequest* req,
      v1::ListRegisteredAgentsResponse* resp) override;
  grpc::Status DeleteRegisteredAgent(
      grpc::ServerContext* ctx, const v1::DeleteRegisteredAgentRequest* req,
      v1::DeleteRegisteredAgentResponse* resp) override;

 private:
  store::PgRegistrarStore* store_;
  std::unique_ptr<core::tpm::EkCertVerifier> ek_cas_;
  RegistrarOptions options_;
  server::RateLimiter register_limiter_;
};

}  // namespace vouch::registrar

#endif  // VOUCH_REGISTRAR_REGISTRAR_SERVICE_H_
