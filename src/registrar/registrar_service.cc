#include "registrar/registrar_service.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/app.h"
#include "common/bytes.h"
#include "common/logging.h"
#include "common/principal.h"
#include "common/status_macros.h"
#include "core/agent_id.h"
#include "core/attest/join.h"
#include "core/attest/register.h"
#include "core/tpm/credential.h"
#include "server/auth.h"
#include "server/proto_time.h"
#include "store/pg_connection.h"
#include "vouch/v1/common.pb.h"

namespace vouch::registrar {
namespace {

using core::attest::kMaxPageTokenBytes;
using core::attest::ValidateRegister;
using core::attest::ValidRegistration;

// The caller must be the agent named in the request; returns its tenant.
absl::StatusOr<std::string> AgentTenant(grpc::ServerContext* ctx,
                                        const std::string& agent_id) {
  VOUCH_ASSIGN_OR_RETURN(Principal caller,
                         server::CallerPrincipal(*ctx->auth_context()));
  std::optional<Grant> agent = caller.Agent();
  if (!agent || agent->name != agent_id) {
    return absl::PermissionDeniedError(
        "agent_id is not the identity of the client certificate");
  }
  return agent->tenant;
}

// An operator RPC: the tenant it acts on, when the caller holds `role`.
absl::StatusOr<std::string> OperatorTenant(grpc::ServerContext* ctx,
                                           const std::string& requested,
                                           Role role) {
  VOUCH_ASSIGN_OR_RETURN(Principal caller,
                         server::CallerPrincipal(*ctx->auth_context()));
  return caller.ResolveTenant(requested, role);
}

absl::Status CheckAgentId(const std::string& id) {
  absl::Status s = core::ValidateAgentId(id);
  if (s.ok()) return s;
  return absl::InvalidArgumentError(absl::StrCat("agent_id: ", s.message()));
}

void ToProto(const store::Registration& r, bool full,
             v1::RegisteredAgent* out) {
  out->set_agent_id(r.agent_id);
  out->set_tenant(r.tenant);
  out->set_active(!r.aik_name.empty());
  out->set_activation_pending(!r.pending_aik_name.empty());
  out->set_ek_sha256(r.ek_sha256);
  out->set_aik_name(r.aik_name);
  out->set_pending_aik_name(r.pending_aik_name);
  out->set_ek_certificate_issuer(r.ek_certificate_issuer);
  out->set_agent_version(r.agent_version);
  out->mutable_labels()->insert(r.labels.begin(), r.labels.end());
  server::SetTimestamp(r.registered_at, out->mutable_registered_at());
  if (r.activated_at)
    server::SetTimestamp(*r.activated_at, out->mutable_activated_at());
  if (full) {
    out->set_ek_public(r.ek_public);
    out->set_ek_certificate(r.ek_certificate);
    for (const std::string& c : r.ek_intermediates) {
      out->add_ek_intermediates(c);
    }
    out->set_aik_public(r.aik_public);
  }
}

// Short message to the peer, the detail to the log.
grpc::Status Fail(absl::string_view what, const std::string& agent_id,
                  const absl::Status& status) {
  Log(LogLevel::kWarning, std::string(what),
      {{"agent_id", agent_id},
       {"code", absl::StatusCodeToString(status.code())},
       {"error", status.message()}});
  if (absl::IsUnavailable(status) || absl::IsInternal(status)) {
    return server::ToGrpcStatus(absl::Status(
        status.code(), absl::IsUnavailable(status)
                           ? "registrar database unavailable; retry"
                           : "internal error"));
  }
  return server::ToGrpcStatus(status);
}

absl::Status JoinTokenRefusal(store::JoinTokenState state) {
  switch (state) {
    case store::JoinTokenState::kUsable:
      return absl::OkStatus();
    case store::JoinTokenState::kUnknown:
      return absl::PermissionDeniedError("join_token: unknown token");
    case store::JoinTokenState::kRevoked:
      return absl::PermissionDeniedError("join_token: the token was revoked");
    case store::JoinTokenState::kExpired:
      return absl::PermissionDeniedError("join_token: the token expired");
    case store::JoinTokenState::kUsedUp:
      return absl::PermissionDeniedError(
          "join_token: the token is used up (no joins left)");
  }
  return absl::PermissionDeniedError("join_token: refused");
}

void ToProto(const store::JoinTokenRecord& t, v1::JoinToken* out) {
  out->set_id(t.id);
  out->set_tenant(t.tenant);
  out->set_uses(t.uses);
  out->set_used(t.used);
  if (t.expires_at)
    server::SetTimestamp(*t.expires_at, out->mutable_expires_at());
  server::SetTimestamp(t.created_at, out->mutable_created_at());
  out->set_description(t.description);
  out->set_revoked(t.revoked);
}

std::string PageToken(const std::string& tenant, std::optional<bool> active,
                      const std::string& last) {
  return absl::BytesToHexString(absl::StrCat(
      tenant, "\n", active ? (*active ? "1" : "0") : "-", "\n", last));
}

}  // namespace

RegistrarService::RegistrarService(
    store::PgRegistrarStore* store,
    std::unique_ptr<core::tpm::EkCertVerifier> ek_cas,
    const RegistrarOptions& options)
    : store_(store),
      ek_cas_(std::move(ek_cas)),
      options_(options),
      register_limiter_(options.max_register_per_minute) {}

grpc::Status RegistrarService::Register(grpc::ServerContext* ctx,
                                        const v1::RegisterRequest* req,
                                        v1::RegisterResponse* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  const std::string& id = req->agent_id();
  // A certificate holder may register only the agent it names: refused
  // before anything else is looked at.
  if (server::CallerPrincipal(*ctx->auth_context()).ok()) {
    absl::StatusOr<std::string> named = AgentTenant(ctx, id);
    if (!named.ok()) return Fail("register refused", id, named.status());
  }
  if (!register_limiter_.Allow(server::PeerHost(ctx->peer()), absl::Now())) {
    return Fail("register refused", id,
                absl::ResourceExhaustedError(
                    "too many Register calls from this address; retry later"));
  }
  absl::StatusOr<ValidRegistration> v = ValidateRegister(
      *req, ek_cas_.get(), options_.require_ek_cert, absl::Now());
  if (!v.ok()) return Fail("register refused", id, v.status());
  absl::StatusOr<Joiner> joiner = RegisterCaller(
      ctx, *req, v->ek_sha256, !v->csr_spki.empty(), v->ek.public_area);
  if (!joiner.ok()) return Fail("register refused", id, joiner.status());
  const std::string* tenant = &joiner->tenant;
  if (options_.require_agent_id_is_ek_hash &&
      id != core::AgentIdFromEk(v->ek_sha256)) {
    return Fail("register refused", id,
                absl::InvalidArgumentError(
                    "agent_id: must be the lower-case hex SHA-256 of the EK's "
                    "SubjectPublicKeyInfo on this registrar"));
  }

  // TPM 2.0 Part 1, 24: a fresh secret sealed to the EK and the AIK's Name.
  Bytes secret(32);
  Bytes randomness(core::tpm::CredentialRandomBytes(v->ek.public_area));
  if (RAND_bytes(secret.data(), static_cast<int>(secret.size())) != 1 ||
      (!randomness.empty() &&
       RAND_bytes(randomness.data(), static_cast<int>(randomness.size())) !=
           1)) {
    return Fail("register failed", id, absl::InternalError("RAND_bytes"));
  }
  absl::StatusOr<core::tpm::Credential> credential = core::tpm::MakeCredential(
      v->ek, ToBytes(v->aik_name), secret, randomness);
  if (!credential.ok()) {
    return Fail("register refused", id,
                absl::InvalidArgumentError(absl::StrCat(
                    "ek_public: ", credential.status().message())));
  }
  store::Registration reg;
  reg.agent_id = id;
  reg.tenant = *tenant;
  reg.ek_public = req->ek_public();
  reg.ek_sha256 = v->ek_sha256;
  reg.ek_certificate = req->ek_certificate();
  reg.ek_intermediates.assign(req->ek_intermediates().begin(),
                              req->ek_intermediates().end());
  reg.ek_certificate_issuer = v->ek_certificate_issuer;
  reg.agent_version = req->agent_version();
  reg.labels_json = core::attest::LabelsJson(v->labels);
  store::PendingChallenge challenge{std::string(AsString(secret)),
                                    req->aik_public(),
                                    v->aik_name,
                                    options_.challenge_ttl,
                                    v->csr_spki,
                                    joiner->join_token_sha256,
                                    joiner->ek_ca};
  absl::StatusOr<absl::Time> expires = store_->Register(reg, challenge);
  if (!expires.ok()) return Fail("register refused", id, expires.status());
  resp->set_credential_blob(std::string(AsString(credential->credential_blob)));
  resp->set_encrypted_secret(
      std::string(AsString(credential->encrypted_secret)));
  server::SetTimestamp(*expires, resp->mutable_expires_at());
  Log(LogLevel::kInfo, "agent registered; challenge issued",
      {{"agent_id", id},
       {"tenant", *tenant},
       {"ek_sha256", HexEncode(AsBytes(v->ek_sha256))},
       {"aik_name", HexEncode(AsBytes(v->aik_name))}});
  return grpc::Status::OK;
}

grpc::Status RegistrarService::Activate(grpc::ServerContext* ctx,
                                        const v1::ActivateRequest* req,
                                        v1::ActivateResponse* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  const std::string& id = req->agent_id();
  if (absl::Status s = CheckAgentId(id); !s.ok()) {
    return Fail("activate refused", "", s);
  }
  if (req->hmac().size() != 32) {
    return Fail("activate refused", id,
                absl::InvalidArgumentError("hmac: must be exactly 32 bytes"));
  }
  absl::StatusOr<std::string> tenant = ActivateTenant(ctx, id);
  if (!tenant.ok()) return Fail("activate refused", id, tenant.status());
  // RFC 2104 HMAC-SHA256 keyed with the recovered secret over agent_id (and
  // the requested key's hash, when a certificate was requested), compared
  // in constant time; the expected value is never logged.
  auto proof_ok = [&](const std::string& secret, const std::string& spki) {
    absl::StatusOr<Bytes> expected =
        spki.empty()
            ? core::tpm::ActivationProof(AsBytes(secret), id)
            : core::tpm::ActivationProofForKey(AsBytes(secret), id, spki);
    return expected.ok() && ConstantTimeEquals(*expected, AsBytes(req->hmac()));
  };
  store::ActivateDetails details;
  absl::StatusOr<store::ActivateOutcome> outcome =
      store_->Activate(*tenant, id, proof_ok, &details);
  const std::string& csr_spki = details.csr_spki;
  if (!outcome.ok()) return Fail("activate failed", id, outcome.status());
  switch (*outcome) {
    case store::ActivateOutcome::kNoChallenge:
      return Fail("activate refused", id,
                  absl::NotFoundError(
                      "no pending challenge for this agent; register again"));
    case store::ActivateOutcome::kExpired:
      return Fail("activate refused", id,
                  absl::FailedPreconditionError(
                      "the challenge expired; register again"));
    case store::ActivateOutcome::kBadProof:
      return Fail("activate refused", id,
                  absl::PermissionDeniedError(
                      "the proof does not match the challenge; register "
                      "again"));
    case store::ActivateOutcome::kOtherTpm:
      return Fail("activate refused", id,
                  absl::FailedPreconditionError(
                      "this agent_id is bound to another TPM; an admin must "
                      "delete its registration first"));
    case store::ActivateOutcome::kTokenRefused:
      return Fail("activate refused", id,
                  absl::PermissionDeniedError(
                      "join_token: revoked, expired or used up since "
                      "Register"));
    case store::ActivateOutcome::kActivated:
      break;
  }
  const std::string rule =
      details.first_activation ? AfterActivation(*tenant, id) : "";
  absl::StatusOr<store::Registration> reg = store_->Get(*tenant, id);
  if (!reg.ok()) return Fail("activate failed", id, reg.status());
  ToProto(*reg, /*full=*/true, resp->mutable_agent());
  resp->mutable_agent()->set_enrolled_by_rule(rule);
  if (!csr_spki.empty()) {
    if (options_.agent_issuer == nullptr) {
      return Fail("activate failed", id,
                  absl::InternalError("no agent-issuing CA"));
    }
    absl::StatusOr<sdk::IssuedCertificate> cert = options_.agent_issuer->Issue(
        csr_spki, *tenant, id, options_.agent_cert_lifetime, absl::Now());
    if (!cert.ok()) return Fail("certificate issue failed", id, cert.status());
    resp->set_certificate_chain(cert->chain_pem);
    server::SetTimestamp(cert->not_after,
                         resp->mutable_certificate_expires_at());
    Log(LogLevel::kInfo, "agent certificate issued",
        {{"agent_id", id},
         {"tenant", *tenant},
         {"not_after", absl::FormatTime(cert->not_after)}});
  }
  Log(LogLevel::kInfo, "agent activated",
      {{"agent_id", id},
       {"tenant", *tenant},
       {"aik_name", HexEncode(AsBytes(reg->aik_name))}});
  return grpc::Status::OK;
}

grpc::Status RegistrarService::GetRegisteredAgent(
    grpc::ServerContext* ctx, const v1::GetRegisteredAgentRequest* req,
    v1::RegisteredAgent* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      OperatorTenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) {
    return Fail("get refused", req->agent_id(), tenant.status());
  }
  if (absl::Status s = CheckAgentId(req->agent_id()); !s.ok()) {
    return server::ToGrpcStatus(s);
  }
  absl::StatusOr<store::Registration> reg =
      store_->Get(*tenant, req->agent_id());
  if (!reg.ok()) return Fail("get failed", req->agent_id(), reg.status());
  ToProto(*reg, /*full=*/true, resp);
  return grpc::Status::OK;
}

