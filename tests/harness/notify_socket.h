// File: harness/notify_socket.h
// NotifySocket: a stand-in for systemd's notification socket (sd_notify(3)):
// a bound AF_UNIX datagram socket at `path`; give a process
// NOTIFY_SOCKET=<path> and read what it reports. Test-only, header-only;
// one owner, not thread-safe.
//
//   absl::StatusOr<NotifySocket> manager = NotifySocket::Bind(dir.Join("n"));
//   ... start a daemon with {"NOTIFY_SOCKET", manager->path()} ...
//   std::optional<std::string> m = manager->Receive();  // "READY=1\n..."

#ifndef VOUCH_TESTS_HARNESS_NOTIFY_SOCKET_H_
#define VOUCH_TESTS_HARNESS_NOTIFY_SOCKET_H_

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace vouch::testing {

class NotifySocket {
 public:
  static absl::StatusOr<NotifySocket> Bind(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path)) {
      return absl::InvalidArgumentError("notify socket path too long");
    }
    std::memcpy(addr.sun_path, path.data(), path.size());
    const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError("socket(AF_UNIX) failed");
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      const int e = errno;
      close(fd);
      return absl::InternalError(absl::StrCat("bind ", path, ": errno ", e));
    }
    return NotifySocket(fd, path);
  }
  NotifySocket(NotifySocket&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)) {}
  NotifySocket& operator=(NotifySocket&&) = delete;
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;
  ~NotifySocket() {
    if (fd_ >= 0) close(fd_);
  }

  const std::string& path() const { return path_; }

  // The next datagram, or nullopt when none is waiting (never blocks).
  std::optional<std::string> Receive() {
    char buf[1024];
    const ssize_t n = recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  }

 private:
  NotifySocket(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

}  // namespace vouch::testing

#endif  // VOUCH_TESTS_HARNESS_NOTIFY_SOCKET_H_
