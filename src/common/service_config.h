// File: common/service_config.h
// Config sections shared by several binaries, declared once so their keys,
// defaults and help read the same everywhere. Pure schema declarations.
//
//   AddTlsKeys(spec.schema, "verifier");          // [tls] ca_file,
//   cert_file... AddDatabaseKeys(spec.schema, /*max_connections=*/8);
#ifndef VOUCH_COMMON_SERVICE_CONFIG_H_
#define VOUCH_COMMON_SERVICE_CONFIG_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "common/config.h"

namespace vouch {

// [tls] ca_file, cert_file, key_file under /etc/vouch/tls/, the certificate
// and key named after `role` ("agent", "verifier", "registrar").
void AddTlsKeys(ConfigSchema& schema, absl::string_view role,
                absl::string_view ca_help);

// [database] url, max_connections, and the timeouts every connection gets
// (connect_timeout, statement_timeout, keepalives_*, tcp_user_timeout).
void AddDatabaseKeys(ConfigSchema& schema, int64_t default_max_connections);

// [metrics] listen: the Prometheus /metrics address, empty disables it.
void AddMetricsKeys(ConfigSchema& schema);

}  // namespace vouch

#endif  // VOUCH_COMMON_SERVICE_CONFIG_H_
