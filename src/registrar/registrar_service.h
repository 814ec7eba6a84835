// File: registrar/registrar_service.h
// The Registrar service of proto/vouch/v1/registrar.proto over gRPC's
// synchronous API: handlers run on gRPC's thread pool, so the blocking
// PostgreSQL calls inside them stall no event loop (the registrar is called
// once per agent boot, not per quote). Every request is untrusted; callers
// are identified by their verified client certificate (common/principal.h).
// With an agent-issuing CA configured it also onboards agents that have no
// certificate yet: a join token picks the tenant, Activate issues the
// certificate (docs/registrar.md, "Onboarding"). Thread-safe.
#ifndef VOUCH_REGISTRAR_REGISTRAR_SERVICE_H_
#define VOUCH_REGISTRAR_REGISTRAR_SERVICE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/tpm/ek_cert.h"
#include "sdk/ca.h"
#include "server/rate_limiter.h"
#include "store/registrar_store.h"
#include "store/verifier_store.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch::registrar {

struct RegistrarOptions {
  bool require_ek_cert = true;
  absl::Duration challenge_ttl = absl::Minutes(2);
  int max_register_per_minute = 60;
  // Refuse a Register whose agent_id is not core::AgentIdFromEk of its EK.
  bool require_agent_id_is_ek_hash = false;
  // Onboarding: the agent-issuing CA (null: this registrar issues no
  // certificates and every agent needs one from `vouchctl ca issue`), and
  // the lifetime of the certificates it issues.
  const sdk::AgentIssuer* agent_issuer = nullptr;
  absl::Duration agent_cert_lifetime = absl::Hours(24 * 30);
  // Enrollment rules enroll through the verifier pool's store (the same
  // database); null: rules are stored but never applied.
  store::AgentStore* enroller = nullptr;
  // Onboarding without a join token: an agent whose EK certificate chains
  // to `cas` joins `tenant` (the first entry that matches, in order). A
  // join token, when sent, decides the tenant instead.
  struct EkCaTenant {
    std::string tenant;
    std::string ca_file;  // for logs
    std::shared_ptr<const core::tpm::EkCertVerifier> cas;
  };
  std::vector<EkCaTenant> ek_ca_tenants;
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
  grpc::Status CreateJoinToken(grpc::ServerContext* ctx,
                               const v1::CreateJoinTokenRequest* req,
                               v1::CreateJoinTokenResponse* resp) override;
  grpc::Status ListJoinTokens(grpc::ServerContext* ctx,
                              const v1::ListJoinTokensRequest* req,
                              v1::ListJoinTokensResponse* resp) override;
  grpc::Status DeleteJoinToken(grpc::ServerContext* ctx,
                               const v1::DeleteJoinTokenRequest* req,
                               v1::DeleteJoinTokenResponse* resp) override;
  grpc::Status SetAgentLabels(grpc::ServerContext* ctx,
                              const v1::SetAgentLabelsRequest* req,
                              v1::RegisteredAgent* resp) override;
  grpc::Status CreateEnrollmentRule(grpc::ServerContext* ctx,
                                    const v1::EnrollmentRule* req,
                                    v1::EnrollmentRule* resp) override;
  grpc::Status ListEnrollmentRules(
      grpc::ServerContext* ctx, const v1::ListEnrollmentRulesRequest* req,
      v1::ListEnrollmentRulesResponse* resp) override;
  grpc::Status DeleteEnrollmentRule(
      grpc::ServerContext* ctx, const v1::DeleteEnrollmentRuleRequest* req,
      v1::DeleteEnrollmentRuleResponse* resp) override;
  // Version and commit of this binary; any authenticated principal.
  grpc::Status GetServerInfo(grpc::ServerContext* ctx,
                             const v1::GetServerInfoRequest* req,
                             v1::ServerInfo* resp) override;

 private:
  // Who registers, and into which tenant: the agent named by the caller's
  // certificate, or (no certificate) the tenant of a usable join token.
  struct Joiner {
    std::string tenant;
    std::string join_token_sha256;  // empty for a certificate holder
    bool ek_ca = false;             // joined by the EK-CA mapping (no token)
  };
  absl::StatusOr<Joiner> RegisterCaller(grpc::ServerContext* ctx,
                                        const v1::RegisterRequest& req,
                                        const std::string& ek_sha256,
                                        bool has_csr, const TPMT_PUBLIC& ek);
  // The tenant of the registration an Activate completes: from the
  // caller's certificate, or (no certificate) the tenant of a pending
  // registration that joined with a token.
  absl::StatusOr<std::string> ActivateTenant(grpc::ServerContext* ctx,
                                             const std::string& agent_id);
  // What follows a registration's first successful activation, in one
  // place: the first enrollment rule matching the agent's labels enrolls it
  // (unless it is enrolled already). Renewals and restarts activate again
  // and are not enrolled again: an operator's unenroll stands. Returns the
  // rule's name, or "" when none applied. Failures are logged; the activation
  // stands.
  std::string AfterActivation(const std::string& tenant,
                              const std::string& agent_id);

  store::PgRegistrarStore* store_;
  std::unique_ptr<core::tpm::EkCertVerifier> ek_cas_;
  RegistrarOptions options_;
  server::RateLimiter register_limiter_;
};

}  // namespace vouch::registrar

#endif  // VOUCH_REGISTRAR_REGISTRAR_SERVICE_H_
