#include "tenant/cli_common.h"

#include <iostream>

#include "absl/time/time.h"
#include "sdk/channel.h"

namespace vouch::tenant {

std::string Rfc3339(const google::protobuf::Timestamp& t) {
  return absl::FormatTime(
      "%Y-%m-%dT%H:%M:%E3SZ",
      absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos()),
      absl::UTCTimeZone());
}

void PrintYaml(const nlohmann::json& j, const std::string& indent,
               std::ostream& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it->is_array()) {
      out << indent << it.key() << ":" << (it->empty() ? " []" : "") << "\n";
      for (const auto& item : *it) {
        if (!item.is_object()) {
          out << indent << "- " << item.dump() << "\n";
          continue;
        }
        bool first = true;
        for (auto f = item.begin(); f != item.end(); ++f) {
          out << indent << (first ? "- " : "  ") << f.key() << ": " << f->dump()
              << "\n";
          first = false;
        }
      }
    } else {
      out << indent << it.key() << ": " << it->dump() << "\n";
    }
  }
}

int RpcError(const std::string& command, const grpc::Status& st,
             const std::string& server, const std::string& service) {
  std::cerr << "vouchctl " << command << ": " << st.error_message();
  switch (st.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::UNAUTHENTICATED:
      std::cerr << "\n";
      return 1;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      std::cerr << " (is the " << service << " at " << server
                << " up, and does --tls-dir hold a certificate of its CA?)\n";
      return 2;
    default:
      std::cerr << "\n";
      return 2;
  }
}

int RpcError(const std::string& command, const absl::Status& status,
             const std::string& server, const std::string& service) {
  return RpcError(command,
                  grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                               std::string(status.message())),
                  server, service);
}

std::shared_ptr<grpc::Channel> ClientChannel(AppContext& ctx,
                                             const std::string& command,
                                             std::string* server) {
  sdk::ClientOptions opts;
  opts.server = ctx.config.GetString("client", "server");
  opts.tls_dir = ctx.config.GetString("client", "tls_dir");
  opts.max_receive_bytes = 20 << 20;  // admin.proto: up to 20 MiB replies.
  *server = opts.server;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      sdk::CreateChannel(opts);
  if (!channel.ok()) {
    std::cerr << "vouchctl " << command << ": " << channel.status().message()
              << "\n";
    return nullptr;
  }
  return *channel;
}

}  // namespace vouch::tenant
