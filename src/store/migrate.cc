#include "store/migrate.h"

#include <algorithm>

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

}  // namespace

absl::StatusOr<int> Migrate(PgConnection& db) {
  // "relation already exists, skipping" notices are noise in service logs.
  VOUCH_RETURN_IF_ERROR(db.Exec("SET client_min_messages TO warning").status());
  // Under the same lock as the migrations: servers starting together would
  // otherwise race on creating the table (a duplicate pg_type row).
  VOUCH_RETURN_IF_ERROR(db.Exec("BEGIN").status());
  absl::Status created = [&]() -> absl::Status {
    VOUCH_RETURN_IF_ERROR(
        db.Query("SELECT pg_advisory_xact_lock($1)", {kLockKey}).status());
    return db
        .Exec(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer "
            "PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT "
            "NULL DEFAULT now())")
        .status();
  }();
  if (!created.ok()) return Rollback(db, created);
  VOUCH_RETURN_IF_ERROR(db.Exec("COMMIT").status());
  const std::vector<Migration>& all = Migrations();
  const int newest = all.empty() ? 0 : all.back().version;
  int applied = 0;
  for (const Migration& m : all) {
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
      if (have > newest) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the database schema is version ", have,
            ", newer than this binary knows (", newest, "): upgrade Vouch"));
      }
      VOUCH_ASSIGN_OR_RETURN(
          PgRows done,
          db.Query("SELECT 1 FROM schema_migrations WHERE version = $1",
                   {absl::StrCat(m.version)}));
      if (!done.rows.empty()) return absl::OkStatus();
      VOUCH_RETURN_IF_ERROR(db.ExecScript(m.sql));
      VOUCH_RETURN_IF_ERROR(
          db.Exec("INSERT INTO schema_migrations (version, name) VALUES "
                  "($1, $2)",
                  {absl::StrCat(m.version), std::string(m.name)})
              .status());
      ++applied;
      return absl::OkStatus();
    }();
    if (!step.ok()) return Rollback(db, step);
    VOUCH_RETURN_IF_ERROR(db.Exec("COMMIT").status());
  }
  return applied;
}

absl::Status SchemaReady(PgPool& pool, absl::Duration wait) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool.Acquire(wait));
  VOUCH_ASSIGN_OR_RETURN(
      PgRows max,
      db->Query("SELECT coalesce(max(version), 0) FROM schema_migrations"));
  int have = 0;
  if (max.rows.empty() || !max.rows[0][0] ||
      !absl::SimpleAtoi(*max.rows[0][0], &have)) {
    return absl::InternalError("schema_migrations: bad version");
  }
  const std::vector<Migration>& all = Migrations();
  const int newest = all.empty() ? 0 : all.back().version;
  if (have < newest) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database schema is version ", have, ", this binary needs ", newest));
  }
  return absl::OkStatus();
}

absl::Status PrepareDatabase(PgPool& pool, absl::Duration patience) {
  const absl::Time give_up = absl::Now() + patience;
  absl::Duration wait = absl::Milliseconds(200);
  while (true) {
    absl::Status status = [&]() -> absl::Status {
      VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool.Acquire());
      // A migration may wait for another server's and rewrite big tables:
      // no statement_timeout while it runs, the usual one after.
      VOUCH_RETURN_IF_ERROR(db->SetStatementTimeout(absl::ZeroDuration()));
      VOUCH_ASSIGN_OR_RETURN(int applied, Migrate(*db));
      VOUCH_RETURN_IF_ERROR(
          db->SetStatementTimeout(pool.options().statement_timeout));
      Log(LogLevel::kInfo, "database schema ready", {{"applied", applied}});
      return absl::OkStatus();
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

}  // namespace vouch::store
