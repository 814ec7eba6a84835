// File: server/limits.h
// The HTTP/2 and connection limits every Vouch server (registrar, verifier)
// sets on its gRPC server, declared once as the [grpc] config section with
// safe defaults. They bound what one peer can make a server hold: streams per
// connection, idle and old connections, pings, header bytes, unfinished TLS
// handshakes, threads and memory. They are what configuration can do about
// the HTTP/2 weaknesses of the gRPC release Debian 12 ships
// (docs/security.md). Thread-safe (pure functions of the config).
//
//   AddServerLimitKeys(spec.schema);                   // when declaring keys
//   VOUCH_ASSIGN_OR_RETURN(ServerLimits l, ServerLimitsFromConfig(cfg));
//   ApplyServerLimits(l, builder);                      // before BuildAndStart
#ifndef VOUCH_SERVER_LIMITS_H_
#define VOUCH_SERVER_LIMITS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config.h"

namespace grpc {
class ServerBuilder;
}  // namespace grpc

namespace vouch::server {

// Values of the [grpc] section. A zero duration means "off" only where the
// comment says so.
struct ServerLimits {
  int max_concurrent_streams = 100;  // per connection (SETTINGS)
  absl::Duration max_connection_idle = absl::Minutes(5);  // 0: off
  absl::Duration max_connection_age = absl::Hours(1);     // 0: off; ±10%
  absl::Duration max_connection_age_grace = absl::Minutes(1);
  absl::Duration keepalive_time = absl::Minutes(1);  // server pings
  absl::Duration keepalive_timeout = absl::Seconds(20);
  absl::Duration min_ping_interval = absl::Seconds(5);  // peers' pings
  bool permit_keepalive_without_calls = true;
  int max_ping_strikes = 2;
  int max_header_list_bytes = 16 * 1024;
  absl::Duration handshake_timeout = absl::Seconds(10);
  int max_threads = 256;  // sync handlers (Admin, Registrar)
  int64_t max_memory_bytes = int64_t{1} << 30;  // gRPC's buffers
};

// Declares [grpc] max_concurrent_streams, max_connection_idle, ... with the
// defaults above, so both servers read the same keys.
void AddServerLimitKeys(ConfigSchema& schema);

// The [grpc] values; kInvalidArgument naming the key when a duration is
// negative or longer than 24 days (gRPC takes milliseconds as an int).
absl::StatusOr<ServerLimits> ServerLimitsFromConfig(const Config& config);

// Sets the limits as channel arguments and a resource quota on `builder`.
void ApplyServerLimits(const ServerLimits& limits,
                       grpc::ServerBuilder& builder);

// Raises this process's soft limit of open files to its hard limit (every
// connection is a socket, and systemd starts services with a soft limit of
// 1,024) and returns the soft limit then in force; 0 when it cannot be read.
uint64_t RaiseOpenFileLimit();

}  // namespace vouch::server

#endif  // VOUCH_SERVER_LIMITS_H_
