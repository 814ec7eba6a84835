#include "verifier/admin_service.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <optional>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/app.h"
#include "common/bytes.h"
#include "common/logging.h"
#include "common/principal.h"
#include "common/status_macros.h"
#include "core/agent_id.h"
#include "core/agent_state.h"
#include "core/attest/limits.h"
#include "core/attest/wire.h"
#include "core/audit/history_query.h"
#include "core/boot/boot_policy.h"
#include "core/boot/pcr_policy.h"
#include "core/ear/ear.h"
#include "core/ima/dsse.h"
#include "core/ima/policy_source.h"
#include "core/ima/runtime_policy.h"
#include "core/label_selector.h"
#include "core/webhook/webhook.h"
#include "server/auth.h"
#include "server/proto_time.h"
#include "store/pg_connection.h"
#include "verifier/kept_records.h"
#include "vouch/v1/attestation.pb.h"

namespace vouch::verifier {
namespace {

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

absl::StatusOr<std::string> Tenant(grpc::ServerContextBase* ctx,
                                   const std::string& requested, Role role) {
  absl::StatusOr<Principal> caller =
      server::CallerPrincipal(*ctx->auth_context());
  if (!caller.ok()) return caller.status();
  return caller->ResolveTenant(requested, role);
}

// The caller's identity for per-caller caps: all grants of its certificate.
std::string CallerKey(grpc::ServerContextBase* ctx) {
  absl::StatusOr<Principal> caller =
      server::CallerPrincipal(*ctx->auth_context());
  if (!caller.ok()) return "";
  std::string key;
  for (const Grant& g : caller->grants) absl::StrAppend(&key, GrantUri(g), " ");
  return key;
}

std::string CallerName(grpc::ServerContext* ctx) {
  absl::StatusOr<Principal> caller =
      server::CallerPrincipal(*ctx->auth_context());
  if (!caller.ok() || caller->grants.empty()) return "";
  return caller->grants[0].name;
}

grpc::Status Reply(const absl::Status& status) {
  if (absl::IsUnavailable(status) || absl::IsInternal(status)) {
    Log(LogLevel::kWarning, "admin request failed",
        {{"error", status.message()}});
    return server::ToGrpcStatus(
        absl::Status(status.code(), absl::IsUnavailable(status)
                                        ? "verifier database unavailable; retry"
                                        : "internal error"));
  }
  return server::ToGrpcStatus(status);
}

void ToStatus(const store::AgentRow& a, v1::AgentStatus* out) {
  out->set_tenant(a.enrollment.tenant);
  out->set_agent_id(a.enrollment.agent_id);
  out->set_state(a.state);
  server::SetTimestamp(a.state_since, out->mutable_state_since());
  v1::Enrollment* e = out->mutable_enrollment();
  if (!a.enrollment.runtime_policy.empty()) {
    e->mutable_runtime_policy()->set_name(a.enrollment.runtime_policy);
    e->mutable_runtime_policy()->set_version(a.runtime_policy_version);
  }
  if (!a.enrollment.boot_policy.empty()) {
    e->mutable_boot_policy()->set_name(a.enrollment.boot_policy);
  }
  if (!a.enrollment.pcr_policy.empty()) {
    e->mutable_pcr_policy()->set_name(a.enrollment.pcr_policy);
  }
  const int64_t ms = absl::ToInt64Milliseconds(a.enrollment.interval);
  e->mutable_interval()->set_seconds(ms / 1000);
  e->mutable_interval()->set_nanos(static_cast<int32_t>(ms % 1000) * 1000000);
  e->set_hash_alg(static_cast<v1::HashAlgorithm>(a.enrollment.hash_alg));
  server::SetTimestamp(a.enrolled_at, e->mutable_enrolled_at());
  e->set_enrolled_by(a.enrollment.enrolled_by);
  if (a.last_verdict_at) {
    server::SetTimestamp(*a.last_verdict_at, out->mutable_last_verdict_at());
  }
  out->set_last_attestation_id(a.last_attestation_id);
  *out->mutable_failures() =
      core::attest::DecodeFailures(a.failures).failures();
  out->set_connected(a.connected);
  out->set_verifier(a.owner);
  out->set_reset_count(a.reset_count);
  if (!a.enrollment.runtime_policy.empty()) {
    out->set_ima_next_entry(a.ima_next_entry);
  }
  out->set_agent_version(a.agent_version);
}

// Parses policy content of `kind` with the code that will attest with it;
// kInvalidArgument with the first schema error. The release number of a
// runtime policy (0 for the other kinds).
absl::StatusOr<int64_t> ValidatePolicy(int kind, const std::string& content) {
  if (content.empty() || content.size() > kMaxPolicyBytes) {
    return absl::InvalidArgumentError("content: 1 byte .. 16 MiB");
  }
  switch (kind) {
    case v1::POLICY_KIND_RUNTIME: {
      VOUCH_ASSIGN_OR_RETURN(auto policy,
                             core::ima::RuntimePolicy::FromJson(content));
      return policy->release();
    }
    case v1::POLICY_KIND_BOOT:
      VOUCH_RETURN_IF_ERROR(core::boot::BootPolicy::FromJson(content).status());
      return 0;
    case v1::POLICY_KIND_PCR:
      VOUCH_RETURN_IF_ERROR(core::boot::PcrPolicy::FromJson(content).status());
      return 0;
    default:
      return absl::InvalidArgumentError("kind: RUNTIME, BOOT or PCR");
  }
}

void ToPolicy(const store::PolicyRow& p, bool with_content, v1::Policy* out) {
  out->set_tenant(p.tenant);
  out->set_name(p.name);
  out->set_version(p.version);
  out->set_kind(static_cast<v1::PolicyKind>(p.kind));
  out->set_format(p.kind == v1::POLICY_KIND_RUNTIME
                      ? v1::POLICY_FORMAT_KEYLIME_RUNTIME_POLICY_JSON
                  : p.kind == v1::POLICY_KIND_PCR
                      ? v1::POLICY_FORMAT_KEYLIME_TPM_POLICY_JSON
                      : v1::POLICY_FORMAT_KEYLIME_MB_REFSTATE_JSON);
  if (with_content) out->set_content(p.content);
  out->set_sha256(p.sha256);
  out->set_description(p.description);
  server::SetTimestamp(p.created_at, out->mutable_created_at());
  out->set_created_by(p.created_by);
  out->set_removed(p.removed);
  out->set_release(p.release);
  out->set_origin(p.origin);
  out->set_source_sha256(p.source_sha256);
  out->set_signer_key_id(p.signer_key_id);
}

void ToSource(const store::PolicySourceRow& s, v1::PolicySource* out) {
  out->set_url(s.url);
  server::SetDuration(s.refresh, out->mutable_refresh());
  out->set_require_signature(s.require_signature);
  if (s.last_fetch_at) {
    server::SetTimestamp(*s.last_fetch_at, out->mutable_last_fetch_at());
  }
  out->set_last_result(s.last_result);
  out->set_last_error(s.last_error);
  if (s.next_fetch_at) {
    server::SetTimestamp(*s.next_fetch_at, out->mutable_next_fetch_at());
  }
}

void ToKey(const store::PolicySigningKeyRow& k, v1::PolicySigningKey* out) {
  out->set_tenant(k.tenant);
  out->set_name(k.name);
  out->set_pem(k.pem);
  out->set_key_id(k.key_id);
  server::SetTimestamp(k.created_at, out->mutable_created_at());
  out->set_created_by(k.created_by);
}

absl::Status ValidatePolicyName(const std::string& name) {
  if (name.empty() || name.size() > 128 ||
      !std::all_of(name.begin(), name.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
               c == '_' || c == '-';
      })) {
    return absl::InvalidArgumentError("name: 1..128 of [A-Za-z0-9._-]");
  }
  return absl::OkStatus();
}

// Page tokens: hex of "<tenant>\n<filter>\n<last key>", checked on use.
using core::ParseSelector;

// UpdateAgents names at most this many agents (a selector has no bound).
constexpr int kMaxUpdateIds = 1000;

// A request's agent_ids: at most `max`, each valid; sorted, each once.
absl::StatusOr<std::vector<std::string>> AgentIdsOf(
    const google::protobuf::RepeatedPtrField<std::string>& ids, int max) {
  if (ids.size() > max) {
    return absl::InvalidArgumentError(absl::StrCat("agent_ids: at most ", max));
  }
  for (const std::string& id : ids) {
    if (absl::Status s = core::ValidateAgentId(id); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("agent_ids: ", s.message()));
    }
  }
  return store::SortedUnique(std::vector<std::string>(ids.begin(), ids.end()));
}