grpc::Status RegistrarService::ListRegisteredAgents(
    grpc::ServerContext* ctx, const v1::ListRegisteredAgentsRequest* req,
    v1::ListRegisteredAgentsResponse* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      OperatorTenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return Fail("list refused", "", tenant.status());
  if (req->page_size() < 0) {
    return server::ToGrpcStatus(
        absl::InvalidArgumentError("page_size: must not be negative"));
  }
  const int size =
      req->page_size() == 0 ? 100 : std::min(req->page_size(), 1000);
  std::optional<bool> active;
  if (req->has_active()) active = req->active();
  std::string after;
  if (!req->page_token().empty()) {
    const std::string raw = req->page_token().size() <= kMaxPageTokenBytes
                                ? absl::HexStringToBytes(req->page_token())
                                : "";
    std::vector<std::string> parts =
        absl::StrSplit(raw, absl::MaxSplits('\n', 2));
    const std::string want_prefix =
        absl::HexStringToBytes(PageToken(*tenant, active, ""));
    if (parts.size() != 3 ||
        absl::StrCat(parts[0], "\n", parts[1], "\n") != want_prefix) {
      return server::ToGrpcStatus(absl::InvalidArgumentError(
          "page_token: not from a previous response to this request"));
    }
    after = parts[2];
  }
  absl::StatusOr<std::vector<store::Registration>> page =
      store_->List(*tenant, after, active, size + 1);
  if (!page.ok()) return Fail("list failed", "", page.status());
  const bool more = static_cast<int>(page->size()) > size;
  if (more) page->resize(size);
  for (const store::Registration& r : *page) {
    ToProto(r, /*full=*/false, resp->add_agents());
  }
  if (more)
    resp->set_next_page_token(
        PageToken(*tenant, active, page->back().agent_id));
  return grpc::Status::OK;
}

