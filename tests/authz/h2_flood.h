// File: authz/h2_flood.h
// Test-only misbehaving clients for the abuse tests, written against the
// raw socket so they can do what no gRPC client does: TCP connections that
// never start TLS, TLS handshakes dribbled a byte at a time, and an HTTP/2
// connection (RFC 9113) that opens streams with HEADERS and cancels each at
// once with RST_STREAM (the "rapid reset" pattern of CVE-2023-44487).
// Loopback only; not thread-safe (one object per thread).
//
//   VOUCH_ASSIGN_OR_RETURN(auto h2, H2Client::Connect(port, files));
//   VOUCH_ASSIGN_OR_RETURN(int sent, h2->RapidReset(10000, "/pkg.Svc/M"));
#ifndef VOUCH_TESTS_AUTHZ_H2_FLOOD_H_
#define VOUCH_TESTS_AUTHZ_H2_FLOOD_H_

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vouch::authz {

// A TCP connection to 127.0.0.1:`port`; the fd, or an error. The caller
// closes it.
absl::StatusOr<int> ConnectTcp(int port);

// Whether the peer has closed `fd` (a read returns 0 or an error other than
// "would block"); reads and discards whatever the peer sent.
bool PeerClosed(int fd);

// The first flight of a TLS client handshake (a ClientHello offering "h2"),
// as bytes to dribble onto a socket.
absl::StatusOr<std::string> ClientHelloBytes();

// Client certificate files for H2Client.
struct ClientFiles {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// One TLS connection speaking raw HTTP/2 frames.
class H2Client {
 public:
  // TLS 1.2+ with the client certificate, ALPN "h2", then the connection
  // preface and an empty SETTINGS frame.
  static absl::StatusOr<std::unique_ptr<H2Client>> Connect(
      int port, const ClientFiles& files);
  ~H2Client();

  // Opens `streams` streams with HEADERS for a gRPC POST to `path`, each
  // reset at once with RST_STREAM(CANCEL), reading and discarding what the
  // server sends in between. The number of HEADERS+RST_STREAM pairs written
  // before the server closed the connection (== `streams` when it did not).
  absl::StatusOr<int> RapidReset(int streams, const std::string& path);

 private:
  H2Client() = default;
  absl::Status WriteAll(const std::string& bytes);
  // Reads what is readable now; false once the server closed.
  bool Drain();

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool acked_settings_ = false;
  uint32_t next_stream_ = 1;
};

}  // namespace vouch::authz

#endif  // VOUCH_TESTS_AUTHZ_H2_FLOOD_H_