absl::Status NoFleet() {
  return absl::FailedPreconditionError(
      "label selectors need the PostgreSQL store (labels are the "
      "registrar's)");
}

std::string PageToken(const std::string& tenant, const std::string& filter,
                      const std::string& last) {
  return absl::BytesToHexString(absl::StrCat(tenant, "\n", filter, "\n", last));
}

absl::StatusOr<std::string> PageAfter(const std::string& token,
                                      const std::string& tenant,
                                      const std::string& filter) {
  if (token.empty()) return std::string();
  std::vector<std::string> parts =
      absl::StrSplit(absl::HexStringToBytes(token), absl::MaxSplits('\n', 2));
  if (token.size() > 1024 || parts.size() != 3 || parts[0] != tenant ||
      parts[1] != filter) {
    return absl::InvalidArgumentError(
        "page_token: not from this query; start again without it");
  }
  return parts[2];
}

absl::StatusOr<int> PageSize(int requested) {
  if (requested < 0) {
    return absl::InvalidArgumentError("page_size: must not be negative");
  }
  if (requested == 0) return kDefaultPageSize;
  return std::min(requested, kMaxPageSize);
}

// Resume tokens (EventToken in watch_hub.h) read back; "w1:" tokens of
// earlier versions still parse, without the incarnation check.
absl::StatusOr<store::EventPosition> ParseEventToken(const std::string& token) {
  std::vector<std::string> parts = absl::StrSplit(token, ':');
  store::EventPosition p;
  const bool v1 = parts.size() == 3 && parts[0] == "w1";
  const bool v2 = parts.size() == 4 && parts[0] == "w2" && !parts[1].empty() &&
                  parts[1].size() <= 128;
  if (v2) p.incarnation = parts[1];
  if (token.size() > 1024 || (!v1 && !v2) ||
      !absl::SimpleAtoi(parts[parts.size() - 2], &p.xid) ||
      !absl::SimpleAtoi(parts[parts.size() - 1], &p.seq)) {
    return absl::OutOfRangeError(
        "resume_token is not valid: re-read state with ListAgents, then "
        "Watch without a token");
  }
  return p;
}

// A Watch request's filters, validated (bounded lists, known states).
absl::StatusOr<WatchFilter> ParseWatchFilter(const v1::WatchRequest& req,
                                             const std::string& tenant) {
  if (req.agent_ids_size() > 100 || req.states_size() > 8) {
    return absl::InvalidArgumentError("at most 100 agent_ids and 8 states");
  }
  WatchFilter f;
  f.tenant = tenant;
  f.verdicts = req.include_verdicts();
  f.shadows = req.include_shadow();
  for (const std::string& id : req.agent_ids()) {
    VOUCH_RETURN_IF_ERROR(core::ValidateAgentId(id));
    f.agent_ids.push_back(id);
  }
  for (int st : req.states()) {
    if (core::AgentStateName(st) == "unspecified") {
      return absl::InvalidArgumentError("states: unknown state");
    }
    f.states.push_back(static_cast<core::AgentState>(st));
  }
  return f;
}

}  // namespace

grpc::ServerWriteReactor<v1::WatchEvent>* AdminService::Watch(
    grpc::CallbackServerContext* ctx, const v1::WatchRequest* req) {
  auto refuse = [](const absl::Status& s) {
    return WatchHub::Refuse(Reply(s));
  };
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return refuse(tenant.status());
  absl::StatusOr<WatchFilter> filter = ParseWatchFilter(*req, *tenant);
  if (!filter.ok()) return refuse(filter.status());
  std::optional<store::EventPosition> from;
  if (!req->resume_token().empty()) {
    absl::StatusOr<store::EventPosition> p =
        ParseEventToken(req->resume_token());
    if (!p.ok()) return refuse(p.status());
    from = *p;
  }
  return Hub().Open(CallerKey(ctx), *std::move(filter), std::move(from));
}

WatchHub& AdminService::Hub() {
  absl::MutexLock lock(&watch_mu_);
  if (hub_ == nullptr) {
    WatchHubOptions o;
    o.poll = watch_poll;
    o.max_per_caller = max_watch_per_caller;
    o.max_queued = watch_max_queued;
    o.metrics = metrics;
    hub_ = std::make_unique<WatchHub>(events_, o);
  }
  return *hub_;
}

grpc::Status AdminService::EnrollAgent(grpc::ServerContext* ctx,
                                       const v1::EnrollAgentRequest* req,
                                       v1::AgentStatus* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kOperator);
  if (!tenant.ok()) return Reply(tenant.status());
  if (absl::Status s = core::ValidateAgentId(req->agent_id()); !s.ok()) {
    return Reply(s);
  }
  if (req->runtime_policy().name().empty() &&
      req->boot_policy().name().empty() && req->pcr_policy().name().empty()) {
    return Reply(absl::InvalidArgumentError(
        "give a runtime, boot or PCR policy: an enrollment that checks "
        "nothing beyond the quote is refused"));
  }
  if (req->runtime_policy().version() != 0 ||
      req->boot_policy().version() != 0 || req->pcr_policy().version() != 0) {
    return Reply(absl::InvalidArgumentError(
        "policy version: only 0 (follow the newest) is supported"));
  }
  absl::Duration interval = absl::Seconds(req->interval().seconds()) +
                            absl::Nanoseconds(req->interval().nanos());
  if (interval == absl::ZeroDuration()) {
    interval = absl::Seconds(core::attest::kDefaultIntervalSeconds);
  }
  if (interval < absl::Seconds(core::attest::kMinIntervalSeconds) ||
      interval > absl::Seconds(core::attest::kMaxIntervalSeconds)) {
    return Reply(absl::InvalidArgumentError("interval: 1s..24h"));
  }
  if (req->hash_alg() != v1::HASH_ALGORITHM_UNSPECIFIED &&
      req->hash_alg() != v1::HASH_ALGORITHM_SHA256) {
    return Reply(absl::InvalidArgumentError(
        "hash_alg: only SHA256 is supported by this verifier"));
  }
  store::Enrollment e;
  e.tenant = *tenant;
  e.agent_id = req->agent_id();
  e.runtime_policy = req->runtime_policy().name();
  e.boot_policy = req->boot_policy().name();
  e.pcr_policy = req->pcr_policy().name();
  e.interval = interval;
  e.hash_alg = v1::HASH_ALGORITHM_SHA256;
  e.enrolled_by = CallerName(ctx);
  absl::StatusOr<store::AgentRow> row = agents_->Enroll(e);
  if (!row.ok()) return Reply(row.status());
  Log(LogLevel::kInfo, "agent enrolled",
      {{"agent_id", e.agent_id},
       {"tenant", e.tenant},
       {"runtime_policy", e.runtime_policy},
       {"boot_policy", e.boot_policy},
       {"pcr_policy", e.pcr_policy},
       {"by", e.enrolled_by}});
  ToStatus(*row, resp);
  return grpc::Status::OK;
}

grpc::Status AdminService::UnenrollAgent(grpc::ServerContext* ctx,
                                         const v1::UnenrollAgentRequest* req,
                                         v1::UnenrollAgentResponse*) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kOperator);
  if (!tenant.ok()) return Reply(tenant.status());
  if (absl::Status s = agents_->Unenroll(*tenant, req->agent_id()); !s.ok()) {
    return Reply(s);
  }
  Log(LogLevel::kInfo, "agent unenrolled",
      {{"agent_id", req->agent_id()}, {"by", CallerName(ctx)}});
  return grpc::Status::OK;
}

grpc::Status AdminService::GetAgentStatus(grpc::ServerContext* ctx,
                                          const v1::GetAgentStatusRequest* req,
                                          v1::AgentStatus* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return Reply(tenant.status());
  absl::StatusOr<store::AgentRow> row =
      agents_->GetAgent(*tenant, req->agent_id());
  if (!row.ok()) return Reply(row.status());
  ToStatus(*row, resp);
  return grpc::Status::OK;
}

