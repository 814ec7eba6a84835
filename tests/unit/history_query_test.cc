// The attestation history query (core/audit/history_query.h): the checks
// of an untrusted GetAttestationHistoryRequest, and page tokens that
// resume exactly one query and refuse everything else.
#include "core/audit/history_query.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"

namespace vouch {
namespace {

using core::audit::HistoryPosition;
using core::audit::HistoryPositionOf;
using core::audit::HistoryQuery;
using core::audit::HistoryQueryOf;
using core::audit::HistoryToken;

void SetTime(int64_t seconds, int32_t nanos, google::protobuf::Timestamp* t) {
  t->set_seconds(seconds);
  t->set_nanos(nanos);
}

v1::GetAttestationHistoryRequest Request() {
  v1::GetAttestationHistoryRequest req;
  req.set_agent_id("node-1");
  SetTime(1700000000, 0, req.mutable_start_time());
  SetTime(1700086400, 0, req.mutable_end_time());
  req.add_states(v1::ATTESTATION_STATE_FAIL);
  return req;
}

TEST_CASE("history query: the request's range, states and agent are checked",
          "[core][audit]") {
  absl::StatusOr<HistoryQuery> q = HistoryQueryOf("t", Request());
  REQUIRE(q.ok());
  CHECK(q->tenant == "t");
  CHECK(q->agent_id == "node-1");
  CHECK(*q->from == absl::FromUnixSeconds(1700000000));
  CHECK(*q->to == absl::FromUnixSeconds(1700086400));
  CHECK(q->states == std::vector<core::AgentState>{v1::ATTESTATION_STATE_FAIL});
  CHECK(core::audit::InRange(*q, absl::FromUnixSeconds(1700000000)));
  CHECK(!core::audit::InRange(*q, absl::FromUnixSeconds(1700086400)));

  // No filters at all: every record of the tenant.
  q = HistoryQueryOf("t", v1::GetAttestationHistoryRequest());
  REQUIRE(q.ok());
  CHECK(q->agent_id.empty());
  CHECK(!q->from);
  CHECK(!q->to);
  CHECK(q->states.empty());

  // Sub-microsecond bounds round up (the database keeps microseconds).
  v1::GetAttestationHistoryRequest req = Request();
  SetTime(1700000000, 1, req.mutable_start_time());
  q = HistoryQueryOf("t", req);
  REQUIRE(q.ok());
  CHECK(*q->from == absl::FromUnixSeconds(1700000000) + absl::Microseconds(1));

  // An empty range is allowed; a reversed one is not.
  req = Request();
  *req.mutable_end_time() = req.start_time();
  CHECK(HistoryQueryOf("t", req).ok());
  SetTime(1699999999, 0, req.mutable_end_time());
  absl::Status st = HistoryQueryOf("t", req).status();
  CHECK(absl::IsInvalidArgument(st));
  CHECK(st.message().find("start_time") != absl::string_view::npos);

  // Years 1..9999, nanos in range.
  for (const auto& [seconds, nanos] : std::vector<std::pair<int64_t, int32_t>>{
           {-62135596801, 0}, {253402300800, 0}, {0, -1}, {0, 1000000000}}) {
    req = Request();
    req.clear_end_time();
    SetTime(seconds, nanos, req.mutable_start_time());
    CHECK(absl::IsInvalidArgument(HistoryQueryOf("t", req).status()));
  }
  req = Request();
  SetTime(-62135596800, 0, req.mutable_start_time());
  SetTime(253402300799, 999999999, req.mutable_end_time());
  CHECK(HistoryQueryOf("t", req).ok());

  // Records are PASS or FAIL: no other state filters anything.
  for (int s : {0, 1, 4, 5, 99, -1}) {
    req = Request();
    req.add_states(static_cast<v1::AttestationState>(s));
    CHECK(absl::IsInvalidArgument(HistoryQueryOf("t", req).status()));
  }
  // Duplicates and order do not matter.
  req = Request();
  req.add_states(v1::ATTESTATION_STATE_PASS);
  req.add_states(v1::ATTESTATION_STATE_FAIL);
  q = HistoryQueryOf("t", req);
  REQUIRE(q.ok());
  CHECK(q->states.size() == 2);

  req = Request();
  req.set_agent_id("../etc");
  CHECK(absl::IsInvalidArgument(HistoryQueryOf("t", req).status()));
}

TEST_CASE("history query: a page token resumes its own query only",
          "[core][audit]") {
  const HistoryQuery q = *HistoryQueryOf("t", Request());
  const HistoryPosition last{
      absl::FromUnixSeconds(1700000100) + absl::Microseconds(123456),
      "att-0123456789abcdef"};
  const std::string token = HistoryToken(q, last);
  CHECK(token.size() < 200);
  absl::StatusOr<std::optional<HistoryPosition>> p =
      HistoryPositionOf(token, q);
  REQUIRE(p.ok());
  REQUIRE(p->has_value());
  CHECK((*p)->at == last.at);
  CHECK((*p)->attestation_id == last.attestation_id);
  // The first page has no token.
  p = HistoryPositionOf("", q);
  REQUIRE(p.ok());
  CHECK(!p->has_value());
  // Positions before 1970 and at the limits survive the round trip.
  for (absl::Time at :
       {absl::FromUnixSeconds(-62135596800), absl::FromUnixMicros(-1),
        absl::FromUnixSeconds(253402300799) + absl::Nanoseconds(999999999)}) {
    p = HistoryPositionOf(HistoryToken(q, {at, "x"}), q);
    REQUIRE(p.ok());
    REQUIRE(p->has_value());
    CHECK((*p)->at == at);
  }

  // The format is pinned: fuzz/corpus/history_token/first-position was
  // written by an independent encoder for this query and position.
  HistoryQuery fuzz_query = q;
  fuzz_query.tenant = "default";
  CHECK(HistoryToken(fuzz_query, last) ==
        "h1OJuBDZe311NoN9vAVE-ymgAAAABlU_FkAAAAAAdbygAUYXR0LTAxMjM0NTY3ODlhYmNk"
        "ZWYcARXRxeouqg");

  // Another query: each filter, and the tenant, is part of the binding.
  auto refused = [&](const HistoryQuery& other) {
    absl::Status st = HistoryPositionOf(token, other).status();
    CHECK(absl::IsInvalidArgument(st));
  };
  HistoryQuery other = q;
  other.tenant = "u";
  refused(other);
  other = q;
  other.agent_id = "node-2";
  refused(other);
  other = q;
  other.from = *q.from + absl::Microseconds(1);
  refused(other);
  other = q;
  other.to = std::nullopt;
  refused(other);
  other = q;
  other.states.clear();
  refused(other);

  // Every single changed character is refused (never a different
  // position), as are truncations, extensions and foreign tokens.
  for (size_t i = 0; i < token.size(); ++i) {
    std::string t = token;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    CHECK(!HistoryPositionOf(t, q).ok());
  }
  for (size_t n = 1; n < token.size(); ++n) {
    CHECK(absl::IsInvalidArgument(
        HistoryPositionOf(token.substr(0, n), q).status()));
  }
  CHECK(absl::IsInvalidArgument(HistoryPositionOf(token + "A", q).status()));
  for (const std::string& t :
       {std::string("h1"), std::string("x"),
        absl::BytesToHexString("t\nfilter\nlast"), std::string(1025, 'h'),
        std::string("h1") + std::string(2000, 'A'), std::string("h1!!!!")}) {
    CHECK(absl::IsInvalidArgument(HistoryPositionOf(t, q).status()));
  }
}

}  // namespace
}  // namespace vouch
