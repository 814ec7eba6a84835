// File: sdk/client.h
// The C++ client of the Admin API for orchestration tools (vouchctl is
// built on it): connect with mTLS from a TLS directory, enroll and unenroll
// agents, read their state, follow state changes, manage policies. Errors
// are absl::Status with the server's code and message (NOT_FOUND,
// PERMISSION_DENIED, ...). A Client is thread-safe; calls block (deadline
// `ClientOptions`-independent: 15 s per unary call).
//
//   sdk::ClientOptions o{.server = "verifier:8991", .tls_dir = "~/.vouch"};
//   VOUCH_ASSIGN_OR_RETURN(auto client, sdk::Client::Connect(o));
//   VOUCH_ASSIGN_OR_RETURN(auto agents, client->ListAgents());
//   client->Watch({}, [](const v1::WatchEvent& e) { ...; return true; });
#ifndef VOUCH_SDK_CLIENT_H_
#define VOUCH_SDK_CLIENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sdk/channel.h"
#include "vouch/v1/admin.grpc.pb.h"

namespace vouch::sdk {

// grpc::Status -> absl::Status, code and message kept.
absl::Status FromGrpc(const grpc::Status& status);

class Client {
 public:
  // The channel connects lazily: a bad address shows at the first call.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const ClientOptions& options);

  // `tenant` empty: the caller's only tenant.
  absl::StatusOr<v1::AgentStatus> GetAgent(const std::string& agent_id,
                                           const std::string& tenant = "");
  // Every page, by agent_id; `states` empty: all.
  absl::StatusOr<std::vector<v1::AgentStatus>> ListAgents(
      const std::vector<v1::AttestationState>& states = {},
      const std::string& tenant = "");
  absl::StatusOr<v1::AgentStatus> Enroll(const v1::EnrollAgentRequest& request);
  absl::Status Unenroll(const std::string& agent_id,
                        const std::string& tenant = "");

  absl::StatusOr<v1::Policy> AddPolicy(const v1::AddPolicyRequest& request);
  absl::StatusOr<v1::Policy> UpdatePolicy(
      const v1::UpdatePolicyRequest& request);
  absl::StatusOr<v1::Policy> GetPolicy(const std::string& name,
                                       uint64_t version = 0,
                                       const std::string& tenant = "");
  absl::StatusOr<std::vector<v1::Policy>> ListPolicies(
      const std::string& tenant = "");
  absl::Status RemovePolicy(const std::string& name,
                            const std::string& tenant = "");

  // Follows events: calls `on_event` for each one (heartbeats included)
  // until it returns false (then OK). When the server goes away
  // (UNAVAILABLE) it reconnects after `retry` with the last resume token,
  // so no event is missed; other errors are returned.
  absl::Status Watch(v1::WatchRequest request,
                     const std::function<bool(const v1::WatchEvent&)>& on_event,
                     absl::Duration retry = absl::Seconds(1));

  // Any unary Admin RPC with a 15 s deadline, e.g.
  //   client.Call(&v1::Admin::Stub::ListAgents, request, &response);
  template <typename Req, typename Resp>
  absl::Status Call(grpc::Status (v1::Admin::Stub::*method)(
                        grpc::ClientContext*, const Req&, Resp*),
                    const Req& request, Resp* response) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(15));
    return FromGrpc(((*stub_).*method)(&ctx, request, response));
  }

  // The generated stub, for streaming RPCs this class does not wrap.
  v1::Admin::Stub& stub() { return *stub_; }

 private:
  explicit Client(std::unique_ptr<v1::Admin::Stub> stub)
      : stub_(std::move(stub)) {}
  std::unique_ptr<v1::Admin::Stub> stub_;
};

}  // namespace vouch::sdk

#endif  // VOUCH_SDK_CLIENT_H_
