// File: store/agent_counts.h
// Agents by attestation state for the metrics gauges: those one verifier
// owns, and the whole pool's, which only one elected verifier reports (the
// one holding a PostgreSQL session advisory lock on its own connection, so
// a dead verifier's lock goes with its connection and another takes over).
// Not thread-safe: one thread (the verifier's maintenance loop) uses it.
//
//   AgentCounter counter(conninfo, "verifier-a");
//   VOUCH_ASSIGN_OR_RETURN(AgentCounts mine, counter.Owned(pool));
//   VOUCH_ASSIGN_OR_RETURN(std::optional<AgentCounts> all, counter.Pool());
#ifndef VOUCH_STORE_AGENT_COUNTS_H_
#define VOUCH_STORE_AGENT_COUNTS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "store/pg_connection.h"
#include "store/pg_pool.h"

namespace vouch::store {

// State name ("pending", "pass", "fail", "timeout") -> agents.
using AgentCounts = std::map<std::string, int64_t>;

class AgentCounter {
 public:
  AgentCounter(std::string conninfo, std::string owner);
  ~AgentCounter();

  // Agents this verifier owns with a live lease, by state.
  absl::StatusOr<AgentCounts> Owned(PgPool& pool);
  // Every enrolled agent by state when this verifier is the elected
  // reporter (it holds the lock now, or just took it); nullopt when
  // another verifier is. Keeps one extra connection open while elected.
  absl::StatusOr<std::optional<AgentCounts>> Pool();

 private:
  const std::string conninfo_;
  const std::string owner_;
  std::unique_ptr<PgConnection> elected_;
};

}  // namespace vouch::store

#endif  // VOUCH_STORE_AGENT_COUNTS_H_
