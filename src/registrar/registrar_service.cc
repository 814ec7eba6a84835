#include "registrar/registrar_service.h"

#include <openssl/rand.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/bytes.h"
#include "common/logging.h"
#include "common/principal.h"
#include "common/status_macros.h"
#include "core/agent_id.h"
#include "core/attest/register.h"
#include "core/tpm/credential.h"
#include "server/auth.h"
#include "server/proto_time.h"
#include "store/pg_connection.h"

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
  absl::StatusOr<std::string> tenant = AgentTenant(ctx, id);
  if (!tenant.ok()) return Fail("register refused", id, tenant.status());
  if (!register_limiter_.Allow(server::PeerHost(ctx->peer()), absl::Now())) {
    return Fail("register refused", id,
                absl::ResourceExhaustedError(
                    "too many Register calls from this address; retry later"));
  }
  absl::StatusOr<ValidRegistration> v = ValidateRegister(
      *req, ek_cas_.get(), options_.require_ek_cert, absl::Now());
  if (!v.ok()) return Fail("register refused", id, v.status());
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
  store::PendingChallenge challenge{std::string(AsString(secret)),
                                    req->aik_public(), v->aik_name,
                                    options_.challenge_ttl};
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
  absl::StatusOr<std::string> tenant = AgentTenant(ctx, id);
  if (!tenant.ok()) return Fail("activate refused", id, tenant.status());
  if (req->hmac().size() != 32) {
    return Fail("activate refused", id,
                absl::InvalidArgumentError("hmac: must be exactly 32 bytes"));
  }
  // RFC 2104 HMAC-SHA256 keyed with the recovered secret over agent_id,
  // compared in constant time; the expected value is never logged.
  auto proof_ok = [&](const std::string& secret) {
    absl::StatusOr<Bytes> expected =
        core::tpm::ActivationProof(AsBytes(secret), id);
    return expected.ok() && ConstantTimeEquals(*expected, AsBytes(req->hmac()));
  };
  absl::StatusOr<store::ActivateOutcome> outcome =
      store_->Activate(*tenant, id, proof_ok);
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
    case store::ActivateOutcome::kActivated:
      break;
  }
  absl::StatusOr<store::Registration> reg = store_->Get(*tenant, id);
  if (!reg.ok()) return Fail("activate failed", id, reg.status());
  ToProto(*reg, /*full=*/true, resp->mutable_agent());
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

}  // namespace vouch::registrar
