#include "store/agent_counts.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "common/status_macros.h"

namespace vouch::store {
namespace {

// The advisory lock key of the pool-wide agent gauges ("vouch" + "agents").
constexpr const char* kPoolGaugeLock = "7652097733";

absl::StatusOr<AgentCounts> ToCounts(const PgRows& rows) {
  AgentCounts counts;
  for (const auto& row : rows.rows) {
    int64_t n = 0;
    if (row.size() != 2 || !row[0] || !row[1] ||
        !absl::SimpleAtoi(*row[1], &n)) {
      return absl::InternalError("agent counts: bad row");
    }
    counts[*row[0]] = n;
  }
  return counts;
}

}  // namespace

AgentCounter::AgentCounter(std::string conninfo, std::string owner)
    : conninfo_(std::move(conninfo)), owner_(std::move(owner)) {}

AgentCounter::~AgentCounter() = default;

absl::StatusOr<AgentCounts> AgentCounter::Owned(PgPool& pool) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool.Acquire(absl::Seconds(1)));
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query("SELECT state, count(*) FROM agent_state WHERE owner = $1 "
                "AND lease_until > now() GROUP BY state",
                {owner_}));
  return ToCounts(rows);
}

absl::StatusOr<std::optional<AgentCounts>> AgentCounter::Pool() {
  if (elected_ == nullptr || !elected_->Healthy()) {
    elected_.reset();
    VOUCH_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> db,
                           PgConnection::Connect(conninfo_));
    VOUCH_ASSIGN_OR_RETURN(
        PgRows got,
        db->Query("SELECT pg_try_advisory_lock($1::bigint)", {kPoolGaugeLock}));
    if (got.rows.size() != 1 || !got.rows[0][0] || *got.rows[0][0] != "t") {
      return std::optional<AgentCounts>();  // Another verifier reports.
    }
    elected_ = std::move(db);
  }
  absl::StatusOr<PgRows> rows = elected_->Query(
      "SELECT state, count(*) FROM agent_state GROUP BY state", {});
  if (!rows.ok()) {
    elected_.reset();  // Closing the connection releases the lock.
    return rows.status();
  }
  VOUCH_ASSIGN_OR_RETURN(AgentCounts counts, ToCounts(*rows));
  return std::optional<AgentCounts>(std::move(counts));
}

}  // namespace vouch::store
