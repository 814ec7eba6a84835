#include "store/retention.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "store/pg_columns.h"
#include "store/pg_pool.h"

namespace vouch::store {
namespace {

// pg_try_advisory_xact_lock key: "vouchret" as an int64.
constexpr const char* kLockKey = "8462953331557729652";
constexpr int64_t kDayUs = int64_t{86400} * 1000000;
constexpr int kNonceBatch = 10000;
constexpr int kNonceBatchesPerRun = 100;
// The partitioned tables, all partitioned alike (migrations/0008, 0010):
// the first two hold Watch events, the others the kept evidence.
constexpr const char* kTables[] = {"attestations", "agent_events",
                                   "attestation_evidence", "ima_segments"};
bool HoldsEvents(absl::string_view table) {
  return table == "attestations" || table == "agent_events";
}

struct Partition {
  std::string table;
  std::string name;
  int64_t from_us;  // MINVALUE: INT64_MIN.
  int64_t to_us;    // MAXVALUE: INT64_MAX.
};

std::string Quoted(absl::string_view name) {
  return absl::StrCat("\"", absl::StrReplaceAll(name, {{"\"", "\"\""}}), "\"");
}

std::string Timestamp(int64_t us) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S+00", absl::FromUnixMicros(us),
                          absl::UTCTimeZone());
}

// The bounds of every partition of both tables, from the catalogue.
absl::StatusOr<std::vector<Partition>> ListPartitions(PgConnection& db) {
  auto bound = [](absl::string_view which, absl::string_view missing) {
    return absl::StrCat(
        "COALESCE((extract(epoch from "
        "(regexp_match(pg_get_expr(c.relpartbound, "
        "c.oid), '",
        which, " \\(''([^'']*)''\\)'))[1]::timestamptz) * 1000000)::bigint, ",
        missing, ")");
  };
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db.Query(absl::StrCat(
          "SELECT p.relname, c.relname, ",
          bound("FROM", "-9223372036854775808"), ", ",
          bound("TO", "9223372036854775807"),
          " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN "
          "pg_class p ON p.oid = i.inhparent WHERE i.inhparent IN "
          "('attestations'::regclass, 'agent_events'::regclass, "
          "'attestation_evidence'::regclass, 'ima_segments'::regclass) "
          "ORDER BY 1, "
          "4")));
  std::vector<Partition> out;
  for (const auto& r : rows.rows) {
    Partition p;
    p.table = r[0].value_or("");
    p.name = r[1].value_or("");
    VOUCH_ASSIGN_OR_RETURN(p.from_us, Int<int64_t>(r[2]));
    VOUCH_ASSIGN_OR_RETURN(p.to_us, Int<int64_t>(r[3]));
    out.push_back(std::move(p));
  }
  return out;
}

// Creates the missing day partitions of [first_day, last_day] (microseconds
// at UTC midnight) that no existing partition overlaps.
absl::StatusOr<int> CreateAhead(PgConnection& db,
                                const std::vector<Partition>& existing,
                                int64_t first_day, int64_t last_day) {
  int created = 0;
  for (const char* table : kTables) {
    for (int64_t day = first_day; day <= last_day; day += kDayUs) {
      bool covered = false;
      for (const Partition& p : existing) {
        if (p.table == table && p.from_us < day + kDayUs && day < p.to_us) {
          covered = true;
        }
      }
      if (covered) continue;
      const std::string name =
          absl::StrCat(table, "_p",
                       absl::FormatTime("%Y%m%d", absl::FromUnixMicros(day),
                                        absl::UTCTimeZone()));
      VOUCH_RETURN_IF_ERROR(
          db.Exec(absl::StrCat("CREATE TABLE ", Quoted(name), " PARTITION OF ",
                               table, " FOR VALUES FROM ('", Timestamp(day),
                               "') TO ('", Timestamp(day + kDayUs), "')"))
              .status());
      ++created;
    }
  }
  return created;
}

