// File: store/pg_policy_sources.h
// Policy provenance in PostgreSQL (migrations/0017_policy_sources.sql): a
// tenant's trusted policy-signing keys, and the URL sources of runtime
// policies with their refresh schedule. A source due for a fetch is claimed
// by one verifier of the pool at a time (a lease in its row), so the pool
// fetches each source once per period. Values come from a verifier after it
// validated them. Thread-safe (each call takes its own pooled connection).
//
//   PgPolicySources sources(&pool);
//   if (auto due = sources.ClaimDue("verifier-1", absl::Seconds(30)); ...)
//     sources.RecordFetch(*due, "verifier-1", "stored", "", etag);
#ifndef VOUCH_STORE_PG_POLICY_SOURCES_H_
#define VOUCH_STORE_PG_POLICY_SOURCES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/pg_pool.h"

namespace vouch::store {

// At most this many signing keys per tenant.
inline constexpr int kMaxPolicySigningKeys = 100;

struct PolicySigningKeyRow {
  std::string tenant;
  std::string name;
  std::string pem;
  std::string key_id;
  absl::Time created_at;
  std::string created_by;
};

struct PolicySourceRow {
  std::string tenant;
  std::string name;
  std::string url;
  absl::Duration refresh;  // Zero: fetched once.
  bool require_signature = false;
  std::string created_by;
  std::string etag;  // Of the last stored or unchanged response.
  std::optional<absl::Time> last_fetch_at;
  std::string last_result;  // stored | unchanged | refused
  std::string last_error;
  std::optional<absl::Time> next_fetch_at;
};

class PgPolicySources {
 public:
  explicit PgPolicySources(PgPool* pool) : pool_(pool) {}

  // kAlreadyExists when the name is taken, kResourceExhausted beyond
  // kMaxPolicySigningKeys.
  absl::StatusOr<PolicySigningKeyRow> AddKey(const PolicySigningKeyRow& key);
  // Ordered by name.
  absl::StatusOr<std::vector<PolicySigningKeyRow>> ListKeys(
      const std::string& tenant);
  // kNotFound when there is no such key.
  absl::Status DeleteKey(const std::string& tenant, const std::string& name);

  // Creates or replaces a policy's source with the outcome of the fetch
  // that just stored it; the next fetch is due `refresh` from now (none when
  // zero). Releases any lease.
  absl::Status SaveSource(const PolicySourceRow& source);
  // nullopt when the policy has no source.
  absl::StatusOr<std::optional<PolicySourceRow>> GetSource(
      const std::string& tenant, const std::string& name);
  // The source whose fetch is most overdue and not leased by another
  // verifier, now leased to `holder` for `lease`; nullopt when none is due.
  absl::StatusOr<std::optional<PolicySourceRow>> ClaimDue(
      const std::string& holder, absl::Duration lease);
  // A claimed fetch's outcome: records it, schedules the next fetch one
  // refresh period from now and releases the lease. An empty `etag` keeps
  // the stored one. kAborted when `holder` no longer holds the lease.
  absl::Status RecordFetch(const PolicySourceRow& source,
                           const std::string& holder, const std::string& result,
                           const std::string& error, const std::string& etag);
  // Stops fetching (the policy was removed); OK when there was no source.
  absl::Status DeleteSource(const std::string& tenant, const std::string& name);

 private:
  PgPool* pool_;
};

}  // namespace vouch::store

#endif  // VOUCH_STORE_PG_POLICY_SOURCES_H_
