#include "store/migrate.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace vouch::store {
namespace {

// pg_advisory_xact_lock key: "vouchmig" as an int64.
constexpr const char* kLockKey = "8462953331557722471";

absl::Status Rollback(PgConnection& db, absl::Status status) {
  (void)db.Exec("ROLLBACK");
  return status;
}

// A migration whose file carries this line removes or changes something an
// older binary uses (the contract step of expand-then-contract).
constexpr absl::string_view kContractMarker = "-- vouch: contract";

// OK when the database at version `have` (newer than this binary's
// `newest`) went there by expanding migrations only, so this binary still
// runs on it; kFailedPrecondition naming the first contracting one.
absl::Status NewerSchemaUsable(PgConnection& db, int have, int newest) {
  VOUCH_ASSIGN_OR_RETURN(
      PgRows contract,
      db.Query("SELECT version::text, name FROM schema_migrations WHERE "
               "version > $1 AND contracts ORDER BY version LIMIT 1",
               {absl::StrCat(newest)}));
  if (!contract.rows.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the database schema is version ", have,
        ", newer than this binary "
        "knows (",
        newest, "), and migration ", contract.rows[0][0].value_or("?"), " (",
        contract.rows[0][1].value_or("?"),
        ") removed or changed what this binary uses: upgrade Vouch"));
  }
  return absl::OkStatus();
}

int NewestKnown() {
  const std::vector<Migration>& all = Migrations();
  return all.empty() ? 0 : all.back().version;
}

// Said once at start-up, not at each readiness probe (SchemaReady).
absl::Status LogIfNewer(PgConnection& db) {
  VOUCH_ASSIGN_OR_RETURN(int have, SchemaVersion(db));
  if (have > NewestKnown()) {
    Log(LogLevel::kWarning,
        "database schema is newer than this binary; its newer migrations "
        "only expand, so this binary runs on it (finish the upgrade)",
        {{"schema", have}, {"binary", NewestKnown()}});
  }
  return absl::OkStatus();
}

}  // namespace

bool IsContract(const Migration& m) {
  return absl::StrContains(m.sql, kContractMarker);
}

absl::StatusOr<MigrateMode> ParseMigrateMode(absl::string_view text) {
  if (text == "auto") return MigrateMode::kAuto;
  if (text == "off") return MigrateMode::kOff;
  if (text == "only") return MigrateMode::kOnly;
  return absl::InvalidArgumentError(
      absl::StrCat("migrate must be auto, off or only, not \"", text, "\""));
}

absl::StatusOr<int> Migrate(PgConnection& db) {
  return MigrateTo(db, NewestKnown());
}

absl::StatusOr<int> SchemaVersion(PgConnection& db) {
  VOUCH_ASSIGN_OR_RETURN(
      PgRows exists,
      db.Query("SELECT to_regclass('schema_migrations') IS NOT NULL"));
  if (exists.rows.empty() || exists.rows[0][0].value_or("f") != "t") return 0;
  VOUCH_ASSIGN_OR_RETURN(
      PgRows max,
      db.Query("SELECT coalesce(max(version), 0) FROM schema_migrations"));
  int have = 0;
  if (max.rows.empty() || !max.rows[0][0] ||
      !absl::SimpleAtoi(*max.rows[0][0], &have)) {
    return absl::InternalError("schema_migrations: bad version");
  }
  return have;
}

