#include "core/audit/history_query.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/agent_id.h"
#include "core/attest/limits.h"

namespace vouch::core::audit {
namespace {

// google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z ..
// 9999-12-31T23:59:59.999999999Z.
constexpr int64_t kMinSeconds = -62135596800;
constexpr int64_t kMaxSeconds = 253402300799;
constexpr size_t kDigestBytes = 16;
constexpr size_t kCheckBytes = 8;
constexpr absl::string_view kTokenPrefix = "h1";

absl::StatusOr<std::optional<absl::Time>> Bound(
    bool set, const google::protobuf::Timestamp& t, absl::string_view field) {
  if (!set) return std::optional<absl::Time>();
  if (t.seconds() < kMinSeconds || t.seconds() > kMaxSeconds || t.nanos() < 0 ||
      t.nanos() > 999999999) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": a valid time between years 1 and 9999"));
  }
  // Up to the next microsecond: the database keeps microseconds, and
  // "at >= x.5 us" and "at < x.5 us" select what "x+1 us" selects.
  const int64_t micros = (int64_t{t.nanos()} + 999) / 1000;
  return absl::FromUnixSeconds(t.seconds()) + absl::Microseconds(micros);
}

void PutU64(uint64_t v, std::string* out) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>(v >> (8 * i)));
}

uint64_t GetU64(absl::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

void PutString(absl::string_view s, std::string* out) {
  PutU64(s.size(), out);
  out->append(s.data(), s.size());
}

void PutTime(const std::optional<absl::Time>& t, std::string* out) {
  out->push_back(t ? 1 : 0);
  PutU64(t ? static_cast<uint64_t>(absl::ToUnixMicros(*t)) : 0, out);
}

std::string Sha256Prefix(absl::string_view domain, absl::string_view data,
                         size_t n) {
  const std::string input = absl::StrCat(domain, data);
  uint8_t md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(input.data()), input.size(), md);
  return std::string(reinterpret_cast<const char*>(md), n);
}

// Binds a token to everything that selects records (not the page size,
// which may change from page to page).
std::string QueryDigest(const HistoryQuery& q) {
  std::string canonical;
  PutString(q.tenant, &canonical);
  PutString(q.agent_id, &canonical);
  PutTime(q.from, &canonical);
  PutTime(q.to, &canonical);
  PutU64(q.states.size(), &canonical);
  for (AgentState s : q.states) PutU64(static_cast<uint64_t>(s), &canonical);
  return Sha256Prefix(absl::string_view("vouch history query v1\0", 23),
                      canonical, kDigestBytes);
}

std::string Check(absl::string_view body) {
  return Sha256Prefix(absl::string_view("vouch history token v1\0", 23), body,
                      kCheckBytes);
}

absl::Status NotThisQuery() {
  return absl::InvalidArgumentError(
      "page_token: not a page token of this query (filters changed, or "
      "altered); start again without it");
}

}  // namespace

absl::StatusOr<HistoryQuery> HistoryQueryOf(
    const std::string& tenant, const v1::GetAttestationHistoryRequest& req) {
  HistoryQuery q;
  q.tenant = tenant;
  if (!req.agent_id().empty()) {
    VOUCH_RETURN_IF_ERROR(ValidateAgentId(req.agent_id()));
    q.agent_id = req.agent_id();
  }
  VOUCH_ASSIGN_OR_RETURN(
      q.from, Bound(req.has_start_time(), req.start_time(), "start_time"));
  VOUCH_ASSIGN_OR_RETURN(q.to,
                         Bound(req.has_end_time(), req.end_time(), "end_time"));
  if (q.from && q.to && *q.from > *q.to) {
    return absl::InvalidArgumentError("start_time: must not be after end_time");
  }
  for (int s : req.states()) {
    if (s != v1::ATTESTATION_STATE_PASS && s != v1::ATTESTATION_STATE_FAIL) {
      return absl::InvalidArgumentError(
          "states: attestation records are PASS or FAIL");
    }
    q.states.push_back(static_cast<AgentState>(s));
  }
  std::sort(q.states.begin(), q.states.end());
  q.states.erase(std::unique(q.states.begin(), q.states.end()), q.states.end());
  return q;
}

bool InRange(const HistoryQuery& q, absl::Time t) {
  return (!q.from || t >= *q.from) && (!q.to || t < *q.to);
}

std::string HistoryToken(const HistoryQuery& q, const HistoryPosition& last) {
  std::string body = QueryDigest(q);
  const int64_t seconds = absl::ToUnixSeconds(last.at);
  const int64_t nanos =
      absl::ToInt64Nanoseconds(last.at - absl::FromUnixSeconds(seconds));
  PutU64(static_cast<uint64_t>(seconds), &body);
  PutU64(static_cast<uint64_t>(nanos), &body);
  body.push_back(static_cast<char>(last.attestation_id.size()));
  body.append(last.attestation_id);
  body.append(Check(body));
  return absl::StrCat(kTokenPrefix, absl::WebSafeBase64Escape(body));
}

absl::StatusOr<std::optional<HistoryPosition>> HistoryPositionOf(
    absl::string_view token, const HistoryQuery& q) {
  if (token.empty()) return std::optional<HistoryPosition>();
  std::string body;
  constexpr size_t kFixed = kDigestBytes + 8 + 8 + 1;
  if (token.size() > attest::kMaxPageTokenBytes ||
      token.substr(0, kTokenPrefix.size()) != kTokenPrefix ||
      !absl::WebSafeBase64Unescape(token.substr(kTokenPrefix.size()), &body) ||
      body.size() < kFixed + kCheckBytes ||
      // One spelling per token: no padding, no stray low bits.
      absl::WebSafeBase64Escape(body) != token.substr(kTokenPrefix.size())) {
    return absl::InvalidArgumentError(
        "page_token: malformed (pass next_page_token back unchanged)");
  }
  const size_t id_size = static_cast<uint8_t>(body[kFixed - 1]);
  if (id_size == 0 || id_size > attest::kMaxAttestationIdBytes ||
      body.size() != kFixed + id_size + kCheckBytes) {
    return absl::InvalidArgumentError(
        "page_token: malformed (pass next_page_token back unchanged)");
  }
  const absl::string_view signed_part(body.data(), kFixed + id_size);
  if (Check(signed_part) != body.substr(kFixed + id_size) ||
      body.substr(0, kDigestBytes) != QueryDigest(q)) {
    return NotThisQuery();
  }
  const int64_t seconds =
      static_cast<int64_t>(GetU64(absl::string_view(body).substr(16)));
  const uint64_t nanos = GetU64(absl::string_view(body).substr(24));
  if (seconds < kMinSeconds || seconds > kMaxSeconds || nanos > 999999999) {
    return NotThisQuery();
  }
  HistoryPosition p;
  p.at = absl::FromUnixSeconds(seconds) +
         absl::Nanoseconds(static_cast<int64_t>(nanos));
  p.attestation_id = body.substr(kFixed, id_size);
  return p;
}

}  // namespace vouch::core::audit
