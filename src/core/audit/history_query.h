// File: core/audit/history_query.h
// The attestation history query of Admin.GetAttestationHistory, checked:
// HistoryQueryOf validates an untrusted request's agent id, half-open time
// range [from, to) and state filter, and HistoryToken / HistoryPositionOf
// write and read the opaque page token, a keyset position (the last
// record's time and id in the order time descending, id descending) bound
// to the query's filters by a digest. A token that is malformed, altered,
// from another query or from another call is kInvalidArgument. The token
// carries no authority (the caller's tenant is resolved on every call):
// its check value catches corruption and replays against another query,
// not a deliberate forgery of a position within the same query. Pure;
// thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(HistoryQuery q, HistoryQueryOf(tenant, req));
//   VOUCH_ASSIGN_OR_RETURN(std::optional<HistoryPosition> after,
//                          HistoryPositionOf(req.page_token(), q));
//   ... next_page_token = HistoryToken(q, {last.at, last.attestation_id});
#ifndef VOUCH_CORE_AUDIT_HISTORY_QUERY_H_
#define VOUCH_CORE_AUDIT_HISTORY_QUERY_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/agent_state.h"
#include "vouch/v1/admin.pb.h"

namespace vouch::core::audit {

// A validated history query. Times are whole microseconds (what the
// database keeps): a bound between two microseconds is rounded up, which
// selects the same records.
struct HistoryQuery {
  std::string tenant;
  std::string agent_id;            // Empty: every agent of the tenant.
  std::optional<absl::Time> from;  // verified_at >= from.
  std::optional<absl::Time> to;    // verified_at < to.
  std::vector<AgentState> states;  // PASS and/or FAIL, sorted; empty: any.
};

// A keyset position: records strictly after it in the order (at
// descending, attestation_id descending).
struct HistoryPosition {
  absl::Time at;
  std::string attestation_id;
};

// The request's filters (not its paging): agent_id empty or a valid id;
// start_time/end_time valid Timestamps of years 1..9999 with start <= end
// when both are set; states only PASS or FAIL (records have no other
// outcome), each at most once counted. kInvalidArgument naming the field.
absl::StatusOr<HistoryQuery> HistoryQueryOf(
    const std::string& tenant, const v1::GetAttestationHistoryRequest& req);

// Whether `t` is in the query's range.
bool InRange(const HistoryQuery& q, absl::Time t);

// The token that resumes `q` after `last` (at most ~200 characters).
std::string HistoryToken(const HistoryQuery& q, const HistoryPosition& last);

// The position in `token`; nullopt for the empty token (the first page).
// kInvalidArgument when it is not a token of this query.
absl::StatusOr<std::optional<HistoryPosition>> HistoryPositionOf(
    absl::string_view token, const HistoryQuery& q);

}  // namespace vouch::core::audit

#endif  // VOUCH_CORE_AUDIT_HISTORY_QUERY_H_
