#include "harness/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vouch::testing {
namespace {

constexpr int kPairAttempts = 50;

// Owns a socket descriptor.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

absl::Status ErrnoStatus(const char* what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Binds `sock` to 127.0.0.1:`port` (0 = kernel's choice) and returns the bound
// port. No SO_REUSEADDR: a port in TIME_WAIT counts as taken.
absl::StatusOr<int> BindLoopback(const Socket& sock, int port) {
  if (sock.fd() < 0) return ErrnoStatus("socket");
  sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(sock.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus("bind 127.0.0.1");
  }
  socklen_t len = sizeof(addr);
  if (getsockname(sock.fd(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return ErrnoStatus("getsockname");
  }
  return static_cast<int>(ntohs(addr.sin_port));
}

}  // namespace

absl::StatusOr<int> PickFreePort() {
  Socket sock(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return BindLoopback(sock, 0);
}

absl::StatusOr<int> PickFreePortPair() {
  for (int attempt = 0; attempt < kPairAttempts; ++attempt) {
    // Keep P bound while probing P+1 so the pair is checked together.
    Socket first(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    absl::StatusOr<int> port = BindLoopback(first, 0);
    if (!port.ok()) return port.status();
    if (*port >= 65535) continue;
    Socket second(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (BindLoopback(second, *port + 1).ok()) return *port;
  }
  return absl::UnavailableError(
      absl::StrCat("no two adjacent free ports on 127.0.0.1 after ",
                   kPairAttempts, " attempts"));
}

}  // namespace vouch::testing
