#include "sdk/client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <thread>

#include "common/status_macros.h"

namespace vouch::sdk {
namespace {

constexpr int kMaxReplyBytes = 20 << 20;  // admin.proto: up to 20 MiB.

}  // namespace

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    const ClientOptions& options) {
  ClientOptions o = options;
  if (o.max_receive_bytes == 0) o.max_receive_bytes = kMaxReplyBytes;
  VOUCH_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel,
                         CreateChannel(o));
  return std::unique_ptr<Client>(new Client(v1::Admin::NewStub(channel)));
}

absl::StatusOr<v1::AgentStatus> Client::GetAgent(const std::string& agent_id,
                                                 const std::string& tenant) {
  v1::GetAgentStatusRequest req;
  req.set_tenant(tenant);
  req.set_agent_id(agent_id);
  v1::AgentStatus out;
  VOUCH_RETURN_IF_ERROR(Call(&v1::Admin::Stub::GetAgentStatus, req, &out));
  return out;
}

absl::StatusOr<std::vector<v1::AgentStatus>> Client::ListAgents(
    const std::vector<v1::AttestationState>& states,
    const std::string& tenant) {
  v1::ListAgentsRequest req;
  req.set_tenant(tenant);
  for (v1::AttestationState s : states) req.add_states(s);
  std::vector<v1::AgentStatus> out;
  do {
    v1::ListAgentsResponse page;
    VOUCH_RETURN_IF_ERROR(Call(&v1::Admin::Stub::ListAgents, req, &page));
    out.insert(out.end(), page.agents().begin(), page.agents().end());
    req.set_page_token(page.next_page_token());
  } while (!req.page_token().empty());
  return out;
}

absl::StatusOr<v1::AgentStatus> Client::Enroll(
    const v1::EnrollAgentRequest& request) {
  v1::AgentStatus out;
  VOUCH_RETURN_IF_ERROR(Call(&v1::Admin::Stub::EnrollAgent, request, &out));
  return out;
}

absl::Status Client::Unenroll(const std::string& agent_id,
                              const std::string& tenant) {
  v1::UnenrollAgentRequest req;
  req.set_tenant(tenant);
  req.set_agent_id(agent_id);
  v1::UnenrollAgentResponse unused;
  return Call(&v1::Admin::Stub::UnenrollAgent, req, &unused);
}

absl::StatusOr<v1::Policy> Client::AddPolicy(
    const v1::AddPolicyRequest& request) {
  v1::Policy out;
  VOUCH_RETURN_IF_ERROR(Call(&v1::Admin::Stub::AddPolicy, request, &out));
  return out;
}

absl::StatusOr<v1::Policy> Client::UpdatePolicy(
    const v1::UpdatePolicyRequest& request) {
  v1::Policy out;
  VOUCH_RETURN_IF_ERROR(Call(&v1::Admin::Stub::UpdatePolicy, request, &out));
  return out;
}

absl::StatusOr<v1::Policy> Client::GetPolicy(const std::string& name,
                                             uint64_t version,
                                             const std::string& tenant) {
  v1::GetPolicyRequest req;
  req.set_tenant(tenant);
  req.set_name(name);
  req.set_version(version);
  v1::Policy out;
  VOUCH_RETURN_IF_ERROR(Call(&v1::Admin::Stub::GetPolicy, req, &out));
  return out;
}

absl::StatusOr<std::vector<v1::Policy>> Client::ListPolicies(
    const std::string& tenant) {
  v1::ListPoliciesRequest req;
  req.set_tenant(tenant);
  std::vector<v1::Policy> out;
  do {
    v1::ListPoliciesResponse page;
    VOUCH_RETURN_IF_ERROR(Call(&v1::Admin::Stub::ListPolicies, req, &page));
    out.insert(out.end(), page.policies().begin(), page.policies().end());
    req.set_page_token(page.next_page_token());
  } while (!req.page_token().empty());
  return out;
}

absl::Status Client::RemovePolicy(const std::string& name,
                                  const std::string& tenant) {
  v1::RemovePolicyRequest req;
  req.set_tenant(tenant);
  req.set_name(name);
  v1::RemovePolicyResponse unused;
  return Call(&v1::Admin::Stub::RemovePolicy, req, &unused);
}

absl::Status Client::Watch(
    v1::WatchRequest request,
    const std::function<bool(const v1::WatchEvent&)>& on_event,
    absl::Duration retry) {
  while (true) {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader =
        stub_->Watch(&ctx, request);
    v1::WatchEvent event;
    while (reader->Read(&event)) {
      request.set_resume_token(event.resume_token());
      if (!on_event(event)) {
        ctx.TryCancel();
        (void)reader->Finish();
        return absl::OkStatus();
      }
    }
    grpc::Status st = reader->Finish();
    if (st.error_code() != grpc::StatusCode::UNAVAILABLE) return FromGrpc(st);
    std::this_thread::sleep_for(
        std::chrono::microseconds(absl::ToInt64Microseconds(retry)));
  }
}

}  // namespace vouch::sdk
