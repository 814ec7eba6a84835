// The [grpc] limits both servers read (server/limits.h): defaults, the
// checks on durations, that gRPC accepts every argument they set, and the
// open-file limit a server raises at start.
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "common/config.h"
#include "server/limits.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch::server {
namespace {

absl::StatusOr<ServerLimits> FromToml(const std::string& toml) {
  static const ConfigSchema* schema = [] {
    auto* s = new ConfigSchema();
    AddServerLimitKeys(*s);
    return s;
  }();
  absl::StatusOr<Config> cfg = ParseConfigText(*schema, toml, "test.toml");
  if (!cfg.ok()) return cfg.status();
  return ServerLimitsFromConfig(*cfg);
}

TEST_CASE("server limits: the defaults are the documented safe ones",
          "[abuse]") {
  absl::StatusOr<ServerLimits> l = FromToml("");
  REQUIRE(l.ok());
  const ServerLimits want;
  CHECK(l->max_concurrent_streams == want.max_concurrent_streams);
  CHECK(l->max_connection_age == absl::Hours(1));
  CHECK(l->max_connection_age_grace == absl::Minutes(1));
  CHECK(l->handshake_timeout == absl::Seconds(10));
  CHECK(l->min_ping_interval == absl::Seconds(5));
  CHECK(l->max_header_list_bytes == 16 * 1024);
  CHECK(l->max_threads == 256);
}

TEST_CASE("server limits: out-of-range values are refused naming the key",
          "[abuse]") {
  absl::StatusOr<ServerLimits> zero =
      FromToml("[grpc]\nhandshake_timeout = \"0s\"\n");
  REQUIRE(!zero.ok());
  CHECK(absl::StrContains(zero.status().message(), "grpc.handshake_timeout"));
  absl::StatusOr<ServerLimits> long_age =
      FromToml("[grpc]\nmax_connection_age = \"800h\"\n");
  REQUIRE(!long_age.ok());
  CHECK(absl::StrContains(long_age.status().message(),
                          "grpc.max_connection_age"));
  CHECK(!FromToml("[grpc]\nmax_concurrent_streams = 0\n").ok());
  CHECK(!FromToml("[grpc]\nmax_threads = 1\n").ok());
}

TEST_CASE("server limits: a server built with them starts and serves",
          "[abuse]") {
  absl::StatusOr<ServerLimits> l = FromToml(
      "[grpc]\nmax_connection_age = \"0s\"\nmax_connection_idle = "
      "\"0s\"\n");
  REQUIRE(l.ok());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  ApplyServerLimits(*l, builder);
  v1::Registrar::Service unimplemented;  // every method UNIMPLEMENTED
  builder.RegisterService(&unimplemented);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  REQUIRE(server != nullptr);
  REQUIRE(port > 0);
  auto stub = v1::Registrar::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::GetRegisteredAgentRequest req;
  v1::RegisteredAgent resp;
  CHECK(stub->GetRegisteredAgent(&ctx, req, &resp).error_code() ==
        grpc::StatusCode::UNIMPLEMENTED);
  server->Shutdown();
}

TEST_CASE("server limits: the open-file limit is raised to the hard limit",
          "[abuse]") {
  struct rlimit before {};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &before) == 0);
  REQUIRE(before.rlim_max > 64);  // any real system
  struct rlimit low = before;
  low.rlim_cur = 64;  // as a service manager may start us
  REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
  const uint64_t raised = RaiseOpenFileLimit();
  struct rlimit after {};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &after) == 0);
  CHECK(after.rlim_cur == before.rlim_max);
  CHECK(raised == (before.rlim_max == RLIM_INFINITY
                       ? UINT64_MAX
                       : static_cast<uint64_t>(before.rlim_max)));
}

}  // namespace
}  // namespace vouch::server