grpc::Status AdminService::GetAttestationResult(
    grpc::ServerContext* ctx, const v1::GetAttestationResultRequest* req,
    v1::AttestationResult* resp) {
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return Reply(tenant.status());
  if (!req->nonce().empty()) {
    if (absl::Status s = core::ear::ValidateNonce(req->nonce()); !s.ok()) {
      return Reply(s);
    }
  }
  if (results_ == nullptr) {
    return Reply(absl::FailedPreconditionError(
        "this verifier has no results key (verifier.results_key)"));
  }
  absl::StatusOr<store::AgentRow> row =
      agents_->GetAgent(*tenant, req->agent_id());
  if (!row.ok()) return Reply(row.status());
  ResultIssuer::Subject subject;
  subject.tenant = row->enrollment.tenant;
  subject.agent_id = row->enrollment.agent_id;
  subject.state = row->state;
  subject.runtime_policy = !row->enrollment.runtime_policy.empty();
  subject.boot_policy = !row->enrollment.boot_policy.empty();
  subject.verdict_at = row->last_verdict_at;
  subject.attestation_id = row->last_attestation_id;
  const v1::Verdict listed = core::attest::DecodeFailures(row->failures);
  for (const v1::Failure& f : listed.failures()) {
    subject.failure_codes.push_back(f.code());
  }
  absl::StatusOr<ResultIssuer::Issued> issued =
      results_->Issue(subject, req->nonce(), absl::Now());
  if (!issued.ok()) return Reply(issued.status());
  resp->set_token(std::move(issued->token));
  resp->set_claims_json(std::move(issued->claims_json));
  server::SetTimestamp(issued->expires_at, resp->mutable_expires_at());
  return grpc::Status::OK;
}

grpc::Status AdminService::GetResultKeys(grpc::ServerContext* ctx,
                                         const v1::GetResultKeysRequest*,
                                         v1::ResultKeys* resp) {
  // Public keys, no tenant's data: any viewer of any tenant may read them.
  if (absl::Status s = AnyViewer(ctx); !s.ok()) return Reply(s);
  if (results_ == nullptr) {
    return Reply(absl::FailedPreconditionError(
        "this verifier has no results key (verifier.results_key)"));
  }
  resp->set_jwks(results_->jwks());
  return grpc::Status::OK;
}

grpc::Status AdminService::GetTenantSettings(
    grpc::ServerContext* ctx, const v1::GetTenantSettingsRequest* req,
    v1::TenantSettings* resp) {
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return Reply(tenant.status());
  if (tenant_settings == nullptr) {
    return Reply(absl::UnimplementedError("no tenant settings here"));
  }
  absl::StatusOr<store::TenantSettings> s =
      tenant_settings->GetTenantSettings(*tenant);
  if (!s.ok()) return Reply(s.status());
  resp->set_tenant(s->tenant);
  resp->set_peer_notices(s->peer_notices);
  return grpc::Status::OK;
}

grpc::Status AdminService::SetTenantSettings(
    grpc::ServerContext* ctx, const v1::SetTenantSettingsRequest* req,
    v1::TenantSettings* resp) {
  absl::StatusOr<std::string> tenant = Tenant(ctx, req->tenant(), Role::kAdmin);
  if (!tenant.ok()) return Reply(tenant.status());
  if (tenant_settings == nullptr) {
    return Reply(absl::UnimplementedError("no tenant settings here"));
  }
  absl::StatusOr<store::TenantSettings> s =
      tenant_settings->GetTenantSettings(*tenant);
  if (!s.ok()) return Reply(s.status());
  if (req->has_peer_notices()) s->peer_notices = req->peer_notices();
  if (absl::Status st = tenant_settings->SetTenantSettings(*s); !st.ok()) {
    return Reply(st);
  }
  resp->set_tenant(s->tenant);
  resp->set_peer_notices(s->peer_notices);
  return grpc::Status::OK;
}

absl::Status AdminService::AnyViewer(grpc::ServerContext* ctx) const {
  absl::StatusOr<Principal> caller =
      server::CallerPrincipal(*ctx->auth_context());
  if (!caller.ok()) return caller.status();
  if (std::none_of(caller->grants.begin(), caller->grants.end(),
                   [&](const Grant& g) {
                     return caller->ResolveTenant(g.tenant, Role::kViewer).ok();
                   })) {
    return absl::PermissionDeniedError("caller holds no viewer role");
  }
  return absl::OkStatus();
}

absl::Status AdminService::TranslogReader(grpc::ServerContext* ctx) const {
  VOUCH_RETURN_IF_ERROR(AnyViewer(ctx));
  if (translog == nullptr || log_key == nullptr) {
    return absl::FailedPreconditionError(
        "this verifier has no transparency log key (translog.key)");
  }
  return absl::OkStatus();
}

namespace {
// The head a request names: tree_size 0 is the newest.
absl::StatusOr<store::SignedHead> HeadFor(store::PgTranslog& log,
                                          uint64_t tree_size) {
  if (tree_size == 0) {
    absl::StatusOr<store::SignedHead> head = log.LatestHead();
    if (head.status().code() == absl::StatusCode::kNotFound) {
      return absl::FailedPreconditionError("the log has no signed head yet");
    }
    return head;
  }
  return log.HeadAt(tree_size);
}

std::string HashString(const core::translog::Hash& h) {
  return std::string(core::translog::HashBytes(h));
}
}  // namespace

grpc::Status AdminService::GetTreeHead(grpc::ServerContext* ctx,
                                       const v1::GetTreeHeadRequest* req,
                                       v1::TranslogTreeHead* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  if (absl::Status s = TranslogReader(ctx); !s.ok()) return Reply(s);
  absl::StatusOr<store::SignedHead> head = HeadFor(*translog, req->tree_size());
  if (!head.ok()) return Reply(head.status());
  resp->set_tree_size(head->tree_size);
  resp->set_root_hash(HashString(head->root));
  resp->set_signed_tree_head(head->signed_head);
  return grpc::Status::OK;
}

grpc::Status AdminService::GetInclusionProof(
    grpc::ServerContext* ctx, const v1::GetInclusionProofRequest* req,
    v1::TranslogInclusionProof* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  if (absl::Status s = TranslogReader(ctx); !s.ok()) return Reply(s);
  absl::StatusOr<store::SignedHead> head = HeadFor(*translog, req->tree_size());
  if (!head.ok()) return Reply(head.status());
  absl::StatusOr<store::InclusionAnswer> answer;
  if (req->leaf_case() == v1::GetInclusionProofRequest::kLeafHash) {
    absl::StatusOr<core::translog::Hash> leaf =
        core::translog::HashFromBytes(req->leaf_hash());
    if (!leaf.ok()) return Reply(leaf.status());
    answer = translog->InclusionByHash(*leaf, head->tree_size);
  } else {
    answer = translog->InclusionByIndex(req->leaf_index(), head->tree_size);
  }
  if (!answer.ok()) return Reply(answer.status());
  resp->set_leaf_index(answer->leaf_index);
  resp->set_tree_size(answer->tree_size);
  resp->set_leaf_hash(HashString(answer->leaf_hash));
  for (const core::translog::Hash& h : answer->proof) {
    resp->add_hashes(HashString(h));
  }
  resp->set_signed_tree_head(head->signed_head);
  return grpc::Status::OK;
}

grpc::Status AdminService::GetConsistencyProof(
    grpc::ServerContext* ctx, const v1::GetConsistencyProofRequest* req,
    v1::TranslogConsistencyProof* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  if (absl::Status s = TranslogReader(ctx); !s.ok()) return Reply(s);
  absl::StatusOr<store::SignedHead> to = HeadFor(*translog, req->to_size());
  if (!to.ok()) return Reply(to.status());
  if (req->from_size() > to->tree_size) {
    return Reply(absl::InvalidArgumentError("from_size is beyond to_size"));
  }
  absl::StatusOr<std::vector<core::translog::Hash>> proof =
      translog->Consistency(req->from_size(), to->tree_size);
  if (!proof.ok()) return Reply(proof.status());
  resp->set_from_size(req->from_size());
  resp->set_to_size(to->tree_size);
  for (const core::translog::Hash& h : *proof) resp->add_hashes(HashString(h));
  return grpc::Status::OK;
}

grpc::Status AdminService::GetLogKey(grpc::ServerContext* ctx,
                                     const v1::GetLogKeyRequest*,
                                     v1::TranslogKey* resp) {
  if (absl::Status s = TranslogReader(ctx); !s.ok()) return Reply(s);
  resp->set_public_key_pem(log_key->PublicPem());
  resp->set_log_id(HashString(log_key->log_id()));
  return grpc::Status::OK;
}

