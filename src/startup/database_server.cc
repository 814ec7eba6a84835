#include "startup/database_server.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "server/service_notify.h"
#include "store/migrate.h"

namespace vouch::startup {

void DatabaseServer::Serving(int port) {
  if (http != nullptr) http->SetServing();
  // StartDatabaseServer reached the database; the server listens now.
  server::NotifyReady(absl::StrCat("serving on port ", port)).IgnoreError();
}

void DatabaseServer::Stopping() {
  server::NotifyStopping().IgnoreError();
  if (http != nullptr) http->SetDraining();
}

std::optional<int> CheckDatabaseConfig(const Config& cfg) {
  if (cfg.GetString("database", "url").empty()) {
    Log(LogLevel::kError, "database.url is not set");
    return 2;
  }
  return std::nullopt;
}

std::optional<int> StartDatabaseServer(const Config& cfg,
                                       absl::string_view component,
                                       int max_connections,
                                       DatabaseServer& out) {
  if (std::optional<int> exit = CheckDatabaseConfig(cfg)) return exit;
  out.pool = std::make_unique<store::PgPool>(cfg.GetString("database", "url"),
                                             max_connections,
                                             store::PgOptionsFromConfig(cfg));
  out.metrics = server::MetricsFromConfig(cfg, component);
  absl::StatusOr<std::unique_ptr<server::MetricsServer>> http =
      server::ServeMetricsFromConfig(cfg, out.metrics, [pool = out.pool.get()] {
        return store::SchemaReady(*pool, absl::Seconds(2));
      });
  if (!http.ok()) return 1;
  out.http = *std::move(http);
  return store::PrepareDatabaseOrExit(*out.pool,
                                      cfg.GetString("database", "migrate"));
}

}  // namespace vouch::startup
