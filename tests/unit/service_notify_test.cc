// sd_notify readiness: what a Type=notify unit's manager receives, and that
// outside systemd (NOTIFY_SOCKET unset) notifying is a harmless no-op.
#include "server/service_notify.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <optional>
#include <string>

#include "harness/notify_socket.h"
#include "harness/temp_dir.h"

namespace vouch::server {
namespace {

using testing::NotifySocket;
using testing::TempDir;

TEST_CASE("readiness and stopping reach the service manager",
          "[server][notify]") {
  absl::StatusOr<TempDir> dir = TempDir::Create("notify-");
  REQUIRE(dir.ok());
  absl::StatusOr<NotifySocket> manager = NotifySocket::Bind(dir->Join("n"));
  REQUIRE(manager.ok());
  setenv("NOTIFY_SOCKET", manager->path().c_str(), 1);
  // sd_notify has sent the datagram when it returns.
  REQUIRE(NotifyReady("serving on port 8443").ok());
  CHECK(manager->Receive() ==
        std::optional<std::string>("READY=1\nSTATUS=serving on port 8443"));
  // A status cannot smuggle a second assignment in.
  REQUIRE(NotifyStatus("line one\nREADY=1").ok());
  CHECK(manager->Receive() ==
        std::optional<std::string>("STATUS=line one READY=1"));
  REQUIRE(NotifyStopping().ok());
  CHECK(manager->Receive() ==
        std::optional<std::string>("STOPPING=1\nSTATUS=draining"));
  unsetenv("NOTIFY_SOCKET");
}

TEST_CASE("outside systemd notifying is a no-op", "[server][notify]") {
  unsetenv("NOTIFY_SOCKET");
  CHECK(NotifyReady("serving").ok());
  CHECK(NotifyStopping().ok());
}

TEST_CASE("an unreachable notification socket is reported, not fatal",
          "[server][notify]") {
  absl::StatusOr<TempDir> dir = TempDir::Create("notify-");
  REQUIRE(dir.ok());
  const std::string path = dir->Join("nobody-listens");
  setenv("NOTIFY_SOCKET", path.c_str(), 1);
  const absl::Status s = NotifyReady("serving");
  unsetenv("NOTIFY_SOCKET");
  CHECK(s.code() == absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace vouch::server