grpc::Status AdminService::ListAgents(grpc::ServerContext* ctx,
                                      const v1::ListAgentsRequest* req,
                                      v1::ListAgentsResponse* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return Reply(tenant.status());
  absl::StatusOr<int> size = PageSize(req->page_size());
  if (!size.ok()) return Reply(size.status());
  if (!req->policy().empty()) {
    if (absl::Status s = ValidatePolicyName(req->policy()); !s.ok()) {
      return Reply(s);
    }
  }
  std::vector<core::AgentState> states;
  std::vector<std::string> names;
  for (int s : req->states()) {
    const absl::string_view name = core::AgentStateName(s);
    if (name == "unspecified" || name == "unenrolled") {
      return Reply(absl::InvalidArgumentError("states: unknown state"));
    }
    states.push_back(static_cast<core::AgentState>(s));
    names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  absl::StatusOr<core::Selector> selector =
      ParseSelector(req->label_selector(), "label_selector");
  if (!selector.ok()) return Reply(selector.status());
  if (!selector->empty() && fleet == nullptr) return Reply(NoFleet());
  // The page token carries the filters, so a token is good only for the
  // same query.
  const std::string filter =
      absl::StrCat(absl::StrJoin(names, ","), "/", req->policy(),
                   selector->empty() ? "" : "/", selector->ToString());
  absl::StatusOr<std::string> after =
      PageAfter(req->page_token(), *tenant, filter);
  if (!after.ok()) return Reply(after.status());
  absl::StatusOr<std::vector<store::AgentRow>> rows =
      selector->empty()
          ? agents_->ListAgents(*tenant, *after, states, *size + 1,
                                req->policy())
          : fleet->ListAgentsMatching(*tenant, *after, states, *size + 1,
                                      req->policy(), *selector);
  if (!rows.ok()) return Reply(rows.status());
  for (int i = 0; i < static_cast<int>(rows->size()) && i < *size; ++i) {
    ToStatus((*rows)[i], resp->add_agents());
  }
  if (static_cast<int>(rows->size()) > *size) {
    resp->set_next_page_token(
        PageToken(*tenant, filter, (*rows)[*size - 1].enrollment.agent_id));
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::UpdateAgents(grpc::ServerContext* ctx,
                                        const v1::UpdateAgentsRequest* req,
                                        v1::UpdateAgentsResponse* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kOperator);
  if (!tenant.ok()) return Reply(tenant.status());
  if (fleet == nullptr) return Reply(NoFleet());
  store::EnrollmentUpdate u;
  u.tenant = *tenant;
  if (req->agent_ids().empty() == req->label_selector().empty()) {
    return Reply(
        absl::InvalidArgumentError("give either agent_ids or label_selector"));
  }
  absl::StatusOr<std::vector<std::string>> ids =
      AgentIdsOf(req->agent_ids(), kMaxUpdateIds);
  if (!ids.ok()) return Reply(ids.status());
  u.agent_ids = *std::move(ids);
  absl::StatusOr<core::Selector> selector =
      ParseSelector(req->label_selector(), "label_selector");
  if (!selector.ok()) return Reply(selector.status());
  if (u.agent_ids.empty() && selector->empty()) {
    // Blanks only: never "every agent".
    return Reply(absl::InvalidArgumentError(
        "label_selector: give at least one requirement"));
  }
  u.selector = *std::move(selector);
  if (req->runtime_policy().empty() && req->boot_policy().empty() &&
      !req->clear_boot_policy() && req->interval_seconds() == 0) {
    return Reply(absl::InvalidArgumentError(
        "nothing to change: give runtime_policy, boot_policy, "
        "clear_boot_policy or interval_seconds"));
  }
  if (!req->boot_policy().empty() && req->clear_boot_policy()) {
    return Reply(absl::InvalidArgumentError(
        "boot_policy and clear_boot_policy: give one"));
  }
  // Each slot takes a policy of its kind (the newest version is followed).
  for (const auto& [name, kind] :
       {std::pair<const std::string&, int>{req->runtime_policy(),
                                           v1::POLICY_KIND_RUNTIME},
        std::pair<const std::string&, int>{req->boot_policy(),
                                           v1::POLICY_KIND_BOOT}}) {
    if (name.empty()) continue;
    if (absl::Status s = ValidatePolicyName(name); !s.ok()) return Reply(s);
    absl::StatusOr<std::pair<uint64_t, int>> newest =
        policies_->NewestPolicyVersion(*tenant, name);
    if (!newest.ok()) return Reply(newest.status());
    if (newest->second != kind) {
      return Reply(absl::InvalidArgumentError(
          absl::StrCat("policy ", name, " is of another kind")));
    }
  }
  u.runtime_policy = req->runtime_policy();
  u.boot_policy = req->boot_policy();
  u.clear_boot_policy = req->clear_boot_policy();
  if (req->interval_seconds() != 0) {
    if (req->interval_seconds() < core::attest::kMinIntervalSeconds ||
        req->interval_seconds() > core::attest::kMaxIntervalSeconds) {
      return Reply(absl::InvalidArgumentError("interval_seconds: 1..86400"));
    }
    u.interval = absl::Seconds(req->interval_seconds());
  }
  u.updated_by = CallerName(ctx);
  absl::StatusOr<std::vector<store::AgentRow>> rows =
      fleet->UpdateEnrollments(u);
  if (!rows.ok()) return Reply(rows.status());
  for (const store::AgentRow& row : *rows) ToStatus(row, resp->add_agents());
  Log(LogLevel::kInfo, "agents updated",
      {{"tenant", u.tenant},
       {"agents", absl::StrCat(rows->size())},
       {"selector", u.selector.ToString()},
       {"runtime_policy", u.runtime_policy},
       {"boot_policy", u.clear_boot_policy ? "(none)" : u.boot_policy},
       {"by", u.updated_by}});
  return grpc::Status::OK;
}

grpc::Status AdminService::GetServerInfo(grpc::ServerContext* ctx,
                                         const v1::GetServerInfoRequest*,
                                         v1::ServerInfo* resp) {
  absl::StatusOr<Principal> caller =
      server::CallerPrincipal(*ctx->auth_context());
  if (!caller.ok()) return Reply(caller.status());
  resp->set_server("vouch-verifier");
  resp->set_version(BuildVersion());
  resp->set_commit(BuildCommit());
  return grpc::Status::OK;
}

grpc::Status AdminService::StorePolicy(
    grpc::ServerContext* ctx, const std::string& tenant,
    const std::string& name, int kind, const std::string& content,
    const std::string& description, bool update, uint64_t expected_version,
    v1::Policy* resp, const store::PolicyRow& provenance) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  if (absl::Status s = ValidatePolicyName(name); !s.ok()) return Reply(s);
  if (update) {
    absl::StatusOr<std::pair<uint64_t, int>> newest =
        policies_->NewestPolicyVersion(tenant, name);
    if (!newest.ok()) return Reply(newest.status());
    if (kind != 0 && kind != newest->second) {
      return Reply(absl::InvalidArgumentError(
          absl::StrCat("policy ", name, " is of another kind")));
    }
    kind = newest->second;
  }
  absl::StatusOr<int64_t> release = ValidatePolicy(kind, content);
  if (!release.ok()) {
    return Reply(absl::InvalidArgumentError(
        absl::StrCat("content: ", release.status().message())));
  }
  store::PolicyRow p = provenance;
  p.release = *release;
  p.tenant = tenant;
  p.name = name;
  p.kind = kind;
  p.content = content;
  p.sha256 = Sha256(content);
  p.description = description.substr(0, 1024);
  p.created_by = CallerName(ctx);
  absl::StatusOr<store::PolicyRow> row =
      update ? policies_->UpdatePolicy(p, expected_version)
             : policies_->AddPolicy(p);
  if (!row.ok()) return Reply(row.status());
  ToPolicy(*row, /*with_content=*/false, resp);
  return grpc::Status::OK;
}

grpc::Status AdminService::AddPolicy(grpc::ServerContext* ctx,
                                     const v1::AddPolicyRequest* req,
                                     v1::Policy* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kOperator);
  if (!tenant.ok()) return Reply(tenant.status());
  return StorePolicy(ctx, *tenant, req->name(), req->kind(), req->content(),
                     req->description(), /*update=*/false, 0, resp);
}

grpc::Status AdminService::UpdatePolicy(grpc::ServerContext* ctx,
                                        const v1::UpdatePolicyRequest* req,
                                        v1::Policy* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kOperator);
  if (!tenant.ok()) return Reply(tenant.status());
  return StorePolicy(ctx, *tenant, req->name(), 0, req->content(),
                     req->description(), /*update=*/true,
                     req->expected_version(), resp);
}

