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

#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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

// Expand, then contract (docs/operations.md): a migration either only adds
// what older binaries ignore, or its file carries the line
// "-- vouch: contract" (it removes or changes something they use). The
// runner records which, so a binary runs on a schema newer than it knows
// when every newer migration is an expanding one (version N on N+1's
// schema during a rolling upgrade), and refuses a contracted one.
bool IsContract(const Migration& m);

// Applies the missing migrations; returns how many were applied.
// kFailedPrecondition when a newer Vouch migrated the database past a
// contracting migration this binary does not know.
absl::StatusOr<int> Migrate(PgConnection& db);

// OK when the schema is the version this binary needs, or newer by
// expanding migrations only; kFailedPrecondition naming both versions
// otherwise.
absl::Status SchemaCurrent(PgConnection& db);

// Records where the database lives (PostgreSQL's system identifier and the
// database's oid). When that changed (restored with pg_restore into another
// cluster, or copied), gives it a new incarnation id, so Watch tokens from
// before answer OUT_OF_RANGE; kFailedPrecondition when the restored events'
// transaction ids are ahead of this cluster's (naming the pg_resetwal -e
// that fixes it). Safe when servers run it at once. Needs migration 8.
absl::Status AdoptDatabase(PgConnection& db);

// Readiness (/readyz): OK when the database answers within `wait` and has
// every migration this binary knows applied; kUnavailable or
// kFailedPrecondition saying which is not so.
absl::Status SchemaReady(PgPool& pool, absl::Duration wait);

// [database] migrate / --migrate: what a server does with the schema at
// start.
enum class MigrateMode {
  kAuto,  // Apply the missing migrations, then serve (the default).
  kOff,   // Never migrate: refuse to start on a schema older than needed.
  kOnly,  // Apply the missing migrations, then exit 0.
};
// "auto", "off", "only"; kInvalidArgument otherwise.
absl::StatusOr<MigrateMode> ParseMigrateMode(absl::string_view text);

// Applies migrations up to and including `version` only (tests that need the
// schema an older release left).
absl::StatusOr<int> MigrateTo(PgConnection& db, int version);

// The schema version recorded in schema_migrations (0 when the table does
// not exist yet).
absl::StatusOr<int> SchemaVersion(PgConnection& db);

// What a server does at start: connects through `pool` and migrates (kAuto,
// kOnly) or checks that the schema is the one this binary needs (kOff:
// kFailedPrecondition naming both versions and how to migrate), retrying
// while the database is unreachable (a server may start before PostgreSQL
// at boot) for up to `patience`; logs each attempt.
absl::Status PrepareDatabase(PgPool& pool, absl::Duration patience,
                             MigrateMode mode = MigrateMode::kAuto);

// A server's start-up step: parses `mode` ([database] migrate), runs
// PrepareDatabase (60 s patience) and logs the outcome. Returns the exit
// code to stop with (0 after "only", 2 for a bad mode, 1 when the database
// is unusable), or nullopt to go on serving.
std::optional<int> PrepareDatabaseOrExit(PgPool& pool, absl::string_view mode);

}  // namespace vouch::store

#endif  // VOUCH_STORE_MIGRATE_H_