absl::StatusOr<int> MigrateTo(PgConnection& db, int version) {
  // "relation already exists, skipping" notices are noise in service logs.
  VOUCH_RETURN_IF_ERROR(db.Exec("SET client_min_messages TO warning").status());
  // Under the same lock as the migrations: servers starting together would
  // otherwise race on creating the table (a duplicate pg_type row).
  VOUCH_RETURN_IF_ERROR(db.Exec("BEGIN").status());
  absl::Status created = [&]() -> absl::Status {
    VOUCH_RETURN_IF_ERROR(
        db.Query("SELECT pg_advisory_xact_lock($1)", {kLockKey}).status());
    VOUCH_RETURN_IF_ERROR(
        db.Exec("CREATE TABLE IF NOT EXISTS schema_migrations (version "
                "integer PRIMARY KEY, name text NOT NULL, applied_at "
                "timestamptz NOT NULL DEFAULT now())")
            .status());
    // Whether a migration contracts (see IsContract); older databases'
    // rows are all ones every binary from now on knows.
    return db
        .Exec(
            "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS "
            "contracts boolean NOT NULL DEFAULT false")
        .status();
  }();
  if (!created.ok()) return Rollback(db, created);
  VOUCH_RETURN_IF_ERROR(db.Exec("COMMIT").status());
  const std::vector<Migration>& all = Migrations();
  const int newest = NewestKnown();
  int applied = 0;
  bool newer = false;
  for (const Migration& m : all) {
    if (m.version > version || newer) break;
    VOUCH_RETURN_IF_ERROR(db.Exec("BEGIN").status());
    absl::Status step = [&]() -> absl::Status {
      VOUCH_RETURN_IF_ERROR(
          db.Query("SELECT pg_advisory_xact_lock($1)", {kLockKey}).status());
      VOUCH_ASSIGN_OR_RETURN(PgRows max,
                             db.Query("SELECT coalesce(max(version), 0) FROM "
                                      "schema_migrations"));
      int have = 0;
      if (!max.rows.empty() && max.rows[0][0] &&
          !absl::SimpleAtoi(*max.rows[0][0], &have)) {
        return absl::InternalError("schema_migrations: bad version");
      }
      // Newer than this binary: every migration it knows is applied.
      if (have > newest) {
        newer = true;
        return NewerSchemaUsable(db, have, newest);
      }
      VOUCH_ASSIGN_OR_RETURN(
          PgRows done,
          db.Query("SELECT 1 FROM schema_migrations WHERE version = $1",
                   {absl::StrCat(m.version)}));
      if (!done.rows.empty()) return absl::OkStatus();
      VOUCH_RETURN_IF_ERROR(db.ExecScript(m.sql));
      VOUCH_RETURN_IF_ERROR(
          db.Exec("INSERT INTO schema_migrations (version, name, contracts) "
                  "VALUES ($1, $2, $3)",
                  {absl::StrCat(m.version), std::string(m.name),
                   IsContract(m) ? "true" : "false"})
              .status());
      ++applied;
      return absl::OkStatus();
    }();
    if (!step.ok()) return Rollback(db, step);
    VOUCH_RETURN_IF_ERROR(db.Exec("COMMIT").status());
  }
  if (newer) VOUCH_RETURN_IF_ERROR(LogIfNewer(db));
  return applied;
}

absl::Status SchemaCurrent(PgConnection& db) {
  VOUCH_ASSIGN_OR_RETURN(int have, SchemaVersion(db));
  const int newest = NewestKnown();
  if (have < newest) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database schema is version ", have, ", this binary needs ", newest,
        ": migrate it first (--migrate=only, or start with --migrate=auto)"));
  }
  if (have > newest) return NewerSchemaUsable(db, have, newest);
  return absl::OkStatus();
}