grpc::Status AdminService::ImportPolicy(grpc::ServerContext* ctx,
                                        const v1::ImportPolicyRequest* req,
                                        v1::Policy* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kOperator);
  if (!tenant.ok()) return Reply(tenant.status());
  if (!req->url().empty()) {
    return ImportFromUrl(ctx, *tenant, *req, resp);
  }
  if (req->content().empty() || req->content().size() > kMaxPolicyBytes ||
      req->exclude_list().size() > (1 << 20)) {
    return Reply(absl::InvalidArgumentError(
        "content: 1 byte .. 16 MiB; exclude_list: at most 1 MiB"));
  }
  if (!req->exclude_list().empty() &&
      req->format() != v1::POLICY_FORMAT_ALLOWLIST) {
    return Reply(
        absl::InvalidArgumentError("exclude_list: only with ALLOWLIST"));
  }
  int kind = v1::POLICY_KIND_RUNTIME;
  std::string native;
  store::PolicyRow provenance;
  provenance.origin = "import";
  provenance.source_sha256 = Sha256(req->content());
  switch (req->format()) {
    case v1::POLICY_FORMAT_KEYLIME_RUNTIME_POLICY_JSON:
      native = req->content();
      break;
    case v1::POLICY_FORMAT_KEYLIME_MB_REFSTATE_JSON:
      kind = v1::POLICY_KIND_BOOT;
      native = req->content();
      break;
    case v1::POLICY_FORMAT_KEYLIME_TPM_POLICY_JSON:
      kind = v1::POLICY_KIND_PCR;
      native = req->content();
      break;
    case v1::POLICY_FORMAT_ALLOWLIST: {
      absl::StatusOr<core::ima::PolicyDraft> draft =
          core::ima::ConvertAllowlist(req->content(), req->exclude_list());
      if (!draft.ok()) return Reply(draft.status());
      absl::StatusOr<std::string> json = core::ima::WriteRuntimePolicy(*draft);
      if (!json.ok()) return Reply(json.status());
      native = *std::move(json);
      break;
    }
    case v1::POLICY_FORMAT_DSSE_SIGNED: {
      // One of the tenant's trusted keys (its own or the pool's) must
      // verify the envelope; the payload is only read after that.
      absl::StatusOr<std::vector<core::ima::TrustedPolicyKey>> keys =
          Fetcher().KeysFor(*tenant);
      if (!keys.ok()) return Reply(keys.status());
      absl::StatusOr<core::ima::VerifiedEnvelope> v =
          core::ima::VerifyWithAnyKey(req->content(), *keys);
      if (!v.ok()) return Reply(v.status());
      native = std::move(v->payload);
      provenance.signer_key_id = std::move(v->key_id);
      break;
    }
    default:
      return Reply(absl::InvalidArgumentError(
          "format: KEYLIME_RUNTIME_POLICY_JSON, KEYLIME_MB_REFSTATE_JSON, "
          "KEYLIME_TPM_POLICY_JSON, ALLOWLIST or DSSE_SIGNED"));
  }
  if (native.size() > kMaxPolicyBytes) {
    return Reply(absl::InvalidArgumentError("converted policy over 16 MiB"));
  }
  grpc::Status st = StorePolicy(ctx, *tenant, req->name(), kind, native,
                                req->description(), req->update_existing(),
                                req->expected_version(), resp, provenance);
  if (!st.ok()) return st;
  resp->set_imported_from(req->format());
  return grpc::Status::OK;
}

grpc::Status AdminService::ImportFromUrl(grpc::ServerContext* ctx,
                                         const std::string& tenant,
                                         const v1::ImportPolicyRequest& req,
                                         v1::Policy* resp) {
  bool download_failed = false;
  absl::Status s = ImportFromUrlSteps(ctx, tenant, req, resp, download_failed);
  // A download's error is about the operator's URL, not this verifier:
  // shown as it is (Reply hides the database's details), and an HTTP or TLS
  // failure is FAILED_PRECONDITION, so clients do not retry it elsewhere as
  // they retry an UNAVAILABLE verifier.
  if (download_failed) {
    return server::ToGrpcStatus(absl::IsUnavailable(s)
                                    ? absl::FailedPreconditionError(s.message())
                                    : s);
  }
  return Reply(s);
}

absl::Status AdminService::ImportFromUrlSteps(
    grpc::ServerContext* ctx, const std::string& tenant,
    const v1::ImportPolicyRequest& req, v1::Policy* resp,
    bool& download_failed) {
  VOUCH_RETURN_IF_ERROR(ValidatePolicyName(req.name()));
  VOUCH_RETURN_IF_ERROR(core::ima::ValidatePolicyUrl(req.url()));
  const absl::Duration refresh = absl::Seconds(req.refresh().seconds()) +
                                 absl::Nanoseconds(req.refresh().nanos());
  VOUCH_RETURN_IF_ERROR(core::ima::ValidatePolicyRefresh(refresh));
  if (!req.content().empty() || !req.exclude_list().empty()) {
    return absl::InvalidArgumentError(
        "url: give either content or a url, not both");
  }
  if (req.format() != v1::POLICY_FORMAT_UNSPECIFIED &&
      req.format() != v1::POLICY_FORMAT_KEYLIME_RUNTIME_POLICY_JSON &&
      req.format() != v1::POLICY_FORMAT_DSSE_SIGNED) {
    return absl::InvalidArgumentError(
        "url: only runtime policies (Keylime runtime policy JSON, plain or "
        "DSSE-signed) are fetched");
  }
  if (sources == nullptr) {
    return absl::FailedPreconditionError(
        "this verifier keeps no policy sources");
  }
  // A new name, or update_existing for an existing one, as with content.
  const absl::StatusOr<std::pair<uint64_t, int>> newest =
      policies_->NewestPolicyVersion(tenant, req.name());
  if (newest.ok() && !req.update_existing()) {
    return absl::AlreadyExistsError(absl::StrCat(
        "policy ", req.name(), " exists; import with update_existing"));
  }
  if (!newest.ok() && !absl::IsNotFound(newest.status())) {
    return newest.status();
  }
  if (newest.ok() && req.expected_version() != 0 &&
      req.expected_version() != newest->first) {
    return absl::AbortedError(
        absl::StrCat("policy ", req.name(), " is at version ", newest->first));
  }
  store::PolicySourceRow source;
  source.tenant = tenant;
  source.name = req.name();
  source.url = req.url();
  source.refresh = refresh;
  source.require_signature = req.require_signature();
  source.created_by = CallerName(ctx);
  VOUCH_ASSIGN_OR_RETURN(
      PolicyFetcher::Outcome o,
      Fetcher().Fetch(source, req.description().substr(0, 1024),
                      /*create=*/!newest.ok(), &download_failed));
  source.etag = o.etag;
  source.last_result =
      o.result == PolicyFetcher::Result::kStored ? "stored" : "unchanged";
  VOUCH_RETURN_IF_ERROR(sources->SaveSource(source));
  Log(LogLevel::kInfo, "policy imported from url",
      {{"tenant", tenant},
       {"policy", req.name()},
       {"url", req.url()},
       {"version", o.row.version},
       {"result", source.last_result}});
  ToPolicy(o.row, /*with_content=*/false, resp);
  resp->set_imported_from(req.format());
  return absl::OkStatus();
}