grpc::Status RegistrarService::DeleteRegisteredAgent(
    grpc::ServerContext* ctx, const v1::DeleteRegisteredAgentRequest* req,
    v1::DeleteRegisteredAgentResponse*) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      OperatorTenant(ctx, req->tenant(), Role::kAdmin);
  if (!tenant.ok()) {
    return Fail("delete refused", req->agent_id(), tenant.status());
  }
  if (absl::Status s = CheckAgentId(req->agent_id()); !s.ok()) {
    return server::ToGrpcStatus(s);
  }
  absl::Status s = store_->Delete(*tenant, req->agent_id());
  if (!s.ok()) return Fail("delete failed", req->agent_id(), s);
  Log(LogLevel::kInfo, "registration deleted",
      {{"agent_id", req->agent_id()}, {"tenant", *tenant}});
  return grpc::Status::OK;
}

absl::StatusOr<RegistrarService::Joiner> RegistrarService::RegisterCaller(
    grpc::ServerContext* ctx, const v1::RegisterRequest& req,
    const std::string& ek_sha256, bool has_csr, const TPMT_PUBLIC& ek) {
  absl::StatusOr<Principal> caller =
      server::CallerPrincipal(*ctx->auth_context());
  if (absl::IsUnauthenticated(caller.status())) {
    // Onboarding: no certificate yet. The token names the tenant; without
    // one, the EK-CA mapping may.
    if (options_.agent_issuer == nullptr) {
      return absl::UnauthenticatedError(
          "a client certificate is required (this registrar issues none)");
    }
    if (!has_csr) {
      return absl::InvalidArgumentError(
          "csr: required without a client certificate");
    }
    if (req.join_token().empty()) {
      if (options_.ek_ca_tenants.empty()) {
        return absl::InvalidArgumentError(
            "join_token: required without a client certificate");
      }
      // The chain was verified against ek_ca_dir already (ValidateRegister);
      // here only which mapped CA it reaches matters.
      const std::vector<std::string> intermediates(
          req.ek_intermediates().begin(), req.ek_intermediates().end());
      for (const RegistrarOptions::EkCaTenant& m : options_.ek_ca_tenants) {
        if (req.ek_certificate().empty()) break;
        if (m.cas
                ->Verify(AsBytes(req.ek_certificate()), intermediates, ek,
                         absl::Now())
                .passed()) {
          return Joiner{m.tenant, "", /*ek_ca=*/true};
        }
      }
      return absl::PermissionDeniedError(
          "join_token: required (the EK certificate maps to no tenant)");
    }
    const std::string sha = Sha256(req.join_token());
    VOUCH_ASSIGN_OR_RETURN(auto state, store_->CheckJoinToken(sha));
    VOUCH_RETURN_IF_ERROR(JoinTokenRefusal(state.first));
    return Joiner{state.second, sha};
  }
  VOUCH_ASSIGN_OR_RETURN(std::string tenant, AgentTenant(ctx, req.agent_id()));
  if (!req.join_token().empty()) {
    return absl::InvalidArgumentError(
        "join_token: not accepted with a client certificate");
  }
  if (has_csr) {
    // Renewal: only an agent whose registration is still active, with this
    // TPM, gets a new certificate.
    if (options_.agent_issuer == nullptr) {
      return absl::FailedPreconditionError(
          "csr: this registrar issues no certificates");
    }
    absl::StatusOr<store::Registration> reg =
        store_->Get(tenant, req.agent_id());
    if (absl::IsNotFound(reg.status()) ||
        (reg.ok() && (!reg->activated_at || reg->ek_sha256 != ek_sha256))) {
      return absl::PermissionDeniedError(
          "no active registration of this TPM to renew (deleted?); join "
          "again with a token");
    }
    VOUCH_RETURN_IF_ERROR(reg.status());
  }
  return Joiner{tenant, ""};
}

