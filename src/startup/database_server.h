// File: startup/database_server.h
// The start-up every server on the pool's PostgreSQL database shares
// (vouch-registrar, vouch-verifier): the connection pool from [database],
// the metrics and health endpoint from [metrics] whose /readyz asks
// store::SchemaReady, the schema step of [database] migrate (--migrate), and
// readiness once serving. Reads the process's config, which the program
// already validated; start-up and shutdown only, on the main thread.
//
//   if (std::optional<int> exit = CheckDatabaseConfig(cfg)) return *exit;
//   ... other config checks ...
//   DatabaseServer db;
//   if (std::optional<int> exit =
//           StartDatabaseServer(cfg, "vouch-registrar", 4, db)) {
//     return *exit;
//   }
//   ... build the stores on *db.pool, start gRPC on `port` ...
//   db.Serving(port);
//   ... WaitForShutdown() ...
//   db.Stopping();
#ifndef VOUCH_STARTUP_DATABASE_SERVER_H_
#define VOUCH_STARTUP_DATABASE_SERVER_H_

#include <memory>
#include <optional>

#include "absl/strings/string_view.h"
#include "common/config.h"
#include "server/metrics.h"
#include "store/pg_pool.h"

namespace vouch::startup {

// What StartDatabaseServer made; members are destroyed in reverse order, so
// the endpoint (whose readiness check reads the pool) goes first.
struct DatabaseServer {
  std::unique_ptr<store::PgPool> pool;
  std::shared_ptr<server::Metrics> metrics;     // nullptr: metrics off.
  std::unique_ptr<server::MetricsServer> http;  // nullptr: no endpoint.

  // The gRPC server listens on `port`: /readyz may answer ready, systemd is
  // told READY=1 (the database was reached at start).
  void Serving(int port);
  // A stop signal came: systemd is told STOPPING=1, /readyz answers
  // draining.
  void Stopping();
};

// The first check of a server's config, before anything slow: database.url
// is set. Returns the exit code (2, logged) when it is not.
std::optional<int> CheckDatabaseConfig(const Config& cfg);

// Opens a pool of `max_connections` to database.url, serves [metrics] for
// `component` (/readyz: store::SchemaReady within 2 s) and prepares the
// schema per [database] migrate (store::PrepareDatabaseOrExit: migrates or
// checks it, retrying while the database is unreachable). Returns the exit
// code to stop with (logged): 1 when the endpoint cannot listen or the
// database is unusable, 2 for a bad migrate mode, 0 after migrate = "only";
// nullopt to go on serving, with `out` filled.
std::optional<int> StartDatabaseServer(const Config& cfg,
                                       absl::string_view component,
                                       int max_connections,
                                       DatabaseServer& out);

}  // namespace vouch::startup

#endif  // VOUCH_STARTUP_DATABASE_SERVER_H_