grpc::Status AdminService::GetAttestationHistory(
    grpc::ServerContext* ctx, const v1::GetAttestationHistoryRequest* req,
    v1::GetAttestationHistoryResponse* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return Reply(tenant.status());
  absl::StatusOr<int> size = PageSize(req->page_size());
  if (!size.ok()) return Reply(size.status());
  absl::StatusOr<core::audit::HistoryQuery> query =
      core::audit::HistoryQueryOf(*tenant, *req);
  if (!query.ok()) return Reply(query.status());
  absl::StatusOr<std::optional<core::audit::HistoryPosition>> after =
      core::audit::HistoryPositionOf(req->page_token(), *query);
  if (!after.ok()) return Reply(after.status());
  store::HistoryQuery q;
  q.tenant = query->tenant;
  q.agent_id = query->agent_id;
  q.from = query->from;
  q.to = query->to;
  q.states = query->states;
  if (*after) {
    q.after_at = (*after)->at;
    q.after_id = (*after)->attestation_id;
  }
  q.limit = *size + 1;  // One more says whether there is a next page.
  absl::StatusOr<std::vector<store::HistoryRow>> rows =
      agents_->QueryHistory(q);
  if (!rows.ok()) return Reply(rows.status());
  for (int i = 0; i < static_cast<int>(rows->size()) && i < *size; ++i) {
    const store::HistoryRow& h = (*rows)[i];
    const store::AttestationRow& r = h.row;
    v1::AttestationRecord* rec = resp->add_records();
    rec->set_attestation_id(r.attestation_id);
    rec->set_tenant(*tenant);
    rec->set_agent_id(h.agent_id);
    rec->set_state(r.state);
    SetFailures(h.failures, rec);
    server::SetTimestamp(r.at, rec->mutable_verified_at());
    rec->set_verifier(r.verifier);
    if (r.ima_from) rec->set_ima_first_entry(*r.ima_from);
    if (r.ima_next_entry) rec->set_ima_next_entry(*r.ima_next_entry);
    rec->set_boot_log_evaluated(r.boot_log_evaluated);
  }
  if (static_cast<int>(rows->size()) > *size) {
    const store::AttestationRow& last = (*rows)[*size - 1].row;
    resp->set_next_page_token(
        core::audit::HistoryToken(*query, {last.at, last.attestation_id}));
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::GetPolicy(grpc::ServerContext* ctx,
                                     const v1::GetPolicyRequest* req,
                                     v1::Policy* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return Reply(tenant.status());
  absl::StatusOr<store::PolicyRow> row =
      policies_->GetPolicy(*tenant, req->name(), req->version());
  if (!row.ok()) return Reply(row.status());
  ToPolicy(*row, /*with_content=*/true, resp);
  if (sources != nullptr) {
    absl::StatusOr<std::optional<store::PolicySourceRow>> source =
        sources->GetSource(*tenant, req->name());
    if (!source.ok()) return Reply(source.status());
    if (source->has_value()) ToSource(**source, resp->mutable_source());
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::ListPolicies(grpc::ServerContext* ctx,
                                        const v1::ListPoliciesRequest* req,
                                        v1::ListPoliciesResponse* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return Reply(tenant.status());
  absl::StatusOr<int> size = PageSize(req->page_size());
  if (!size.ok()) return Reply(size.status());
  absl::StatusOr<std::string> after =
      PageAfter(req->page_token(), *tenant, "policies");
  if (!after.ok()) return Reply(after.status());
  absl::StatusOr<std::vector<store::PolicyRow>> rows =
      policies_->ListPolicies(*tenant, *after, *size + 1);
  if (!rows.ok()) return Reply(rows.status());
  for (int i = 0; i < static_cast<int>(rows->size()) && i < *size; ++i) {
    if (req->kind() != v1::POLICY_KIND_UNSPECIFIED &&
        (*rows)[i].kind != req->kind()) {
      continue;
    }
    ToPolicy((*rows)[i], /*with_content=*/false, resp->add_policies());
  }
  if (static_cast<int>(rows->size()) > *size) {
    resp->set_next_page_token(
        PageToken(*tenant, "policies", (*rows)[*size - 1].name));
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::RemovePolicy(grpc::ServerContext* ctx,
                                        const v1::RemovePolicyRequest* req,
                                        v1::RemovePolicyResponse*) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kOperator);
  if (!tenant.ok()) return Reply(tenant.status());
  if (absl::Status s = policies_->RemovePolicy(*tenant, req->name()); !s.ok()) {
    return Reply(s);
  }
  // A removed policy is no longer fetched.
  if (sources != nullptr) {
    return Reply(sources->DeleteSource(*tenant, req->name()));
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::GetPolicyHistory(
    grpc::ServerContext* ctx, const v1::GetPolicyHistoryRequest* req,
    v1::GetPolicyHistoryResponse* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return Reply(tenant.status());
  absl::StatusOr<int> size = PageSize(req->page_size());
  if (!size.ok()) return Reply(size.status());
  absl::StatusOr<std::vector<store::PolicyRow>> rows =
      policies_->PolicyHistory(*tenant, req->name(), *size);
  if (!rows.ok()) return Reply(rows.status());
  for (const store::PolicyRow& r : *rows) {
    ToPolicy(r, /*with_content=*/false, resp->add_versions());
  }
  return grpc::Status::OK;
}

namespace {

constexpr int kMaxRolloutIds = 10000;
constexpr absl::Duration kMaxWindow = absl::Hours(31 * 24);

void ToRollout(const store::RolloutRow& r, v1::PolicyRollout* out) {
  out->set_tenant(r.tenant);
  out->set_policy(r.policy);
  out->set_kind(r.kind == store::RolloutKind::kWindow
                    ? v1::ROLLOUT_KIND_WINDOW
                    : v1::ROLLOUT_KIND_SHADOW);
  out->set_candidate(r.candidate);
  out->set_label_selector(r.selector);
  if (!r.all_agents) {
    for (const std::string& id : r.agent_ids) out->add_agent_ids(id);
  }
  if (r.not_before != absl::InfinitePast()) {
    server::SetTimestamp(r.not_before, out->mutable_not_before());
  }
  if (r.not_after != absl::InfiniteFuture()) {
    server::SetTimestamp(r.not_after, out->mutable_not_after());
  }
  server::SetTimestamp(r.created_at, out->mutable_created_at());
  out->set_created_by(r.created_by);
}

absl::StatusOr<store::RolloutKind> RolloutKindOf(int kind) {
  switch (kind) {
    case v1::ROLLOUT_KIND_SHADOW:
      return store::RolloutKind::kShadow;
    case v1::ROLLOUT_KIND_WINDOW:
      return store::RolloutKind::kWindow;
    default:
      return absl::InvalidArgumentError("kind: shadow or window");
  }
}

}  // namespace

absl::Status AdminService::PolicyExists(const std::string& tenant,
                                        const std::string& name) {
  return policies_->NewestPolicyVersion(tenant, name).status();
}

absl::StatusOr<std::optional<store::RolloutRow>> AdminService::ShadowOf(
    const std::string& tenant, const std::string& policy) {
  VOUCH_RETURN_IF_ERROR(ValidatePolicyName(policy));
  VOUCH_RETURN_IF_ERROR(PolicyExists(tenant, policy));
  VOUCH_ASSIGN_OR_RETURN(std::vector<store::RolloutRow> rollouts,
                         policies_->ListRollouts(tenant, policy));
  for (store::RolloutRow& r : rollouts) {
    if (r.kind == store::RolloutKind::kShadow) return std::move(r);
  }
  return std::nullopt;
}

grpc::Status AdminService::SetPolicyRollout(
    grpc::ServerContext* ctx, const v1::SetPolicyRolloutRequest* req,
    v1::PolicyRollout* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kOperator);
  if (!tenant.ok()) return Reply(tenant.status());
  for (const std::string* name : {&req->policy(), &req->candidate()}) {
    if (absl::Status s = ValidatePolicyName(*name); !s.ok()) return Reply(s);
  }
  absl::StatusOr<store::RolloutKind> kind = RolloutKindOf(req->kind());
  if (!kind.ok()) return Reply(kind.status());
  store::RolloutRow r;
  r.tenant = *tenant;
  r.policy = req->policy();
  r.kind = *kind;
  r.candidate = req->candidate();
  r.created_by = CallerName(ctx);
  const bool timed = req->has_not_before() || req->has_not_after();
  if (*kind == store::RolloutKind::kShadow && timed) {
    return Reply(absl::InvalidArgumentError(
        "not_before/not_after: a shadow has no time range"));
  }
  if (*kind == store::RolloutKind::kWindow) {
    if (!req->has_not_before() || !req->has_not_after()) {
      return Reply(absl::InvalidArgumentError(
          "a window needs not_before and not_after"));
    }
    r.not_before = core::attest::FromProto(req->not_before());
    r.not_after = core::attest::FromProto(req->not_after());
    if (r.not_after <= r.not_before ||
        r.not_after - r.not_before > kMaxWindow) {
      return Reply(absl::InvalidArgumentError(
          "not_after must follow not_before by at most 31 days"));
    }
  }
  if (!req->agent_ids().empty() && !req->label_selector().empty()) {
    return Reply(absl::InvalidArgumentError(
        "give agent_ids or label_selector, not both"));
  }
  absl::StatusOr<std::vector<std::string>> ids =
      AgentIdsOf(req->agent_ids(), kMaxRolloutIds);
  if (!ids.ok()) return Reply(ids.status());
  r.agent_ids = *std::move(ids);
  absl::StatusOr<core::Selector> selector =
      ParseSelector(req->label_selector(), "label_selector");
  if (!selector.ok()) return Reply(selector.status());
  if (!req->label_selector().empty() && selector->empty()) {
    return Reply(absl::InvalidArgumentError(
        "label_selector: give at least one requirement"));
  }
  if (!selector->empty()) {
    if (fleet == nullptr) return Reply(NoFleet());
    // Resolved now: the agents enrolled with the policy that match.
    std::string after;
    while (true) {
      absl::StatusOr<std::vector<store::AgentRow>> page =
          fleet->ListAgentsMatching(*tenant, after, {}, 1000, r.policy,
                                    *selector);
      if (!page.ok()) return Reply(page.status());
      for (const store::AgentRow& a : *page) {
        r.agent_ids.push_back(a.enrollment.agent_id);
      }
      if (static_cast<int>(r.agent_ids.size()) > kMaxRolloutIds) {
        return Reply(absl::InvalidArgumentError(
            absl::StrCat("label_selector matches more than ", kMaxRolloutIds,
                         " agents; narrow it, or give none for every agent")));
      }
      if (page->size() < 1000) break;
      after = page->back().enrollment.agent_id;
    }
    r.selector = selector->ToString();
  }
  // A selector that matches nobody applies to nobody, never to all.
  r.all_agents = r.agent_ids.empty() && selector->empty();
  absl::StatusOr<store::RolloutRow> row = policies_->SetRollout(r);
  if (!row.ok()) return Reply(row.status());
  ToRollout(*row, resp);
  Log(LogLevel::kInfo, "policy roll-out set",
      {{"tenant", r.tenant},
       {"policy", r.policy},
       {"kind", store::RolloutKindName(r.kind)},
       {"candidate", r.candidate},
       {"agents", r.all_agents ? "all" : absl::StrCat(row->agent_ids.size())},
       {"by", r.created_by}});
  return grpc::Status::OK;
}

grpc::Status AdminService::ListPolicyRollouts(
    grpc::ServerContext* ctx, const v1::ListPolicyRolloutsRequest* req,
    v1::ListPolicyRolloutsResponse* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return Reply(tenant.status());
  if (!req->policy().empty()) {
    if (absl::Status s = ValidatePolicyName(req->policy()); !s.ok()) {
      return Reply(s);
    }
    if (absl::Status s = PolicyExists(*tenant, req->policy()); !s.ok()) {
      return Reply(s);
    }
  }
  absl::StatusOr<std::vector<store::RolloutRow>> rows =
      policies_->ListRollouts(*tenant, req->policy());
  if (!rows.ok()) return Reply(rows.status());
  for (const store::RolloutRow& r : *rows) ToRollout(r, resp->add_rollouts());
  return grpc::Status::OK;
}

grpc::Status AdminService::DeletePolicyRollout(
    grpc::ServerContext* ctx, const v1::DeletePolicyRolloutRequest* req,
    v1::DeletePolicyRolloutResponse*) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kOperator);
  if (!tenant.ok()) return Reply(tenant.status());
  if (absl::Status s = ValidatePolicyName(req->policy()); !s.ok()) {
    return Reply(s);
  }
  absl::StatusOr<store::RolloutKind> kind = RolloutKindOf(req->kind());
  if (!kind.ok()) return Reply(kind.status());
  return Reply(policies_->DeleteRollout(*tenant, req->policy(), *kind));
}

grpc::Status AdminService::GetShadowReport(
    grpc::ServerContext* ctx, const v1::GetShadowReportRequest* req,
    v1::ShadowReport* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return Reply(tenant.status());
  absl::StatusOr<std::optional<store::RolloutRow>> shadow =
      ShadowOf(*tenant, req->policy());
  if (!shadow.ok()) return Reply(shadow.status());
  absl::StatusOr<std::vector<store::ShadowResultRow>> rows =
      policies_->ShadowReport(*tenant, req->policy());
  if (!rows.ok()) return Reply(rows.status());
  resp->set_policy(req->policy());
  if (*shadow) ToRollout(**shadow, resp->mutable_shadow());
  for (const store::ShadowResultRow& r : *rows) {
    v1::ShadowAgentResult* a = resp->add_agents();
    a->set_agent_id(r.agent_id);
    a->set_candidate(r.candidate);
    a->set_candidate_version(r.candidate_version);
    a->set_rounds(r.rounds);
    a->set_entries_checked(r.entries_checked);
    a->set_failure_count(r.failure_count);
    v1::Verdict listed = core::attest::DecodeFailures(r.failures);
    *a->mutable_failures() = listed.failures();
    a->set_failures_truncated(listed.failures_truncated());
    server::SetTimestamp(r.updated_at, a->mutable_updated_at());
    if (r.failure_count > 0) {
      resp->set_agents_failing(resp->agents_failing() + 1);
      resp->set_failure_count(resp->failure_count() + r.failure_count);
    }
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::PromotePolicy(grpc::ServerContext* ctx,
                                         const v1::PromotePolicyRequest* req,
                                         v1::Policy* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kOperator);
  if (!tenant.ok()) return Reply(tenant.status());
  absl::StatusOr<std::optional<store::RolloutRow>> found =
      ShadowOf(*tenant, req->policy());
  if (!found.ok()) return Reply(found.status());
  const std::optional<store::RolloutRow>& shadow = *found;
  if (!shadow) {
    return Reply(absl::FailedPreconditionError(
        absl::StrCat("policy ", req->policy(), " has no shadow to promote")));
  }
  absl::StatusOr<store::PolicyRow> candidate =
      policies_->GetPolicy(*tenant, shadow->candidate, 0);
  if (!candidate.ok()) return Reply(candidate.status());
  if (req->expected_candidate_version() != 0 &&
      req->expected_candidate_version() != candidate->version) {
    return Reply(absl::AbortedError(absl::StrCat(
        "candidate ", shadow->candidate, " is at version ", candidate->version,
        ", not ", req->expected_candidate_version())));
  }
  store::PolicyRow provenance;
  provenance.origin =
      absl::StrCat("promote:", shadow->candidate, "@", candidate->version);
  provenance.source_sha256 = candidate->source_sha256;
  provenance.signer_key_id = candidate->signer_key_id;
  grpc::Status stored = StorePolicy(
      ctx, *tenant, req->policy(), v1::POLICY_KIND_RUNTIME, candidate->content,
      candidate->description, /*update=*/true, 0, resp, provenance);
  if (!stored.ok()) return stored;
  // The shadow has become the policy; its report is of the past version.
  absl::Status ended = policies_->DeleteRollout(*tenant, req->policy(),
                                                store::RolloutKind::kShadow);
  if (!ended.ok() && !absl::IsNotFound(ended)) return Reply(ended);
  Log(LogLevel::kInfo, "shadow promoted",
      {{"tenant", *tenant},
       {"policy", req->policy()},
       {"candidate", shadow->candidate},
       {"version", resp->version()},
       {"by", CallerName(ctx)}});
  return grpc::Status::OK;
}

absl::StatusOr<std::string> AdminService::KeyTenant(grpc::ServerContext* ctx,
                                                    const std::string& tenant,
                                                    Role role) {
  VOUCH_ASSIGN_OR_RETURN(std::string t, Tenant(ctx, tenant, role));
  if (sources == nullptr) {
    return absl::FailedPreconditionError(
        "this verifier keeps no policy-signing keys");
  }
  return t;
}

grpc::Status AdminService::AddPolicySigningKey(
    grpc::ServerContext* ctx, const v1::AddPolicySigningKeyRequest* req,
    v1::PolicySigningKey* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      KeyTenant(ctx, req->tenant(), Role::kAdmin);
  if (!tenant.ok()) return Reply(tenant.status());
  if (absl::Status s = ValidatePolicyName(req->name()); !s.ok()) {
    return Reply(s);
  }
  if (req->pem().empty() || req->pem().size() > (64 << 10)) {
    return Reply(absl::InvalidArgumentError("pem: 1 byte .. 64 KiB"));
  }
  absl::StatusOr<std::string> id = core::ima::DssePemKeyId(req->pem());
  if (!id.ok()) {
    return Reply(absl::InvalidArgumentError(
        absl::StrCat("pem: ", id.status().message())));
  }
  store::PolicySigningKeyRow k;
  k.tenant = *tenant;
  k.name = req->name();
  k.pem = req->pem();
  k.key_id = *id;
  k.created_by = CallerName(ctx);
  absl::StatusOr<store::PolicySigningKeyRow> row = sources->AddKey(k);
  if (!row.ok()) return Reply(row.status());
  Log(LogLevel::kInfo, "policy-signing key added",
      {{"tenant", k.tenant}, {"name", k.name}, {"key_id", k.key_id}});
  ToKey(*row, resp);
  return grpc::Status::OK;
}

grpc::Status AdminService::ListPolicySigningKeys(
    grpc::ServerContext* ctx, const v1::ListPolicySigningKeysRequest* req,
    v1::ListPolicySigningKeysResponse* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      KeyTenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return Reply(tenant.status());
  absl::StatusOr<std::vector<store::PolicySigningKeyRow>> rows =
      sources->ListKeys(*tenant);
  if (!rows.ok()) return Reply(rows.status());
  for (const store::PolicySigningKeyRow& k : *rows) ToKey(k, resp->add_keys());
  return grpc::Status::OK;
}

grpc::Status AdminService::DeletePolicySigningKey(
    grpc::ServerContext* ctx, const v1::DeletePolicySigningKeyRequest* req,
    v1::DeletePolicySigningKeyResponse*) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      KeyTenant(ctx, req->tenant(), Role::kAdmin);
  if (!tenant.ok()) return Reply(tenant.status());
  if (absl::Status s = sources->DeleteKey(*tenant, req->name()); !s.ok()) {
    return Reply(s);
  }
  Log(LogLevel::kInfo, "policy-signing key deleted",
      {{"tenant", *tenant}, {"name", req->name()}});
  return grpc::Status::OK;
}

grpc::Status AdminService::GetAttestation(grpc::ServerContext* ctx,
                                          const v1::GetAttestationRequest* req,
                                          v1::AttestationRecord* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return Reply(tenant.status());
  return Reply(GetKeptAttestation(*agents_, *tenant, *req, resp));
}

grpc::Status AdminService::ReverifyAttestation(
    grpc::ServerContext* ctx, const v1::ReverifyAttestationRequest* req,
    v1::ReverifyAttestationResponse* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kOperator);
  if (!tenant.ok()) return Reply(tenant.status());
  return Reply(ReverifyKeptAttestation(*agents_, *policies_, *tenant, *req,
                                       absl::Now(), resp));
}

grpc::Status AdminService::ExportAudit(grpc::ServerContext* ctx,
                                       const v1::ExportAuditRequest* req,
                                       v1::AuditBundle* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      Tenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return Reply(tenant.status());
  return Reply(ExportAuditBundle(*agents_, *policies_,
                                 log_key != nullptr ? translog : nullptr,
                                 *tenant, *req, resp));
}

// ---------------------------------------------------------------------------
// Webhooks (docs/webhooks.md)

namespace {

void ToWebhook(const store::WebhookSubscription& w, v1::Webhook* out) {
  out->set_tenant(w.tenant);
  out->set_name(w.name);
  out->set_url(w.url);
  for (core::AgentState s : w.states) {
    out->add_states(static_cast<v1::AttestationState>(s));
  }
  out->set_created_by(w.created_by);
  server::SetTimestamp(w.created_at, out->mutable_created_at());
  out->set_cursor(absl::StrCat(w.cursor.xid, "/", w.cursor.seq));
  out->set_attempts(w.attempts);
  if (w.failing_since) {
    server::SetTimestamp(*w.failing_since, out->mutable_failing_since());
  }
  out->set_last_error(w.last_error);
  if (w.attempts > 0) {
    server::SetTimestamp(w.next_attempt_at, out->mutable_next_attempt_at());
  }
  if (w.last_delivered_at) {
    server::SetTimestamp(*w.last_delivered_at,
                         out->mutable_last_delivered_at());
  }
  out->set_delivered(w.delivered);
  out->set_failed_attempts(w.failed);
  out->set_dead_lettered(w.dead_lettered);
  out->set_last_dead_letter_id(w.last_dead_letter_id);
  out->set_owner(w.owner);
}

absl::Status WebhooksServed(const store::PgWebhookStore* webhooks) {
  if (webhooks == nullptr) {
    return absl::FailedPreconditionError("this verifier serves no webhooks");
  }
  return absl::OkStatus();
}

// The subscription's states and secret from an AddWebhook request;
// `generated` says whether the secret was made here.
absl::StatusOr<store::WebhookSubscription> WebhookFrom(
    const v1::AddWebhookRequest& req, bool* generated) {
  VOUCH_RETURN_IF_ERROR(core::webhook::ValidateName(req.name()));
  VOUCH_RETURN_IF_ERROR(core::webhook::ValidateUrl(req.url()));
  store::WebhookSubscription w;
  w.name = req.name();
  w.url = req.url();
  if (req.states_size() > 4) {
    return absl::InvalidArgumentError("states: at most 4");
  }
  for (int s : req.states()) {
    if (s != v1::ATTESTATION_STATE_PENDING && s != v1::ATTESTATION_STATE_PASS &&
        s != v1::ATTESTATION_STATE_FAIL && s != v1::ATTESTATION_STATE_TIMEOUT) {
      return absl::InvalidArgumentError(
          "states: only PENDING, PASS, FAIL, TIMEOUT");
    }
    if (std::find(w.states.begin(), w.states.end(), s) != w.states.end()) {
      return absl::InvalidArgumentError("states: a state is repeated");
    }
    w.states.push_back(static_cast<core::AgentState>(s));
  }
  *generated = req.secret().empty();
  if (*generated) {
    unsigned char key[32];
    if (RAND_bytes(key, sizeof(key)) != 1) {
      return absl::InternalError("RAND_bytes failed");
    }
    w.secret = core::webhook::SecretFromBytes(
        absl::string_view(reinterpret_cast<const char*>(key), sizeof(key)));
  } else {
    VOUCH_RETURN_IF_ERROR(core::webhook::SecretKey(req.secret()).status());
    w.secret = req.secret();
  }
  return w;
}

}  // namespace

grpc::Status AdminService::AddWebhook(grpc::ServerContext* ctx,
                                      const v1::AddWebhookRequest* req,
                                      v1::Webhook* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant = Tenant(ctx, req->tenant(), Role::kAdmin);
  if (!tenant.ok()) return Reply(tenant.status());
  if (absl::Status s = WebhooksServed(webhooks); !s.ok()) return Reply(s);
  bool generated = false;
  absl::StatusOr<store::WebhookSubscription> w = WebhookFrom(*req, &generated);
  if (!w.ok()) return Reply(w.status());
  w->tenant = *tenant;
  w->created_by = CallerName(ctx);
  // Deliveries start at the events committed from now on, as Watch
  // without a resume token.
  absl::StatusOr<store::EventPosition> start = events_->EventHorizon();
  if (!start.ok()) return Reply(start.status());
  absl::StatusOr<store::WebhookSubscription> added = webhooks->Add(*w, *start);
  if (!added.ok()) return Reply(added.status());
  ToWebhook(*added, resp);
  if (generated) resp->set_secret(w->secret);
  return grpc::Status::OK;
}

grpc::Status AdminService::GetWebhook(grpc::ServerContext* ctx,
                                      const v1::GetWebhookRequest* req,
                                      v1::Webhook* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant = Tenant(ctx, req->tenant(), Role::kAdmin);
  if (!tenant.ok()) return Reply(tenant.status());
  if (absl::Status s = WebhooksServed(webhooks); !s.ok()) return Reply(s);
  absl::StatusOr<store::WebhookSubscription> w =
      webhooks->Get(*tenant, req->name());
  if (!w.ok()) return Reply(w.status());
  ToWebhook(*w, resp);
  return grpc::Status::OK;
}

grpc::Status AdminService::ListWebhooks(grpc::ServerContext* ctx,
                                        const v1::ListWebhooksRequest* req,
                                        v1::ListWebhooksResponse* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant = Tenant(ctx, req->tenant(), Role::kAdmin);
  if (!tenant.ok()) return Reply(tenant.status());
  if (absl::Status s = WebhooksServed(webhooks); !s.ok()) return Reply(s);
  absl::StatusOr<int> size = PageSize(req->page_size());
  if (!size.ok()) return Reply(size.status());
  absl::StatusOr<std::string> after =
      PageAfter(req->page_token(), *tenant, "webhooks");
  if (!after.ok()) return Reply(after.status());
  absl::StatusOr<std::vector<store::WebhookSubscription>> rows =
      webhooks->List(*tenant, *after, *size + 1);
  if (!rows.ok()) return Reply(rows.status());
  for (int i = 0; i < static_cast<int>(rows->size()) && i < *size; ++i) {
    ToWebhook((*rows)[i], resp->add_webhooks());
  }
  if (static_cast<int>(rows->size()) > *size) {
    resp->set_next_page_token(
        PageToken(*tenant, "webhooks", (*rows)[*size - 1].name));
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::DeleteWebhook(grpc::ServerContext* ctx,
                                         const v1::DeleteWebhookRequest* req,
                                         v1::DeleteWebhookResponse*) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant = Tenant(ctx, req->tenant(), Role::kAdmin);
  if (!tenant.ok()) return Reply(tenant.status());
  if (absl::Status s = WebhooksServed(webhooks); !s.ok()) return Reply(s);
  return Reply(webhooks->Delete(*tenant, req->name()));
}

}  // namespace vouch::verifier