// Records what `p` holds as expired (event_retention), then drops it.
absl::Status DropPartition(PgConnection& db, const Partition& p) {
  if (!HoldsEvents(p.table)) {
    VOUCH_RETURN_IF_ERROR(
        db.Exec(absl::StrCat("DROP TABLE ", Quoted(p.name))).status());
    Log(LogLevel::kInfo, "expired partition dropped",
        {{"partition", p.name}, {"before", Timestamp(p.to_us)}});
    return absl::OkStatus();
  }
  VOUCH_ASSIGN_OR_RETURN(
      PgRows newest,
      db.Query(absl::StrCat("SELECT xid::text, seq FROM ", Quoted(p.name),
                            " ORDER BY xid DESC, seq DESC LIMIT 1")));
  if (!newest.rows.empty()) {
    VOUCH_RETURN_IF_ERROR(
        db.Exec("UPDATE event_retention SET xid = $1::xid8, seq = $2::bigint "
                "WHERE (xid, seq) < ($1::xid8, $2::bigint)",
                {newest.rows[0][0], newest.rows[0][1]})
            .status());
  }
  VOUCH_RETURN_IF_ERROR(
      db.Exec("UPDATE event_retention SET before = greatest(before, "
              "$1::timestamptz)",
              {Timestamp(p.to_us)})
          .status());
  VOUCH_RETURN_IF_ERROR(
      db.Exec(absl::StrCat("DROP TABLE ", Quoted(p.name))).status());
  Log(LogLevel::kInfo, "expired partition dropped",
      {{"partition", p.name}, {"before", Timestamp(p.to_us)}});
  return absl::OkStatus();
}

// Nonces of dropped records, in bounded batches (the next run goes on).
absl::StatusOr<int64_t> DeleteExpiredNonces(PgConnection& db) {
  int64_t deleted = 0;
  for (int i = 0; i < kNonceBatchesPerRun; ++i) {
    VOUCH_ASSIGN_OR_RETURN(
        int64_t n,
        db.Exec(absl::StrCat(
            "DELETE FROM attestation_nonces WHERE nonce IN (SELECT nonce FROM "
            "attestation_nonces WHERE at < (SELECT before FROM "
            "event_retention) LIMIT ",
            kNonceBatch, ")")));
    deleted += n;
    if (n < kNonceBatch) break;
  }
  return deleted;
}

}  // namespace

absl::StatusOr<RetentionRun> MaintainPartitions(PgConnection& db,
                                                const RetentionOptions& options,
                                                std::optional<absl::Time> now) {
  RetentionRun run;
  absl::Status status = InTransaction(db, [&](PgConnection& c) -> absl::Status {
    VOUCH_ASSIGN_OR_RETURN(
        PgRows locked,
        c.Query("SELECT pg_try_advisory_xact_lock($1)", {kLockKey}));
    if (locked.rows.empty() || locked.rows[0][0].value_or("f") != "t") {
      return absl::OkStatus();  // Another verifier is at it.
    }
    run.ran = true;
    VOUCH_RETURN_IF_ERROR(
        c.Exec(absl::StrCat("SET LOCAL lock_timeout = ",
                            absl::ToInt64Milliseconds(options.lock_timeout)))
            .status());
    int64_t now_us = 0;
    if (now) {
      now_us = absl::ToUnixMicros(*now);
    } else {
      VOUCH_ASSIGN_OR_RETURN(
          PgRows clock,
          c.Query("SELECT (extract(epoch from now()) * 1000000)::bigint"));
      VOUCH_ASSIGN_OR_RETURN(now_us, Int<int64_t>(clock.rows.at(0).at(0)));
    }
    const int64_t today = now_us - ((now_us % kDayUs) + kDayUs) % kDayUs;
    VOUCH_ASSIGN_OR_RETURN(std::vector<Partition> parts, ListPartitions(c));
    VOUCH_ASSIGN_OR_RETURN(
        run.created,
        CreateAhead(c, parts, today, today + options.days_ahead * kDayUs));
    if (options.keep_days <= 0) return absl::OkStatus();
    const int64_t cutoff = now_us - options.keep_days * kDayUs;
    for (const Partition& p : parts) {
      if (p.to_us > cutoff) continue;
      VOUCH_RETURN_IF_ERROR(DropPartition(c, p));
      ++run.dropped;
    }
    return absl::OkStatus();
  });
  VOUCH_RETURN_IF_ERROR(status);
  if (run.ran) {
    VOUCH_ASSIGN_OR_RETURN(run.nonces_deleted, DeleteExpiredNonces(db));
    if (run.dropped > 0) {
      // Boot logs no kept record refers to any more (they are kept once
      // per agent and digest, not partitioned).
      VOUCH_RETURN_IF_ERROR(
          db.Exec("DELETE FROM kept_boot_logs b WHERE b.at < (SELECT before "
                  "FROM event_retention) AND NOT EXISTS (SELECT 1 FROM "
                  "attestation_evidence e WHERE e.agent_id = b.agent_id AND "
                  "e.boot_log_sha256 = b.sha256)")
              .status());
    }
  }
  return run;
}

}  // namespace vouch::store