absl::StatusOr<std::string> RegistrarService::ActivateTenant(
    grpc::ServerContext* ctx, const std::string& agent_id) {
  absl::StatusOr<Principal> caller =
      server::CallerPrincipal(*ctx->auth_context());
  if (!absl::IsUnauthenticated(caller.status())) {
    return AgentTenant(ctx, agent_id);
  }
  if (options_.agent_issuer == nullptr) return caller.status();
  // Only a registration that joined with a token activates without a
  // certificate; the proof still needs the TPM.
  absl::StatusOr<std::string> tenant = store_->JoinChallengeTenant(agent_id);
  if (absl::IsNotFound(tenant.status())) {
    return absl::NotFoundError(
        "no pending join challenge for this agent; register again");
  }
  return tenant;
}

grpc::Status RegistrarService::CreateJoinToken(
    grpc::ServerContext* ctx, const v1::CreateJoinTokenRequest* req,
    v1::CreateJoinTokenResponse* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      OperatorTenant(ctx, req->tenant(), Role::kAdmin);
  if (!tenant.ok()) return Fail("token create refused", "", tenant.status());
  const int uses = req->uses() == 0 ? 1 : req->uses();
  if (uses < 1 || uses > 1000000) {
    return server::ToGrpcStatus(
        absl::InvalidArgumentError("uses: must be 0 (= 1) .. 1000000"));
  }
  if (req->ttl_seconds() < 0 || req->ttl_seconds() > 366 * 24 * 3600) {
    return server::ToGrpcStatus(absl::InvalidArgumentError(
        "ttl_seconds: must be 0 (never expires) .. 366 days"));
  }
  if (req->description().size() > 256 ||
      !std::all_of(req->description().begin(), req->description().end(),
                   [](char c) {
                     return absl::ascii_isprint(static_cast<unsigned char>(c));
                   })) {
    return server::ToGrpcStatus(absl::InvalidArgumentError(
        "description: at most 256 bytes of printable ASCII"));
  }
  Bytes random(32);
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    return Fail("token create failed", "", absl::InternalError("RAND_bytes"));
  }
  const std::string token = absl::StrCat("vjt_", HexEncode(random));
  absl::StatusOr<store::JoinTokenRecord> record = store_->CreateJoinToken(
      *tenant, Sha256(token), uses, absl::Seconds(req->ttl_seconds()),
      req->description());
  if (!record.ok()) return Fail("token create failed", "", record.status());
  resp->set_token(token);
  ToProto(*record, resp->mutable_info());
  Log(LogLevel::kInfo, "join token created",
      {{"id", record->id}, {"tenant", *tenant}, {"uses", uses}});
  return grpc::Status::OK;
}

