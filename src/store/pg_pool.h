// File: store/pg_pool.h
// A bounded pool of PostgreSQL connections shared by a server's threads.
// Connections are opened lazily (at most max_connections), handed out one
// caller at a time, and dropped when broken so the next Acquire reconnects.
// A connection that sat idle longer than PgOptions::idle_check is checked
// with a bounded SELECT 1 before it is handed out, and replaced by a new one
// when the check fails. Thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool->Acquire());
//   VOUCH_ASSIGN_OR_RETURN(PgRows rows, db->Query("SELECT 1"));
#ifndef VOUCH_STORE_PG_POOL_H_
#define VOUCH_STORE_PG_POOL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "store/pg_connection.h"

namespace vouch::store {

// The [database] timeouts of a service's config (AddDatabaseKeys).
PgOptions PgOptionsFromConfig(const Config& cfg);

class PgPool {
 public:
  PgPool(std::string conninfo, int max_connections,
         PgOptions options = PgOptions());

  class Lease {
   public:
    Lease(PgPool* pool, std::unique_ptr<PgConnection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = default;
    ~Lease();
    PgConnection* operator->() { return conn_.get(); }
    PgConnection& operator*() { return *conn_; }

   private:
    PgPool* pool_;
    std::unique_ptr<PgConnection> conn_;
  };

  // A connection within `wait` (and this thread's CallDeadline);
  // kUnavailable when none frees up or the database cannot be reached.
  absl::StatusOr<Lease> Acquire(absl::Duration wait = absl::Seconds(10));

  // Counters for metrics (read at scrape time).
  struct Stats {
    int max = 0;
    int open = 0;             // Connections open now.
    int in_use = 0;           // Of those, handed out now.
    uint64_t acquired = 0;    // Acquire calls that got a connection.
    uint64_t failed = 0;      // Acquire calls that did not (timeout, connect).
    uint64_t stale = 0;       // Idle connections that failed their check.
    double wait_seconds = 0;  // Time Acquire calls spent waiting, summed.
  };
  Stats stats() const;
  const PgOptions& options() const { return options_; }

 private:
  struct Idle {
    std::unique_ptr<PgConnection> conn;
    absl::Time since;  // When it was released.
  };

  void Release(std::unique_ptr<PgConnection> conn);
  // True when `conn`, idle since `since`, may be handed out: recently used,
  // or it answered SELECT 1 in time. Blocking; call without mu_.
  bool StillAlive(PgConnection& conn, absl::Time since) const;

  const std::string conninfo_;
  const int max_;
  const PgOptions options_;
  mutable absl::Mutex mu_;
  std::vector<Idle> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t acquired_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t stale_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration waited_ ABSL_GUARDED_BY(mu_);
};

// Runs fn(connection) inside BEGIN/COMMIT; rolls back when fn fails.
template <typename Fn>
auto InTransaction(PgConnection& db, Fn fn) -> decltype(fn(db)) {
  if (absl::Status s = db.Exec("BEGIN").status(); !s.ok()) return s;
  auto result = fn(db);
  if (!result.ok()) {
    (void)db.Exec("ROLLBACK");
    return result;
  }
  if (absl::Status s = db.Exec("COMMIT").status(); !s.ok()) return s;
  return result;
}

}  // namespace vouch::store

#endif  // VOUCH_STORE_PG_POOL_H_
