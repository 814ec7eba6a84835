// File: sdk/channel.h
// How SDK users (and vouchctl) reach a Vouch server: a gRPC channel built
// from a server address and a TLS directory holding ca.pem, client.pem and
// client.key (what `vouchctl ca issue --client` writes). Plaintext is only
// for tests on loopback and must be asked for by name. Thread-safe: the
// returned channel may be shared.
//
//   ClientOptions opts{.server = "verifier.example:8991", .tls_dir = dir};
//   VOUCH_ASSIGN_OR_RETURN(auto channel, CreateChannel(opts));
#ifndef VOUCH_SDK_CHANNEL_H_
#define VOUCH_SDK_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace vouch::sdk {

struct ClientOptions {
  std::string server;   // host:port
  std::string tls_dir;  // ca.pem, client.pem, client.key
  // Explicit files (the agent's [tls] config); each one set overrides the
  // file of the same role in tls_dir, and tls_dir may then be empty.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // Server-authenticated TLS only: trust ca_file (or tls_dir/ca.pem) and
  // present no client certificate (an agent joining with a token).
  bool no_client_cert = false;
  // Test-only: connect without TLS. Refused unless the server is a loopback
  // address (127.0.0.0/8, [::1] or localhost).
  bool insecure_loopback_for_testing = false;
  // Overrides the name checked against the server certificate.
  std::string tls_server_name;
  // HTTP/2 keepalive pings every this many ms, also with no call active,
  // so a long-lived stream to a vanished server is noticed; 0: off.
  int keepalive_ms = 0;
  // Spread calls over every address a DNS name resolves to (gRPC's
  // round_robin policy) instead of sticking to the first.
  bool round_robin = false;
  // Estimate the link's bandwidth-delay product with extra HTTP/2 pings to
  // size the flow-control window (gRPC's default). A caller that only
  // exchanges small messages turns it off: no pings, less code per message.
  bool bdp_probe = true;
  // Largest message accepted from the server; 0: gRPC's default (4 MiB).
  int max_receive_bytes = 0;
};

// kInvalidArgument when the options are incomplete or the TLS files are
// missing/unreadable (naming the file). The channel connects lazily.
absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateChannel(
    const ClientOptions& options);

}  // namespace vouch::sdk

#endif  // VOUCH_SDK_CHANNEL_H_
