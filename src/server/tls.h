// File: server/tls.h
// How every Vouch server listens: mTLS from the [tls] config section (the CA
// that signs client certificates, the server's certificate and key), client
// certificates required and verified, TLS 1.2+; and, for tests and
// orchestration, the bound port written to a file so `listen = "...:0"` works.
// Thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(ListenSetup setup, ListenSetupFromConfig(cfg));
//   builder.AddListeningPort(cfg.GetString("registrar", "listen"),
//                            setup.credentials, &port);
//   ApplyServerLimits(setup.limits, builder);
#ifndef VOUCH_SERVER_TLS_H_
#define VOUCH_SERVER_TLS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/config.h"
#include "server/limits.h"

namespace grpc {
class Server;
class ServerBuilder;
class ServerCredentials;
}  // namespace grpc

namespace vouch::server {

// Whether a client must present a certificate. kOptional (the registrar
// when it onboards agents): a certificate that is presented must still
// chain to ca_file, and a call without one has no principal
// (CallerPrincipal is kUnauthenticated), so only RPCs that accept an
// anonymous caller (a join token) serve it.
enum class ClientCerts { kRequired, kOptional };

// Reads [tls] ca_file, cert_file, key_file (kInvalidArgument naming the key
// and file when one is missing or not PEM). Clients must present a
// certificate that chains to ca_file (unless `client_certs` is kOptional).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>>
ServerCredentialsFromConfig(const Config& config,
                            ClientCerts client_certs = ClientCerts::kRequired);

// What a server listens with: its mTLS credentials ([tls]) and its
// connection limits ([grpc], limits.h).
struct ListenSetup {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  ServerLimits limits;
};

// ServerCredentialsFromConfig and ServerLimitsFromConfig together; the
// first error.
absl::StatusOr<ListenSetup> ListenSetupFromConfig(
    const Config& config, ClientCerts client_certs = ClientCerts::kRequired);

// Builds and starts `builder` (whose listening port was added with
// `port`), then writes the bound port to `port_file` and logs
// "<role> serving". nullptr, after logging why, when it cannot listen or
// write the file.
std::unique_ptr<grpc::Server> StartServing(grpc::ServerBuilder& builder,
                                           const int& port,
                                           const std::string& listen,
                                           const std::string& port_file,
                                           const std::string& role);

// Writes `port` and a newline to `path` atomically (temp file + rename), so
// a reader never sees a partial number. A no-op when `path` is empty.
absl::Status WritePortFile(const std::string& path, int port);

}  // namespace vouch::server

#endif  // VOUCH_SERVER_TLS_H_
