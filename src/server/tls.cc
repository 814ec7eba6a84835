#include "server/tls.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace vouch::server {
namespace {

absl::StatusOr<std::string> ReadPemKey(const Config& config, const char* key) {
  const std::string path = config.GetString("tls", key);
  if (path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls.", key, " is not set (see `vouchctl ca`)"));
  }
  absl::StatusOr<std::string> text = ReadPemFile(path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls.", key, ": ", text.status().message()));
  }
  return text;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>>
ServerCredentialsFromConfig(const Config& config, ClientCerts client_certs) {
  grpc::SslServerCredentialsOptions ssl(
      client_certs == ClientCerts::kRequired
          ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
          : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  VOUCH_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemKey(config, "ca_file"));
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  VOUCH_ASSIGN_OR_RETURN(pair.cert_chain, ReadPemKey(config, "cert_file"));
  VOUCH_ASSIGN_OR_RETURN(pair.private_key, ReadPemKey(config, "key_file"));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(ssl);
}

absl::StatusOr<ListenSetup> ListenSetupFromConfig(const Config& config,
                                                  ClientCerts client_certs) {
  ListenSetup setup;
  VOUCH_ASSIGN_OR_RETURN(setup.credentials,
                         ServerCredentialsFromConfig(config, client_certs));
  VOUCH_ASSIGN_OR_RETURN(setup.limits, ServerLimitsFromConfig(config));
  return setup;
}

absl::Status WritePortFile(const std::string& path, int port) {
  if (path.empty()) return absl::OkStatus();
  const std::string tmp = absl::StrCat(path, ".tmp");
  const std::string text = absl::StrCat(port, "\n");
  const int fd =
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  const bool written =
      write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const bool closed = close(fd) == 0;
  if (!written || !closed || std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

std::unique_ptr<grpc::Server> StartServing(grpc::ServerBuilder& builder,
                                           const int& port,
                                           const std::string& listen,
                                           const std::string& port_file,
                                           const std::string& role) {
  // gRPC sets SO_REUSEPORT by default: then a second process of the same
  // user may bind the same port (even one the kernel picked for port 0)
  // and take a share of the connections. A server's port is its own.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Log(LogLevel::kError, "cannot listen", {{"listen", listen}});
    return nullptr;
  }
  if (absl::Status s = WritePortFile(port_file, port); !s.ok()) {
    Log(LogLevel::kError, "cannot write the port file",
        {{"error", s.message()}});
    return nullptr;
  }
  Log(LogLevel::kInfo, role + " serving", {{"listen", listen}, {"port", port}});
  return server;
}

}  // namespace vouch::server
