// File: store/retention.h
// The data lifecycle of the partitioned tables (migrations/0008):
// attestations and agent_events hold one partition per UTC day. Maintenance
// creates the partitions of the coming days and drops those whose every row
// is older than the retention, first recording in event_retention the
// newest event position they held (Watch tokens at or before it answer
// OUT_OF_RANGE), then deletes the expired nonces. Any verifier may run it:
// one at a time runs, under a PostgreSQL advisory lock; the others skip.
// Input is our own configuration; not thread-safe per connection.
//
//   VOUCH_ASSIGN_OR_RETURN(RetentionRun run,
//                          MaintainPartitions(*connection, options));
#ifndef VOUCH_STORE_RETENTION_H_
#define VOUCH_STORE_RETENTION_H_

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/pg_connection.h"

namespace vouch::store {

struct RetentionOptions {
  // Records are kept at least this many days (and at most one day more: a
  // day's partition goes when its last row is older). 0 keeps everything.
  int keep_days = 30;
  // Partitions exist for today and this many days ahead.
  int days_ahead = 7;
  // Longest wait for the table locks creating or dropping a partition takes
  // (verdict commits queue behind it meanwhile); past it the run fails and
  // the next one tries again.
  absl::Duration lock_timeout = absl::Seconds(2);
};

struct RetentionRun {
  bool ran = false;  // False: another process held the maintenance lock.
  int created = 0;   // Partitions created.
  int dropped = 0;   // Partitions dropped.
  int64_t nonces_deleted = 0;
};

// One maintenance run. `now` defaults to the database's clock (rows are
// stamped with it); tests pass another day.
absl::StatusOr<RetentionRun> MaintainPartitions(
    PgConnection& db, const RetentionOptions& options,
    std::optional<absl::Time> now = std::nullopt);

}  // namespace vouch::store

#endif  // VOUCH_STORE_RETENTION_H_
