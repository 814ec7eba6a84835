#include "server/limits.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <sys/resource.h>

#include <climits>
#include <string>

#include "absl/strings/str_cat.h"

namespace vouch::server {
namespace {

constexpr char kSection[] = "grpc";
// The largest TLS record a server writes (GRPC_ARG_TSI_MAX_FRAME_SIZE).
constexpr int kTlsMaxFrameBytes = 4096;

// A duration key as gRPC's int milliseconds; kInvalidArgument naming it.
absl::StatusOr<int> Millis(const Config& config, const char* key) {
  const absl::Duration d = config.GetDuration(kSection, key);
  if (d < absl::ZeroDuration() || d > absl::Milliseconds(INT_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(
        kSection, ".", key, ": must be between 0 and 24 days, got ",
        absl::FormatDuration(d)));
  }
  return static_cast<int>(absl::ToInt64Milliseconds(d));
}

int Ms(absl::Duration d) {
  return static_cast<int>(absl::ToInt64Milliseconds(d));
}

}  // namespace

void AddServerLimitKeys(ConfigSchema& schema) {
  const ServerLimits d;
  schema
      .Int(kSection, "max_concurrent_streams", d.max_concurrent_streams,
           "HTTP/2 streams one connection may have open at once", 1, 100000)
      .Duration(kSection, "max_connection_idle", d.max_connection_idle,
                "Close a connection without calls after this long (0: never)")
      .Duration(kSection, "max_connection_age", d.max_connection_age,
                "Ask clients to reconnect after this long, +-10% (0: never); "
                "agents resume their stream on a new connection")
      .Duration(kSection, "max_connection_age_grace",
                d.max_connection_age_grace,
                "Calls still open this long after max_connection_age are cut")
      .Duration(kSection, "keepalive_time", d.keepalive_time,
                "Ping a client after this long without traffic")
      .Duration(kSection, "keepalive_timeout", d.keepalive_timeout,
                "Close the connection when a ping is not answered in this long")
      .Duration(kSection, "min_ping_interval", d.min_ping_interval,
                "Clients pinging more often than this earn a strike")
      .Bool(kSection, "permit_keepalive_without_calls",
            d.permit_keepalive_without_calls,
            "Accept client pings on connections without calls (agents ping "
            "their attestation connection)")
      .Int(kSection, "max_ping_strikes", d.max_ping_strikes,
           "Strikes (pings too often) before the connection is closed", 0, 1000)
      .Int(kSection, "max_header_list_bytes", d.max_header_list_bytes,
           "Largest header list (metadata) of one call", 1024, 1 << 20)
      .Duration(kSection, "handshake_timeout", d.handshake_timeout,
                "Close a connection that has not finished its TLS handshake "
                "in this long")
      .Int(kSection, "max_threads", d.max_threads,
           "Threads for blocking handlers (Admin, Registrar calls, Watch); "
           "calls beyond get RESOURCE_EXHAUSTED",
           4, 100000)
      .Int(kSection, "max_memory_bytes", d.max_memory_bytes,
           "Memory gRPC may use for connection and call buffers", 16 << 20,
           int64_t{1} << 40);
}

absl::StatusOr<ServerLimits> ServerLimitsFromConfig(const Config& config) {
  ServerLimits l;
  l.max_concurrent_streams =
      static_cast<int>(config.GetInt(kSection, "max_concurrent_streams"));
  struct DurationKey {
    const char* key;
    absl::Duration* out;
  };
  for (const DurationKey& k : {
           DurationKey{"max_connection_idle", &l.max_connection_idle},
           DurationKey{"max_connection_age", &l.max_connection_age},
           DurationKey{"max_connection_age_grace", &l.max_connection_age_grace},
           DurationKey{"keepalive_time", &l.keepalive_time},
           DurationKey{"keepalive_timeout", &l.keepalive_timeout},
           DurationKey{"min_ping_interval", &l.min_ping_interval},
           DurationKey{"handshake_timeout", &l.handshake_timeout},
       }) {
    absl::StatusOr<int> ms = Millis(config, k.key);
    if (!ms.ok()) return ms.status();
    *k.out = absl::Milliseconds(*ms);
  }
  if (l.handshake_timeout == absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "grpc.handshake_timeout: must be positive");
  }
  l.permit_keepalive_without_calls =
      config.GetBool(kSection, "permit_keepalive_without_calls");
  l.max_ping_strikes =
      static_cast<int>(config.GetInt(kSection, "max_ping_strikes"));
  l.max_header_list_bytes =
      static_cast<int>(config.GetInt(kSection, "max_header_list_bytes"));
  l.max_threads = static_cast<int>(config.GetInt(kSection, "max_threads"));
  l.max_memory_bytes = config.GetInt(kSection, "max_memory_bytes");
  return l;
}

void ApplyServerLimits(const ServerLimits& l, grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             l.max_concurrent_streams);
  // gRPC reads INT_MAX as "never" for the connection timers.
  auto never_if_zero = [](absl::Duration d) {
    return d == absl::ZeroDuration() ? INT_MAX : Ms(d);
  };
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             never_if_zero(l.max_connection_idle));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                             never_if_zero(l.max_connection_age));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                             Ms(l.max_connection_age_grace));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, Ms(l.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             Ms(l.keepalive_timeout));
  // The server's own keepalive pings go out also on quiet connections.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      Ms(l.min_ping_interval));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
                             l.permit_keepalive_without_calls ? 1 : 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES,
                             l.max_ping_strikes);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE,
                             l.max_header_list_bytes);
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             Ms(l.handshake_timeout));
  // Per-connection memory (docs/scaling.md): TLS records of at most 4 KiB
  // out (gRPC's default, 16 KiB, is a buffer held by every connection; the
  // records it receives may be of any size), and no channelz (Vouch serves
  // no channelz service; each socket otherwise keeps a node for it).
  builder.AddChannelArgument(GRPC_ARG_TSI_MAX_FRAME_SIZE, kTlsMaxFrameBytes);
  builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ, 0);
  grpc::ResourceQuota quota("vouch-server");
  quota.SetMaxThreads(l.max_threads);
  quota.Resize(static_cast<size_t>(l.max_memory_bytes));
  builder.SetResourceQuota(quota);
}

uint64_t RaiseOpenFileLimit() {
  struct rlimit files {};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0) return 0;
  if (files.rlim_cur < files.rlim_max) {
    struct rlimit raised = files;
    raised.rlim_cur = files.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) files = raised;
  }
  return files.rlim_cur == RLIM_INFINITY
             ? UINT64_MAX
             : static_cast<uint64_t>(files.rlim_cur);
}

}  // namespace vouch::server
