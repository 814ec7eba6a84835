// File: tenant/cli_common.h
// What vouchctl's server commands share: RFC 3339 times, failure codes as
// short names, the exit code and message for a failed RPC, and where to
// connect (contexts.h: flag > environment > context > vouchctl.toml).
// Output goes through output.h. Not thread-safe (CLI use).
#ifndef VOUCH_TENANT_CLI_COMMON_H_
#define VOUCH_TENANT_CLI_COMMON_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/app.h"
#include "google/protobuf/timestamp.pb.h"
#include "sdk/channel.h"
#include "sdk/client.h"

namespace vouch::tenant {

std::string Rfc3339(const google::protobuf::Timestamp& t);

// The two kinds of server vouchctl talks to.
enum class Service { kVerifier, kRegistrar };

// Prints "vouchctl <command>: <reason>" (never an empty reason: the status
// code's name stands in for a missing message) with a hint for connection
// trouble, and for UNIMPLEMENTED the server reached and the kind expected;
// returns 1 when the server refused (not found, permission, invalid
// argument, precondition, ...), 2 for connection trouble and the rest.
int RpcError(const std::string& command, const grpc::Status& status,
             const std::string& server, Service service);
int RpcError(const std::string& command, const absl::Status& status,
             const std::string& server, Service service);

// The SDK options for `service` from the resolved endpoints (contexts.h);
// prints the error and returns nullopt when there is no address.
// Registrar commands use the registrar address, and --server when none is
// set anywhere (the spelling before contexts).
std::optional<sdk::ClientOptions> ClientOptionsFor(AppContext& ctx,
                                                   const std::string& command,
                                                   Service service);

// The channel to `service`; prints the error and returns nullptr on
// failure. `server` receives the address.
std::shared_ptr<grpc::Channel> ClientChannel(AppContext& ctx,
                                             const std::string& command,
                                             Service service,
                                             std::string* server);

// The Admin API client of the verifier; prints the error and returns
// nullptr on failure.
std::unique_ptr<sdk::Client> AdminClient(AppContext& ctx,
                                         const std::string& command,
                                         std::string* server);

inline std::chrono::system_clock::time_point RpcDeadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(15);
}

}  // namespace vouch::tenant

#endif  // VOUCH_TENANT_CLI_COMMON_H_
