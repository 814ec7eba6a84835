#include "store/pg_policy_sources.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "store/pg_columns.h"
#include "store/pg_connection.h"

namespace vouch::store {
namespace {

constexpr const char* kKeyColumns =
    "tenant, name, pem, key_id, (extract(epoch from created_at) * "
    "1000000)::bigint, created_by";

absl::StatusOr<PolicySigningKeyRow> KeyFromRow(const Row& r) {
  PolicySigningKeyRow k;
  k.tenant = r[0].value_or("");
  k.name = r[1].value_or("");
  k.pem = r[2].value_or("");
  k.key_id = r[3].value_or("");
  VOUCH_ASSIGN_OR_RETURN(std::optional<absl::Time> at, OptionalMicros(r[4]));
  k.created_at = at.value_or(absl::UnixEpoch());
  k.created_by = r[5].value_or("");
  return k;
}

constexpr const char* kSourceColumns =
    "tenant, name, url, refresh_ms, require_signature, created_by, etag, "
    "(extract(epoch from last_fetch_at) * 1000000)::bigint, last_result, "
    "last_error, (extract(epoch from next_fetch_at) * 1000000)::bigint";

absl::StatusOr<PolicySourceRow> SourceFromRow(const Row& r) {
  PolicySourceRow s;
  s.tenant = r[0].value_or("");
  s.name = r[1].value_or("");
  s.url = r[2].value_or("");
  int64_t ms = 0;
  if (!absl::SimpleAtoi(r[3].value_or(""), &ms)) {
    return absl::InternalError("bad refresh_ms column");
  }
  s.refresh = absl::Milliseconds(ms);
  s.require_signature = r[4].value_or("f") == "t";
  s.created_by = r[5].value_or("");
  s.etag = r[6].value_or("");
  VOUCH_ASSIGN_OR_RETURN(s.last_fetch_at, OptionalMicros(r[7]));
  s.last_result = r[8].value_or("");
  s.last_error = r[9].value_or("");
  VOUCH_ASSIGN_OR_RETURN(s.next_fetch_at, OptionalMicros(r[10]));
  return s;
}

std::string Ms(absl::Duration d) {
  return absl::StrCat(absl::ToInt64Milliseconds(d));
}

}  // namespace

absl::StatusOr<PolicySigningKeyRow> PgPolicySources::AddKey(
    const PolicySigningKeyRow& key) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return InTransaction(
      *db, [&](PgConnection& c) -> absl::StatusOr<PolicySigningKeyRow> {
        VOUCH_RETURN_IF_ERROR(
            c.Exec("SELECT pg_advisory_xact_lock(hashtext('policy-keys/' || "
                   "$1))",
                   {key.tenant})
                .status());
        VOUCH_ASSIGN_OR_RETURN(
            PgRows n, c.Query("SELECT count(*) FROM policy_signing_keys "
                              "WHERE tenant = $1",
                              {key.tenant}));
        int count = 0;
        if (n.rows.empty() ||
            !absl::SimpleAtoi(n.rows[0][0].value_or(""), &count)) {
          return absl::InternalError("bad count");
        }
        if (count >= kMaxPolicySigningKeys) {
          return absl::ResourceExhaustedError(
              absl::StrCat("a tenant holds at most ", kMaxPolicySigningKeys,
                           " policy-signing keys"));
        }
        absl::StatusOr<PgRows> rows = c.Query(
            absl::StrCat("INSERT INTO policy_signing_keys (tenant, name, pem, "
                         "key_id, created_by) VALUES ($1, $2, $3, $4, $5) "
                         "RETURNING ",
                         kKeyColumns),
            {key.tenant, key.name, key.pem, key.key_id, key.created_by});
        if (absl::IsAlreadyExists(rows.status())) {
          return absl::AlreadyExistsError(
              absl::StrCat("policy-signing key ", key.name, " exists"));
        }
        if (!rows.ok()) return rows.status();
        if (rows->rows.empty()) return absl::InternalError("key not inserted");
        return KeyFromRow(rows->rows[0]);
      });
}

absl::StatusOr<std::vector<PolicySigningKeyRow>> PgPolicySources::ListKeys(
    const std::string& tenant) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(absl::StrCat("SELECT ", kKeyColumns,
                             " FROM policy_signing_keys WHERE tenant = $1 "
                             "ORDER BY name LIMIT 1000"),
                {tenant}));
  std::vector<PolicySigningKeyRow> out;
  for (const Row& r : rows.rows) {
    VOUCH_ASSIGN_OR_RETURN(PolicySigningKeyRow k, KeyFromRow(r));
    out.push_back(std::move(k));
  }
  return out;
}

