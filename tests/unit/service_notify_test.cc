// sd_notify readiness: what a Type=notify unit's manager receives, and that
// outside systemd (NOTIFY_SOCKET unset) notifying is a harmless no-op.
#include "server/service_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <string>

#include "harness/temp_dir.h"

namespace vouch::server {
namespace {

// A stand-in for systemd's notification socket: a bound AF_UNIX datagram
// socket whose path goes into NOTIFY_SOCKET.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof(addr.sun_path));
    std::memcpy(addr.sun_path, path.data(), path.size());
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    setenv("NOTIFY_SOCKET", path.c_str(), 1);
  }
  ~NotifySocket() {
    unsetenv("NOTIFY_SOCKET");
    close(fd_);
  }
  // The next datagram (the sender already wrote it: sd_notify is synchronous).
  std::string Receive() {
    char buf[512];
    const ssize_t n = recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    REQUIRE(n >= 0);
    return std::string(buf, static_cast<size_t>(n));
  }

 private:
  int fd_ = -1;
};

TEST_CASE("readiness and stopping reach the service manager",
          "[server][notify]") {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("notify-");
  REQUIRE(dir.ok());
  NotifySocket manager(dir->Join("notify"));
  REQUIRE(NotifyReady("serving on port 8443").ok());
  CHECK(manager.Receive() == "READY=1\nSTATUS=serving on port 8443");
  // A status cannot smuggle a second assignment in.
  REQUIRE(NotifyStatus("line one\nREADY=1").ok());
  CHECK(manager.Receive() == "STATUS=line one READY=1");
  REQUIRE(NotifyStopping().ok());
  CHECK(manager.Receive() == "STOPPING=1\nSTATUS=draining");
}

TEST_CASE("outside systemd notifying is a no-op", "[server][notify]") {
  unsetenv("NOTIFY_SOCKET");
  CHECK(NotifyReady("serving").ok());
  CHECK(NotifyStopping().ok());
}

TEST_CASE("an unreachable notification socket is reported, not fatal",
          "[server][notify]") {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("notify-");
  REQUIRE(dir.ok());
  const std::string path = dir->Join("nobody-listens");
  setenv("NOTIFY_SOCKET", path.c_str(), 1);
  const absl::Status s = NotifyReady("serving");
  unsetenv("NOTIFY_SOCKET");
  CHECK(s.code() == absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace vouch::server
