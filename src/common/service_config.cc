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
           "Connection pool size", 1, 256);
}

void AddMetricsKeys(ConfigSchema& schema) {
  schema.String("metrics", "listen", "",
                "Prometheus /metrics address; empty disables it");
}

}  // namespace vouch
