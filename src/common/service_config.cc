#include "common/service_config.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace vouch {

void AddTlsKeys(ConfigSchema& schema, absl::string_view role,
                absl::string_view ca_help) {
  schema.String("tls", "ca_file", "/etc/vouch/tls/ca.pem", std::string(ca_help))
      .String("tls", "cert_file", absl::StrCat("/etc/vouch/tls/", role, ".pem"),
              absl::StrCat("Certificate of this ", role))
      .String("tls", "key_file", absl::StrCat("/etc/vouch/tls/", role, ".key"),
              absl::StrCat("Private key of the ", role, "'s certificate"));
}

void AddDatabaseKeys(ConfigSchema& schema, int64_t default_max_connections) {
  schema
      .String("database", "url", "",
              "libpq connection string or postgresql:// URI of the shared "
              "database")
      .Int("database", "max_connections", default_max_connections,
           "Connection pool size", 1, 256)
      .Duration("database", "connect_timeout", absl::Seconds(5),
                "Longest wait for a new connection (TCP, TLS and login)")
      .Duration("database", "statement_timeout", absl::Seconds(10),
                "Server-side limit per statement; the client gives up on a "
                "connection that has not answered 5 s after it")
      .Duration("database", "keepalives_idle", absl::Seconds(10),
                "TCP keepalive: idle time before the first probe")
      .Duration("database", "keepalives_interval", absl::Seconds(5),
                "TCP keepalive: time between probes")
      .Int("database", "keepalives_count", 3,
           "TCP keepalive: unanswered probes before the connection is dead", 1,
           100)
      .Duration("database", "tcp_user_timeout", absl::Seconds(20),
                "Sent data unacknowledged this long breaks the connection")
      .Duration("database", "idle_check", absl::Seconds(30),
                "A pooled connection idle this long is checked (SELECT 1, "
                "2 s) before use and replaced when it does not answer; 0s "
                "checks every time")
      .String("database", "migrate", "auto",
              "Schema migrations at start: auto (migrate, then serve), off "
              "(refuse to start on an older schema), only (migrate, then "
              "exit 0)")
      .WithNames("--migrate", "");
}

void AddMetricsKeys(ConfigSchema& schema) {
  schema.String("metrics", "listen", "",
                "Prometheus /metrics address; empty disables it");
}

}  // namespace vouch
