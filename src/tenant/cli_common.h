// File: tenant/cli_common.h
// What vouchctl's server commands share: RFC 3339 times, YAML output of
// flat JSON records, the exit code and message for a failed RPC, and the
// channel from the [client] settings. Not thread-safe (CLI use).
#ifndef VOUCH_TENANT_CLI_COMMON_H_
#define VOUCH_TENANT_CLI_COMMON_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "common/app.h"
#include "google/protobuf/timestamp.pb.h"

namespace vouch::tenant {

std::string Rfc3339(const google::protobuf::Timestamp& t);

// YAML for flat records and arrays of flat records: every value is a JSON
// scalar, which YAML reads as the same value.
void PrintYaml(const nlohmann::json& j, const std::string& indent,
               std::ostream& out);

// Prints "vouchctl <command>: <message>" with a hint for connection
// trouble; returns 1 when the server refused (not found, permission,
// invalid argument, precondition, ...), 2 for connection trouble.
int RpcError(const std::string& command, const grpc::Status& status,
             const std::string& server, const std::string& service);
int RpcError(const std::string& command, const absl::Status& status,
             const std::string& server, const std::string& service);

// The channel to --server with --tls-dir; prints the error and returns
// nullptr on failure.
std::shared_ptr<grpc::Channel> ClientChannel(AppContext& ctx,
                                             const std::string& command,
                                             std::string* server);

inline std::chrono::system_clock::time_point RpcDeadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(15);
}

}  // namespace vouch::tenant

#endif  // VOUCH_TENANT_CLI_COMMON_H_