absl::Status PgPolicySources::DeleteKey(const std::string& tenant,
                                        const std::string& name) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      int64_t n, db->Exec("DELETE FROM policy_signing_keys WHERE tenant = $1 "
                          "AND name = $2",
                          {tenant, name}));
  if (n == 0) {
    return absl::NotFoundError(absl::StrCat("no policy-signing key ", name));
  }
  return absl::OkStatus();
}

absl::Status PgPolicySources::SaveSource(const PolicySourceRow& s) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return db
      ->Exec(
          "INSERT INTO policy_sources (tenant, name, url, refresh_ms, "
          "require_signature, created_by, etag, last_fetch_at, last_result, "
          "last_error, next_fetch_at) VALUES ($1, $2, $3, $4, $5, $6, $7, "
          "now(), $8, $9, CASE WHEN $4::bigint > 0 THEN now() + $4::bigint * "
          "interval '1 millisecond' END) ON CONFLICT (tenant, name) DO UPDATE "
          "SET url = EXCLUDED.url, refresh_ms = EXCLUDED.refresh_ms, "
          "require_signature = EXCLUDED.require_signature, created_by = "
          "EXCLUDED.created_by, etag = EXCLUDED.etag, last_fetch_at = now(), "
          "last_result = EXCLUDED.last_result, last_error = "
          "EXCLUDED.last_error, next_fetch_at = EXCLUDED.next_fetch_at, "
          "lease_owner = '', lease_until = NULL",
          {s.tenant, s.name, s.url, Ms(s.refresh),
           s.require_signature ? "true" : "false", s.created_by, s.etag,
           s.last_result, s.last_error})
      .status();
}

absl::StatusOr<std::optional<PolicySourceRow>> PgPolicySources::GetSource(
    const std::string& tenant, const std::string& name) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows, db->Query(absl::StrCat("SELECT ", kSourceColumns,
                                          " FROM policy_sources WHERE tenant "
                                          "= $1 AND name = $2"),
                             {tenant, name}));
  if (rows.rows.empty()) return std::optional<PolicySourceRow>();
  VOUCH_ASSIGN_OR_RETURN(PolicySourceRow s, SourceFromRow(rows.rows[0]));
  return std::optional<PolicySourceRow>(std::move(s));
}

absl::StatusOr<std::optional<PolicySourceRow>> PgPolicySources::ClaimDue(
    const std::string& holder, absl::Duration lease) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(
          absl::StrCat(
              "UPDATE policy_sources SET lease_owner = $1, lease_until = "
              "now() + $2::bigint * interval '1 millisecond' WHERE (tenant, "
              "name) = (SELECT tenant, name FROM policy_sources WHERE "
              "next_fetch_at <= now() AND (lease_until IS NULL OR "
              "lease_until < now()) ORDER BY next_fetch_at LIMIT 1 FOR "
              "UPDATE SKIP LOCKED) RETURNING ",
              kSourceColumns),
          {holder, Ms(lease)}));
  if (rows.rows.empty()) return std::optional<PolicySourceRow>();
  VOUCH_ASSIGN_OR_RETURN(PolicySourceRow s, SourceFromRow(rows.rows[0]));
  return std::optional<PolicySourceRow>(std::move(s));
}

absl::Status PgPolicySources::RecordFetch(const PolicySourceRow& s,
                                          const std::string& holder,
                                          const std::string& result,
                                          const std::string& error,
                                          const std::string& etag) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      int64_t n,
      db->Exec("UPDATE policy_sources SET last_fetch_at = now(), last_result "
               "= $4, last_error = $5, etag = CASE WHEN $6 = '' THEN etag "
               "ELSE $6 END, next_fetch_at = CASE WHEN refresh_ms > 0 THEN "
               "now() + refresh_ms * interval '1 millisecond' END, "
               "lease_owner = '', lease_until = NULL WHERE tenant = $1 AND "
               "name = $2 AND lease_owner = $3",
               {s.tenant, s.name, holder, result, error, etag}));
  if (n == 0) {
    return absl::AbortedError("the policy source's fetch lease was lost");
  }
  return absl::OkStatus();
}

absl::Status PgPolicySources::DeleteSource(const std::string& tenant,
                                           const std::string& name) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return db
      ->Exec("DELETE FROM policy_sources WHERE tenant = $1 AND name = $2",
             {tenant, name})
      .status();
}

}  // namespace vouch::store
