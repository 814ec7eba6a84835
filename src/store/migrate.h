// File: store/migrate.h
// Versioned schema migrations: the SQL files of src/store/migrations,
// embedded at build time, applied in order at start-up. Each runs in its own
// transaction under a PostgreSQL advisory lock (two processes starting at
// once are safe) and is recorded in schema_migrations; running again applies
// nothing. A database newer than this binary is refused. Not thread-safe per
// connection.
//
//   VOUCH_ASSIGN_OR_RETURN(int applied, Migrate(*connection));
#ifndef VOUCH_STORE_MIGRATE_H_
#define VOUCH_STORE_MIGRATE_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/pg_connection.h"
#include "store/pg_pool.h"

namespace vouch::store {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

// Every embedded migration, ascending by version.
const std::vector<Migration>& Migrations();

// Applies the missing migrations; returns how many were applied.
// kFailedPrecondition when the database has a version this binary does not
// know (a newer Vouch migrated it).
absl::StatusOr<int> Migrate(PgConnection& db);

// Readiness (/readyz): OK when the database answers within `wait` and has
// every migration this binary knows applied; kUnavailable or
// kFailedPrecondition saying which is not so.
absl::Status SchemaReady(PgPool& pool, absl::Duration wait);

// What a server does at start: connects through `pool` and migrates,
// retrying while the database is unreachable (a server may start before
// PostgreSQL at boot) for up to `patience`; logs each attempt.
absl::Status PrepareDatabase(PgPool& pool, absl::Duration patience);

}  // namespace vouch::store

#endif  // VOUCH_STORE_MIGRATE_H_