grpc::Status RegistrarService::ListJoinTokens(
    grpc::ServerContext* ctx, const v1::ListJoinTokensRequest* req,
    v1::ListJoinTokensResponse* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      OperatorTenant(ctx, req->tenant(), Role::kAdmin);
  if (!tenant.ok()) return Fail("token list refused", "", tenant.status());
  absl::StatusOr<std::vector<store::JoinTokenRecord>> all =
      store_->ListJoinTokens(*tenant);
  if (!all.ok()) return Fail("token list failed", "", all.status());
  for (const store::JoinTokenRecord& t : *all) ToProto(t, resp->add_tokens());
  return grpc::Status::OK;
}

grpc::Status RegistrarService::DeleteJoinToken(
    grpc::ServerContext* ctx, const v1::DeleteJoinTokenRequest* req,
    v1::DeleteJoinTokenResponse*) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      OperatorTenant(ctx, req->tenant(), Role::kAdmin);
  if (!tenant.ok()) return Fail("token delete refused", "", tenant.status());
  if (req->id().empty() || req->id().size() > 64) {
    return server::ToGrpcStatus(
        absl::InvalidArgumentError("id: must be 1..64 bytes"));
  }
  absl::Status s = store_->DeleteJoinToken(*tenant, req->id());
  if (!s.ok()) return Fail("token delete failed", "", s);
  Log(LogLevel::kInfo, "join token revoked",
      {{"id", req->id()}, {"tenant", *tenant}});
  return grpc::Status::OK;
}

