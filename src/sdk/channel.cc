#include "sdk/channel.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/status_macros.h"

namespace vouch::sdk {
namespace {

// True when `server` ("host:port" or "[v6]:port") names a loopback address:
// localhost, ::1, or an IPv4 literal in 127.0.0.0/8. Names are not resolved.
bool IsLoopback(const std::string& server) {
  std::string host;
  if (absl::StartsWith(server, "[")) {
    const size_t close = server.find(']');
    if (close == std::string::npos) return false;
    host = server.substr(1, close - 1);
  } else {
    host = server.substr(0, server.rfind(':'));
  }
  if (host == "localhost" || host == "::1") return true;
  in_addr v4;
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 &&
         (ntohl(v4.s_addr) >> 24) == 127;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateChannel(
    const ClientOptions& options) {
  if (options.server.empty()) {
    return absl::InvalidArgumentError(
        "no server address: set --server or VOUCH_SERVER");
  }
  grpc::ChannelArguments args;
  if (options.keepalive_ms > 0) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, options.keepalive_ms);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, options.keepalive_ms);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  if (!options.bdp_probe) args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  if (options.round_robin) args.SetLoadBalancingPolicyName("round_robin");
  if (options.max_receive_bytes > 0) {
    args.SetMaxReceiveMessageSize(options.max_receive_bytes);
  }
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  if (options.insecure_loopback_for_testing) {
    if (!IsLoopback(options.server)) {
      return absl::InvalidArgumentError(
          "plaintext is allowed only to a loopback address");
    }
    return grpc::CreateCustomChannel(options.server,
                                     grpc::InsecureChannelCredentials(), args);
  }
  const bool all_files =
      !options.ca_file.empty() &&
      (options.no_client_cert ||
       (!options.cert_file.empty() && !options.key_file.empty()));
  if (options.tls_dir.empty() && !all_files) {
    return absl::InvalidArgumentError(
        "no TLS directory: set --tls-dir or VOUCH_TLS_DIR (see `vouchctl ca`)");
  }
  auto pick = [&](const std::string& file, const char* name) {
    return file.empty() ? absl::StrCat(options.tls_dir, "/", name) : file;
  };
  grpc::SslCredentialsOptions ssl;
  VOUCH_ASSIGN_OR_RETURN(ssl.pem_root_certs,
                         ReadPemFile(pick(options.ca_file, "ca.pem")));
  if (options.no_client_cert) {
    return grpc::CreateCustomChannel(options.server, grpc::SslCredentials(ssl),
                                     args);
  }
  VOUCH_ASSIGN_OR_RETURN(ssl.pem_cert_chain,
                         ReadPemFile(pick(options.cert_file, "client.pem")));
  VOUCH_ASSIGN_OR_RETURN(ssl.pem_private_key,
                         ReadPemFile(pick(options.key_file, "client.key")));
  return grpc::CreateCustomChannel(options.server, grpc::SslCredentials(ssl),
                                   args);
}

}  // namespace vouch::sdk