absl::Status AdoptDatabase(PgConnection& db) {
  constexpr char kHome[] =
      "(SELECT system_identifier::text FROM pg_control_system()) || '/' || "
      "(SELECT oid::text FROM pg_database WHERE datname = "
      "current_database())";
  VOUCH_ASSIGN_OR_RETURN(PgRows rows,
                         db.Query(absl::StrCat("SELECT home, ", kHome,
                                               " FROM database_incarnation")));
  if (rows.rows.size() != 1 || !rows.rows[0][1]) {
    return absl::InternalError("database_incarnation: no row");
  }
  const std::optional<std::string>& home = rows.rows[0][0];
  const std::string here = *rows.rows[0][1];
  if (home == here) return absl::OkStatus();
  if (home.has_value()) {
    // Restored or copied from another cluster: its events carry that
    // cluster's transaction ids, which Watch orders by. Events committed
    // here must come after them.
    VOUCH_ASSIGN_OR_RETURN(
        PgRows ahead,
        db.Query("SELECT max(x)::text, floor(max(x)::text::numeric / "
                 "4294967296)::bigint + 1 FROM (SELECT max(xid) AS x FROM "
                 "agent_events "
                 "UNION ALL SELECT max(xid) FROM attestations) m HAVING "
                 "max(x) >= pg_current_xact_id()"));
    if (!ahead.rows.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "this database was restored from another PostgreSQL cluster whose "
          "transaction ids are ahead of this one's (",
          ahead.rows[0][0].value_or("?"),
          "): stop PostgreSQL, run pg_resetwal -e ",
          ahead.rows[0][1].value_or("?"),
          " on its data directory, start it again (docs/operations.md, "
          "Backup and restore)"));
    }
  }
  // Concurrent servers: the second finds the row already adopted (the
  // WHERE is rechecked on the newest row version).
  VOUCH_ASSIGN_OR_RETURN(
      int64_t changed,
      db.Exec(absl::StrCat(
          "UPDATE database_incarnation SET id = CASE WHEN home IS NULL THEN "
          "id ELSE replace(gen_random_uuid()::text, '-', '') END, home = ",
          kHome, " WHERE home IS DISTINCT FROM ", kHome)));
  if (changed > 0 && home.has_value()) {
    Log(LogLevel::kWarning,
        "database restored or copied from another cluster: new incarnation; "
        "Watch resume tokens from before answer OUT_OF_RANGE",
        {{"was", *home}, {"now", here}});
  }
  return absl::OkStatus();
}

absl::Status SchemaReady(PgPool& pool, absl::Duration wait) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool.Acquire(wait));
  return SchemaCurrent(*db);
}

absl::Status PrepareDatabase(PgPool& pool, absl::Duration patience,
                             MigrateMode mode) {
  const absl::Time give_up = absl::Now() + patience;
  absl::Duration wait = absl::Milliseconds(200);
  while (true) {
    absl::Status status = [&]() -> absl::Status {
      VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool.Acquire());
      if (mode == MigrateMode::kOff) {
        VOUCH_RETURN_IF_ERROR(SchemaCurrent(*db));
        VOUCH_RETURN_IF_ERROR(LogIfNewer(*db));
        Log(LogLevel::kInfo, "database schema is current (not migrating)");
        return AdoptDatabase(*db);
      }
      // A migration may wait for another server's and rewrite big tables:
      // no statement_timeout while it runs, the usual one after.
      VOUCH_RETURN_IF_ERROR(db->SetStatementTimeout(absl::ZeroDuration()));
      VOUCH_ASSIGN_OR_RETURN(int applied, Migrate(*db));
      VOUCH_RETURN_IF_ERROR(
          db->SetStatementTimeout(pool.options().statement_timeout));
      Log(LogLevel::kInfo, "database schema ready", {{"applied", applied}});
      return AdoptDatabase(*db);
    }();
    if (status.ok() || !absl::IsUnavailable(status) ||
        absl::Now() + wait > give_up) {
      return status;
    }
    Log(LogLevel::kWarning, "database not reachable; retrying",
        {{"error", status.message()}});
    absl::SleepFor(wait);
    wait = std::min(wait * 2, absl::Seconds(5));
  }
}

std::optional<int> PrepareDatabaseOrExit(PgPool& pool,
                                         absl::string_view mode_text) {
  absl::StatusOr<MigrateMode> mode = ParseMigrateMode(mode_text);
  if (!mode.ok()) {
    Log(LogLevel::kError, "bad [database] migrate",
        {{"error", mode.status().message()}});
    return 2;
  }
  if (absl::Status s = PrepareDatabase(pool, absl::Seconds(60), *mode);
      !s.ok()) {
    Log(LogLevel::kError, "database unusable", {{"error", s.message()}});
    return 1;
  }
  if (*mode == MigrateMode::kOnly) {
    Log(LogLevel::kInfo, "database migrated; exiting (migrate = only)");
    return 0;
  }
  return std::nullopt;
}

}  // namespace vouch::store