std::string RegistrarService::AfterActivation(const std::string& tenant,
                                              const std::string& agent_id) {
  if (options_.enroller == nullptr) return "";
  absl::StatusOr<std::optional<store::EnrollmentRuleRecord>> rule =
      store_->MatchingRule(tenant, agent_id);
  if (!rule.ok() || !rule->has_value()) {
    if (!rule.ok()) {
      Log(LogLevel::kWarning, "enrollment rules not applied",
          {{"agent_id", agent_id}, {"error", rule.status().message()}});
    }
    return "";
  }
  const store::EnrollmentRuleRecord& r = **rule;
  store::Enrollment e;
  e.tenant = tenant;
  e.agent_id = agent_id;
  e.runtime_policy = r.runtime_policy;
  e.boot_policy = r.boot_policy;
  e.interval = r.interval;
  e.hash_alg = v1::HASH_ALGORITHM_SHA256;
  e.enrolled_by = absl::StrCat("rule:", r.name);
  absl::StatusOr<store::AgentRow> enrolled = options_.enroller->Enroll(e);
  if (absl::IsAlreadyExists(enrolled.status())) return "";
  if (!enrolled.ok()) {
    Log(LogLevel::kWarning, "enrollment rule matched but enrolling failed",
        {{"agent_id", agent_id},
         {"rule", r.name},
         {"error", enrolled.status().message()}});
    return "";
  }
  Log(LogLevel::kInfo, "agent enrolled by rule",
      {{"agent_id", agent_id}, {"tenant", tenant}, {"rule", r.name}});
  return r.name;
}

