#include "tenant/cli_common.h"

#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "tenant/contexts.h"

namespace vouch::tenant {
namespace {

const char* ServiceName(Service s) {
  return s == Service::kRegistrar ? "registrar" : "verifier";
}

const char* GrpcServiceName(Service s) {
  return s == Service::kRegistrar ? "vouch.v1.Registrar" : "vouch.v1.Admin";
}

const char* AddressHint(Service s) {
  return s == Service::kRegistrar
             ? "--registrar, VOUCH_REGISTRAR or the context's registrar"
             : "--server, VOUCH_SERVER or the context's verifier";
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "ok";
    case grpc::StatusCode::CANCELLED:
      return "cancelled";
    case grpc::StatusCode::UNKNOWN:
      return "unknown error";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "invalid argument";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "deadline exceeded";
    case grpc::StatusCode::NOT_FOUND:
      return "not found";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "already exists";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "permission denied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "resource exhausted";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "failed precondition";
    case grpc::StatusCode::ABORTED:
      return "aborted";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "out of range";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "unimplemented";
    case grpc::StatusCode::INTERNAL:
      return "internal error";
    case grpc::StatusCode::UNAVAILABLE:
      return "unavailable";
    case grpc::StatusCode::DATA_LOSS:
      return "data loss";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "unauthenticated";
    default:
      return "error";
  }
}

}  // namespace

std::string Rfc3339(const google::protobuf::Timestamp& t) {
  return absl::FormatTime(
      "%Y-%m-%dT%H:%M:%E3SZ",
      absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos()),
      absl::UTCTimeZone());
}

int RpcError(const std::string& command, const grpc::Status& st,
             const std::string& server, Service service) {
  std::cerr << "vouchctl " << command << ": ";
  if (st.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    // The address answered but serves another API: most often a verifier
    // asked registrar questions or the other way round.
    std::cerr << "the server at " << server << " does not serve the "
              << ServiceName(service) << " API (" << GrpcServiceName(service)
              << "): it is not a " << ServiceName(service) << "; give the "
              << ServiceName(service) << "'s address with "
              << AddressHint(service);
    if (!st.error_message().empty()) {
      std::cerr << " (server said: " << st.error_message() << ")";
    }
    std::cerr << "\n";
    return 2;
  }
  std::cerr << (st.error_message().empty() ? CodeName(st.error_code())
                                           : st.error_message());
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
      std::cerr << " (is the " << ServiceName(service) << " at " << server
                << " up, and does --tls-dir hold a certificate of its CA?)\n";
      return 2;
    default:
      std::cerr << "\n";
      return 2;
  }
}

int RpcError(const std::string& command, const absl::Status& status,
             const std::string& server, Service service) {
  return RpcError(command,
                  grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                               std::string(status.message())),
                  server, service);
}

std::optional<sdk::ClientOptions> ClientOptionsFor(AppContext& ctx,
                                                   const std::string& command,
                                                   Service service) {
  absl::StatusOr<Endpoints> endpoints = ResolveEndpoints(ctx.config);
  if (!endpoints.ok()) {
    std::cerr << "vouchctl " << command << ": " << endpoints.status().message()
              << "\n";
    return std::nullopt;
  }
  sdk::ClientOptions opts;
  opts.server = service == Service::kRegistrar && !endpoints->registrar.empty()
                    ? endpoints->registrar
                    : endpoints->verifier;
  opts.tls_dir = endpoints->tls_dir;
  opts.max_receive_bytes = 20 << 20;  // admin.proto: up to 20 MiB replies.
  if (opts.server.empty()) {
    std::cerr << "vouchctl " << command << ": no " << ServiceName(service)
              << " address: give one with " << AddressHint(service)
              << " (vouchctl config set-context)\n";
    return std::nullopt;
  }
  // Several verifiers (a context's "a:1,b:2"): the first that accepts a
  // connection within two seconds, else the first.
  std::vector<std::string> candidates =
      absl::StrSplit(opts.server, ',', absl::SkipWhitespace());
  if (candidates.size() > 1) {
    opts.server = candidates.front();
    for (const std::string& c : candidates) {
      sdk::ClientOptions probe = opts;
      probe.server = std::string(absl::StripAsciiWhitespace(c));
      absl::StatusOr<std::shared_ptr<grpc::Channel>> ch =
          sdk::CreateChannel(probe);
      if (ch.ok() && (*ch)->WaitForConnected(std::chrono::system_clock::now() +
                                             std::chrono::seconds(2))) {
        opts.server = probe.server;
        break;
      }
    }
  }
  return opts;
}

std::shared_ptr<grpc::Channel> ClientChannel(AppContext& ctx,
                                             const std::string& command,
                                             Service service,
                                             std::string* server) {
  std::optional<sdk::ClientOptions> opts =
      ClientOptionsFor(ctx, command, service);
  if (!opts) return nullptr;
  *server = opts->server;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      sdk::CreateChannel(*opts);
  if (!channel.ok()) {
    std::cerr << "vouchctl " << command << ": " << channel.status().message()
              << "\n";
    return nullptr;
  }
  return *channel;
}

std::unique_ptr<sdk::Client> AdminClient(AppContext& ctx,
                                         const std::string& command,
                                         std::string* server) {
  std::optional<sdk::ClientOptions> opts =
      ClientOptionsFor(ctx, command, Service::kVerifier);
  if (!opts) return nullptr;
  *server = opts->server;
  absl::StatusOr<std::unique_ptr<sdk::Client>> client =
      sdk::Client::Connect(*opts);
  if (!client.ok()) {
    std::cerr << "vouchctl " << command << ": " << client.status().message()
              << "\n";
    return nullptr;
  }
  return *std::move(client);
}

}  // namespace vouch::tenant
