// File: verifier/admin_service.h
// The operator-facing Admin service (admin.proto), served by every verifier
// of the pool from the shared database: enrollment, agent status and lists,
// and named versioned policies. Callers are principals from their client
// certificates; each RPC checks the role admin.proto states and the tenant
// rule of common.proto. Requests are untrusted: policy content is parsed
// with the same code the verifier attests with before it is stored.
// Synchronous gRPC API (handlers run on gRPC's pool, so blocking libpq calls
// stall no event loop). Thread-safe.
//
//   AdminService admin(&store, &store, &store, signing_keys, &issuer);
//   builder.RegisterService(&admin);
#ifndef VOUCH_VERIFIER_ADMIN_SERVICE_H_
#define VOUCH_VERIFIER_ADMIN_SERVICE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/principal.h"
#include "core/translog/tree_head.h"
#include "server/metrics.h"
#include "store/pg_policy_sources.h"
#include "store/pg_translog.h"
#include "store/pg_webhook_store.h"
#include "store/verifier_store.h"
#include "verifier/policy_fetcher.h"
#include "verifier/result_issuer.h"
#include "verifier/watch_hub.h"
#include "vouch/v1/admin.grpc.pb.h"

namespace vouch::verifier {

inline constexpr absl::Duration kDefaultWatchPoll = absl::Milliseconds(200);
inline constexpr int kDefaultMaxWatchPerCaller = 8;

class AdminService final
    : public v1::Admin::WithCallbackMethod_Watch<v1::Admin::Service> {
 public:
  // `policy_signing_keys`: PEM public keys or certificates that DSSE-signed
  // policy imports of every tenant may verify with (pool-wide; each tenant
  // also trusts its own keys, kept in `sources`).
  AdminService(store::PolicyStore* policies, store::AgentStore* agents,
               store::EventStore* events,
               std::vector<std::string> policy_signing_keys = {},
               const ResultIssuer* results = nullptr)
      : policies_(policies),
        agents_(agents),
        events_(events),
        results_(results),
        own_fetcher_(policies, nullptr, std::move(policy_signing_keys), {}) {}

  grpc::Status EnrollAgent(grpc::ServerContext* ctx,
                           const v1::EnrollAgentRequest* req,
                           v1::AgentStatus* resp) override;
  grpc::Status UnenrollAgent(grpc::ServerContext* ctx,
                             const v1::UnenrollAgentRequest* req,
                             v1::UnenrollAgentResponse* resp) override;
  grpc::Status GetAgentStatus(grpc::ServerContext* ctx,
                              const v1::GetAgentStatusRequest* req,
                              v1::AgentStatus* resp) override;
  grpc::Status ListAgents(grpc::ServerContext* ctx,
                          const v1::ListAgentsRequest* req,
                          v1::ListAgentsResponse* resp) override;
  // By ids or label selector, one transaction (store::FleetStore).
  grpc::Status UpdateAgents(grpc::ServerContext* ctx,
                            const v1::UpdateAgentsRequest* req,
                            v1::UpdateAgentsResponse* resp) override;
  // Version and commit of this binary; any authenticated principal.
  grpc::Status GetServerInfo(grpc::ServerContext* ctx,
                             const v1::GetServerInfoRequest* req,
                             v1::ServerInfo* resp) override;
  grpc::Status AddPolicy(grpc::ServerContext* ctx,
                         const v1::AddPolicyRequest* req,
                         v1::Policy* resp) override;
  grpc::Status UpdatePolicy(grpc::ServerContext* ctx,
                            const v1::UpdatePolicyRequest* req,
                            v1::Policy* resp) override;
  grpc::Status GetPolicy(grpc::ServerContext* ctx,
                         const v1::GetPolicyRequest* req,
                         v1::Policy* resp) override;
  grpc::Status ListPolicies(grpc::ServerContext* ctx,
                            const v1::ListPoliciesRequest* req,
                            v1::ListPoliciesResponse* resp) override;
  grpc::Status RemovePolicy(grpc::ServerContext* ctx,
                            const v1::RemovePolicyRequest* req,
                            v1::RemovePolicyResponse* resp) override;
  // Keylime runtime policy, reference state, legacy allowlist (+ exclude
  // list) or DSSE-signed runtime policy, converted to the native format.
  // With a url: fetched by this verifier (PolicyFetcher), its source kept.
  grpc::Status ImportPolicy(grpc::ServerContext* ctx,
                            const v1::ImportPolicyRequest* req,
                            v1::Policy* resp) override;
  grpc::Status GetPolicyHistory(grpc::ServerContext* ctx,
                                const v1::GetPolicyHistoryRequest* req,
                                v1::GetPolicyHistoryResponse* resp) override;
  // Roll-outs of runtime policies (docs/ima.md).
  grpc::Status SetPolicyRollout(grpc::ServerContext* ctx,
                                const v1::SetPolicyRolloutRequest* req,
                                v1::PolicyRollout* resp) override;
  grpc::Status ListPolicyRollouts(
      grpc::ServerContext* ctx, const v1::ListPolicyRolloutsRequest* req,
      v1::ListPolicyRolloutsResponse* resp) override;
  grpc::Status DeletePolicyRollout(grpc::ServerContext* ctx,
                                   const v1::DeletePolicyRolloutRequest* req,
                                   v1::DeletePolicyRolloutResponse*) override;
  grpc::Status GetShadowReport(grpc::ServerContext* ctx,
                               const v1::GetShadowReportRequest* req,
                               v1::ShadowReport* resp) override;
  grpc::Status PromotePolicy(grpc::ServerContext* ctx,
                             const v1::PromotePolicyRequest* req,
                             v1::Policy* resp) override;
  // A tenant's trusted policy-signing keys (in `sources`).
  grpc::Status AddPolicySigningKey(grpc::ServerContext* ctx,
                                   const v1::AddPolicySigningKeyRequest* req,
                                   v1::PolicySigningKey* resp) override;
  grpc::Status ListPolicySigningKeys(
      grpc::ServerContext* ctx, const v1::ListPolicySigningKeysRequest* req,
      v1::ListPolicySigningKeysResponse* resp) override;
  grpc::Status DeletePolicySigningKey(
      grpc::ServerContext* ctx, const v1::DeletePolicySigningKeyRequest* req,
      v1::DeletePolicySigningKeyResponse* resp) override;
  // Newest first, at most page_size (default 100, up to 1000).
  grpc::Status GetAttestationHistory(
      grpc::ServerContext* ctx, const v1::GetAttestationHistoryRequest* req,
      v1::GetAttestationHistoryResponse* resp) override;
  // State changes (and, with include_verdicts, attestation records) in
  // commit order, polled every `watch_poll`; a heartbeat first and after
  // every 10 s without events.
  // Served by the WatchHub (callback API, one poller for all streams, no
  // thread per stream); one client certificate holds at most
  // `max_watch_per_caller` at once (more get RESOURCE_EXHAUSTED); a reader
  // `watch_max_queued` events behind is closed with RESOURCE_EXHAUSTED.
  grpc::ServerWriteReactor<v1::WatchEvent>* Watch(
      grpc::CallbackServerContext* ctx, const v1::WatchRequest* req) override;
  // A token from the agent's committed state (as GetAgentStatus reads it).
  grpc::Status GetAttestationResult(grpc::ServerContext* ctx,
                                    const v1::GetAttestationResultRequest* req,
                                    v1::AttestationResult* resp) override;
  grpc::Status GetResultKeys(grpc::ServerContext* ctx,
                             const v1::GetResultKeysRequest* req,
                             v1::ResultKeys* resp) override;
  // Tenant settings (docs/actions.md), from `tenant_settings`.
  grpc::Status GetTenantSettings(grpc::ServerContext* ctx,
                                 const v1::GetTenantSettingsRequest* req,
                                 v1::TenantSettings* resp) override;
  grpc::Status SetTenantSettings(grpc::ServerContext* ctx,
                                 const v1::SetTenantSettingsRequest* req,
                                 v1::TenantSettings* resp) override;
  // nullptr: the tenant-settings calls answer UNIMPLEMENTED.
  store::TenantSettingsStore* tenant_settings = nullptr;
  // Kept records (verifier/kept_records.h, docs/audit.md).
  grpc::Status GetAttestation(grpc::ServerContext* ctx,
                              const v1::GetAttestationRequest* req,
                              v1::AttestationRecord* resp) override;
  grpc::Status ReverifyAttestation(
      grpc::ServerContext* ctx, const v1::ReverifyAttestationRequest* req,
      v1::ReverifyAttestationResponse* resp) override;
  grpc::Status ExportAudit(grpc::ServerContext* ctx,
                           const v1::ExportAuditRequest* req,
                           v1::AuditBundle* resp) override;

  // The transparency log (nullptr, nullptr: no log key configured).
  grpc::Status GetTreeHead(grpc::ServerContext* ctx,
                           const v1::GetTreeHeadRequest* req,
                           v1::TranslogTreeHead* resp) override;
  grpc::Status GetInclusionProof(grpc::ServerContext* ctx,
                                 const v1::GetInclusionProofRequest* req,
                                 v1::TranslogInclusionProof* resp) override;
  grpc::Status GetConsistencyProof(grpc::ServerContext* ctx,
                                   const v1::GetConsistencyProofRequest* req,
                                   v1::TranslogConsistencyProof* resp) override;
  grpc::Status GetLogKey(grpc::ServerContext* ctx,
                         const v1::GetLogKeyRequest* req,
                         v1::TranslogKey* resp) override;
  // Label selectors and UpdateAgents (nullptr: refused with
  // FAILED_PRECONDITION; the in-memory store holds no labels).
  store::FleetStore* fleet = nullptr;
  store::PgTranslog* translog = nullptr;
  // Policy sources and per-tenant signing keys, and the fetcher that uses
  // them (the pool-wide keys given above are the fetcher's). nullptr: no
  // URL imports or tenant keys; DSSE imports check the pool-wide keys.
  store::PgPolicySources* sources = nullptr;
  PolicyFetcher* fetcher = nullptr;
  const core::translog::LogKey* log_key = nullptr;

  // Webhook subscriptions (docs/webhooks.md); nullptr: not served.
  grpc::Status AddWebhook(grpc::ServerContext* ctx,
                          const v1::AddWebhookRequest* req,
                          v1::Webhook* resp) override;
  grpc::Status GetWebhook(grpc::ServerContext* ctx,
                          const v1::GetWebhookRequest* req,
                          v1::Webhook* resp) override;
  grpc::Status ListWebhooks(grpc::ServerContext* ctx,
                            const v1::ListWebhooksRequest* req,
                            v1::ListWebhooksResponse* resp) override;
  grpc::Status DeleteWebhook(grpc::ServerContext* ctx,
                             const v1::DeleteWebhookRequest* req,
                             v1::DeleteWebhookResponse* resp) override;
  store::PgWebhookStore* webhooks = nullptr;

  absl::Duration watch_poll = kDefaultWatchPoll;
  int max_watch_per_caller = kDefaultMaxWatchPerCaller;
  size_t watch_max_queued = WatchHubOptions().max_queued;
  server::Metrics* metrics = nullptr;  // Counts refusals; nullptr: off.

 private:
  // Validates and stores `content` as a new policy or a new version.
  // kNotFound unless `name` is a live policy of `tenant`.
  absl::Status PolicyExists(const std::string& tenant, const std::string& name);
  // The shadow of live policy `policy` (validated), if one is set.
  absl::StatusOr<std::optional<store::RolloutRow>> ShadowOf(
      const std::string& tenant, const std::string& policy);
  grpc::Status StorePolicy(grpc::ServerContext* ctx, const std::string& tenant,
                           const std::string& name, int kind,
                           const std::string& content,
                           const std::string& description, bool update,
                           uint64_t expected_version, v1::Policy* resp,
                           const store::PolicyRow& provenance = {});

  grpc::Status ImportFromUrl(grpc::ServerContext* ctx,
                             const std::string& tenant,
                             const v1::ImportPolicyRequest& req,
                             v1::Policy* resp);
  absl::Status ImportFromUrlSteps(grpc::ServerContext* ctx,
                                  const std::string& tenant,
                                  const v1::ImportPolicyRequest& req,
                                  v1::Policy* resp, bool& download_failed);
  // The caller's tenant for a signing-key call, once `sources` is set.
  absl::StatusOr<std::string> KeyTenant(grpc::ServerContext* ctx,
                                        const std::string& tenant, Role role);
  PolicyFetcher& Fetcher() { return fetcher ? *fetcher : own_fetcher_; }

  // OK when the caller holds a viewer role in some tenant (public answers).
  absl::Status AnyViewer(grpc::ServerContext* ctx) const;
  // The log is configured, and the caller may read it.
  absl::Status TranslogReader(grpc::ServerContext* ctx) const;

  store::PolicyStore* policies_;
  store::AgentStore* agents_;
  store::EventStore* events_;
  // The Watch streams' hub, made at the first Watch (from the fields above).
  WatchHub& Hub();

  absl::Mutex watch_mu_;
  std::unique_ptr<WatchHub> hub_ ABSL_GUARDED_BY(watch_mu_);
  const ResultIssuer* results_;  // nullptr: no results key configured
  PolicyFetcher own_fetcher_;    // Pool-wide keys only; when `fetcher` unset.
};

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_ADMIN_SERVICE_H_