namespace {

absl::StatusOr<std::string> LabelsJsonOf(
    const google::protobuf::Map<std::string, std::string>& labels,
    absl::string_view field) {
  if (labels.size() > static_cast<size_t>(core::attest::kMaxLabels)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": at most 16 labels"));
  }
  std::map<std::string, std::string> m(labels.begin(), labels.end());
  VOUCH_RETURN_IF_ERROR(core::attest::ValidateLabels(m, field));
  return core::attest::LabelsJson(m);
}

bool ValidRuleName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
           c == '_' || c == '-';
  });
}

void ToProto(const store::EnrollmentRuleRecord& r, v1::EnrollmentRule* out) {
  out->set_tenant(r.tenant);
  out->set_name(r.name);
  out->mutable_selector()->insert(r.selector.begin(), r.selector.end());
  out->set_runtime_policy(r.runtime_policy);
  out->set_boot_policy(r.boot_policy);
  out->set_interval_seconds(
      static_cast<int32_t>(absl::ToInt64Seconds(r.interval)));
  server::SetTimestamp(r.created_at, out->mutable_created_at());
}

}  // namespace

grpc::Status RegistrarService::SetAgentLabels(
    grpc::ServerContext* ctx, const v1::SetAgentLabelsRequest* req,
    v1::RegisteredAgent* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      OperatorTenant(ctx, req->tenant(), Role::kOperator);
  if (!tenant.ok()) {
    return Fail("label refused", req->agent_id(), tenant.status());
  }
  if (absl::Status s = CheckAgentId(req->agent_id()); !s.ok()) {
    return server::ToGrpcStatus(s);
  }
  absl::StatusOr<std::string> json = LabelsJsonOf(req->labels(), "labels");
  if (!json.ok()) return server::ToGrpcStatus(json.status());
  absl::Status s = store_->SetOperatorLabels(*tenant, req->agent_id(), *json);
  if (!s.ok()) return Fail("label failed", req->agent_id(), s);
  absl::StatusOr<store::Registration> reg =
      store_->Get(*tenant, req->agent_id());
  if (!reg.ok()) return Fail("label failed", req->agent_id(), reg.status());
  ToProto(*reg, /*full=*/false, resp);
  return grpc::Status::OK;
}

grpc::Status RegistrarService::CreateEnrollmentRule(
    grpc::ServerContext* ctx, const v1::EnrollmentRule* req,
    v1::EnrollmentRule* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      OperatorTenant(ctx, req->tenant(), Role::kAdmin);
  if (!tenant.ok()) return Fail("rule create refused", "", tenant.status());
  if (!ValidRuleName(req->name())) {
    return server::ToGrpcStatus(
        absl::InvalidArgumentError("name: 1..64 bytes of [A-Za-z0-9._-]"));
  }
  if (req->selector().empty()) {
    return server::ToGrpcStatus(
        absl::InvalidArgumentError("selector: at least one label"));
  }
  absl::StatusOr<std::string> json = LabelsJsonOf(req->selector(), "selector");
  if (!json.ok()) return server::ToGrpcStatus(json.status());
  for (const std::string* p : {&req->runtime_policy(), &req->boot_policy()}) {
    if (p->size() > 128) {
      return server::ToGrpcStatus(
          absl::InvalidArgumentError("policy names: at most 128 bytes"));
    }
  }
  if (req->runtime_policy().empty()) {
    return server::ToGrpcStatus(
        absl::InvalidArgumentError("runtime_policy: required"));
  }
  if (req->interval_seconds() < 0 ||
      req->interval_seconds() > core::attest::kMaxIntervalSeconds) {
    return server::ToGrpcStatus(
        absl::InvalidArgumentError("interval_seconds: 0 (= 60) .. 86400"));
  }
  store::EnrollmentRuleRecord rule;
  rule.tenant = *tenant;
  rule.name = req->name();
  rule.runtime_policy = req->runtime_policy();
  rule.boot_policy = req->boot_policy();
  rule.interval = absl::Seconds(req->interval_seconds() == 0
                                    ? core::attest::kDefaultIntervalSeconds
                                    : req->interval_seconds());
  absl::StatusOr<store::EnrollmentRuleRecord> created =
      store_->CreateRule(rule, *json);
  if (!created.ok()) return Fail("rule create failed", "", created.status());
  ToProto(*created, resp);
  Log(LogLevel::kInfo, "enrollment rule created",
      {{"rule", rule.name}, {"tenant", *tenant}});
  return grpc::Status::OK;
}

grpc::Status RegistrarService::ListEnrollmentRules(
    grpc::ServerContext* ctx, const v1::ListEnrollmentRulesRequest* req,
    v1::ListEnrollmentRulesResponse* resp) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      OperatorTenant(ctx, req->tenant(), Role::kViewer);
  if (!tenant.ok()) return Fail("rule list refused", "", tenant.status());
  absl::StatusOr<std::vector<store::EnrollmentRuleRecord>> all =
      store_->ListRules(*tenant);
  if (!all.ok()) return Fail("rule list failed", "", all.status());
  for (const auto& r : *all) ToProto(r, resp->add_rules());
  return grpc::Status::OK;
}

grpc::Status RegistrarService::GetServerInfo(grpc::ServerContext* ctx,
                                             const v1::GetServerInfoRequest*,
                                             v1::ServerInfo* resp) {
  absl::StatusOr<Principal> caller =
      server::CallerPrincipal(*ctx->auth_context());
  if (!caller.ok()) return server::ToGrpcStatus(caller.status());
  resp->set_server("vouch-registrar");
  resp->set_version(BuildVersion());
  resp->set_commit(BuildCommit());
  return grpc::Status::OK;
}

grpc::Status RegistrarService::DeleteEnrollmentRule(
    grpc::ServerContext* ctx, const v1::DeleteEnrollmentRuleRequest* req,
    v1::DeleteEnrollmentRuleResponse*) {
  const store::CallDeadline bound(server::ReplyBy(*ctx));
  absl::StatusOr<std::string> tenant =
      OperatorTenant(ctx, req->tenant(), Role::kAdmin);
  if (!tenant.ok()) return Fail("rule delete refused", "", tenant.status());
  if (!ValidRuleName(req->name())) {
    return server::ToGrpcStatus(
        absl::InvalidArgumentError("name: 1..64 bytes of [A-Za-z0-9._-]"));
  }
  absl::Status s = store_->DeleteRule(*tenant, req->name());
  if (!s.ok()) return Fail("rule delete failed", "", s);
  Log(LogLevel::kInfo, "enrollment rule deleted",
      {{"rule", req->name()}, {"tenant", *tenant}});
  return grpc::Status::OK;
}

}  // namespace vouch::registrar
