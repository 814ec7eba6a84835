#include "store/registrar_store.h"

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "core/translog/tree_head.h"
#include "store/pg_columns.h"
#include "store/pg_translog.h"
#include "store/pg_verifier_store.h"

namespace vouch::store {
namespace {

constexpr const char* kColumns =
    "r.agent_id, r.tenant, r.ek_public, r.ek_sha256, r.ek_certificate, "
    "r.ek_intermediates, r.ek_certificate_issuer, r.aik_public, r.aik_name, "
    "c.aik_name, r.agent_version, "
    "(extract(epoch from r.registered_at) * 1000000)::bigint, "
    "(extract(epoch from r.activated_at) * 1000000)::bigint, "
    "(SELECT string_agg(key || '=' || value, ',' ORDER BY key) FROM "
    "jsonb_each_text(r.agent_labels || r.operator_labels))";
constexpr const char* kFrom =
    " FROM registrations r LEFT JOIN registration_challenges c"
    " ON c.agent_id = r.agent_id ";

// NULL for an empty value.
PgParam OptionalBytea(const std::string& v) {
  if (v.empty()) return std::nullopt;
  return ToBytea(v);
}

// Queues the transparency-log leaf of a binding (or its removal) in the
// caller's transaction; ek_sha256 and aik_name as bytea columns.
absl::Status LogBinding(PgConnection& c, core::translog::LeafKind kind,
                        const std::string& agent_id, const std::string& tenant,
                        const std::optional<std::string>& ek_sha256,
                        const std::optional<std::string>& aik_name) {
  VOUCH_ASSIGN_OR_RETURN(std::string ek, Bytea(ek_sha256));
  VOUCH_ASSIGN_OR_RETURN(std::string aik, Bytea(aik_name));
  return TranslogAppend(
      c, kind, agent_id,
      core::translog::TranslogLeafForBinding(
          kind, agent_id, tenant, ek, core::translog::BindingAikDigest(aik),
          absl::Now()));
}

// Deletes the registration in `c`'s transaction (the caller holds its row
// lock); an activated one had a binding, so its removal is logged.
absl::Status RemoveRegistration(PgConnection& c, const std::string& tenant,
                                const std::string& agent_id, bool activated,
                                const std::optional<std::string>& ek_sha256,
                                const std::optional<std::string>& aik_name) {
  VOUCH_RETURN_IF_ERROR(
      c.Exec("DELETE FROM registrations WHERE tenant = $1 AND agent_id = $2",
             {tenant, agent_id})
          .status());
  if (!activated || !aik_name) return absl::OkStatus();
  return LogBinding(c, core::translog::LeafKind::kRemoval, agent_id, tenant,
                    ek_sha256, aik_name);
}

constexpr const char* kTokenColumns =
    "id, tenant, uses, used, "
    "(extract(epoch from expires_at) * 1000000)::bigint, "
    "(extract(epoch from created_at) * 1000000)::bigint, description, "
    "revoked_at IS NOT NULL";

absl::StatusOr<JoinTokenRecord> TokenFromRow(
    const std::vector<std::optional<std::string>>& row) {
  JoinTokenRecord t;
  t.id = row[0].value_or("");
  t.tenant = row[1].value_or("");
  if (!absl::SimpleAtoi(row[2].value_or(""), &t.uses) ||
      !absl::SimpleAtoi(row[3].value_or(""), &t.used)) {
    return absl::InternalError("bad join token row");
  }
  if (row[4]) {
    VOUCH_ASSIGN_OR_RETURN(absl::Time e, Micros(*row[4]));
    t.expires_at = e;
  }
  VOUCH_ASSIGN_OR_RETURN(t.created_at, Micros(row[5].value_or("")));
  t.description = row[6].value_or("");
  t.revoked = row[7].value_or("f") == "t";
  return t;
}

// "k=v,k2=v2" (label characters exclude ',' and '=' in keys).
std::map<std::string, std::string> ParseLabelList(absl::string_view list) {
  std::map<std::string, std::string> out;
  if (list.empty()) return out;
  for (absl::string_view kv : absl::StrSplit(list, ',')) {
    std::pair<std::string, std::string> p =
        absl::StrSplit(kv, absl::MaxSplits('=', 1));
    out.insert(std::move(p));
  }
  return out;
}

absl::StatusOr<Registration> FromRow(
    const std::vector<std::optional<std::string>>& row) {
  Registration r;
  r.agent_id = row[0].value_or("");
  r.tenant = row[1].value_or("");
  VOUCH_ASSIGN_OR_RETURN(r.ek_public, Bytea(row[2]));
  VOUCH_ASSIGN_OR_RETURN(r.ek_sha256, Bytea(row[3]));
  VOUCH_ASSIGN_OR_RETURN(r.ek_certificate, Bytea(row[4]));
  if (row[5] && !row[5]->empty()) {
    for (absl::string_view hex : absl::StrSplit(*row[5], ',')) {
      r.ek_intermediates.push_back(absl::HexStringToBytes(hex));
    }
  }
  r.ek_certificate_issuer = row[6].value_or("");
  VOUCH_ASSIGN_OR_RETURN(r.aik_public, Bytea(row[7]));
  VOUCH_ASSIGN_OR_RETURN(r.aik_name, Bytea(row[8]));
  VOUCH_ASSIGN_OR_RETURN(r.pending_aik_name, Bytea(row[9]));
  r.agent_version = row[10].value_or("");
  VOUCH_ASSIGN_OR_RETURN(r.registered_at, Micros(row[11].value_or("")));
  if (row[12]) {
    VOUCH_ASSIGN_OR_RETURN(absl::Time t, Micros(*row[12]));
    r.activated_at = t;
  }
  r.labels = ParseLabelList(row[13].value_or(""));
  return r;
}

// SQL: registration `r` is activated, or pending and younger than `ttl`.
std::string Live(absl::Duration ttl) {
  return absl::StrCat(
      "(r.activated_at IS NOT NULL OR r.registered_at >= now() - "
      "make_interval(secs => ",
      absl::ToDoubleSeconds(ttl), "))");
}

}  // namespace

absl::StatusOr<absl::Time> PgRegistrarStore::Register(
    const Registration& reg, const PendingChallenge& challenge) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return InTransaction(*db, [&](PgConnection& c) -> absl::StatusOr<absl::Time> {
    VOUCH_ASSIGN_OR_RETURN(
        PgRows existing,
        c.Query("SELECT ek_sha256, tenant, activated_at IS NOT NULL FROM "
                "registrations WHERE agent_id = $1 FOR UPDATE",
                {reg.agent_id}));
    const std::string ek_hex = ToBytea(reg.ek_sha256);
    bool keep_row = false;  // An activated registration of another TPM.
    if (!existing.rows.empty() && existing.rows[0][2].value_or("f") == "t") {
      VOUCH_ASSIGN_OR_RETURN(std::string ek, Bytea(existing.rows[0][0]));
      if (existing.rows[0][1] != reg.tenant) {
        return absl::AlreadyExistsError(
            "this agent_id is registered in another tenant; an admin must "
            "delete it first");
      }
      keep_row = ek != reg.ek_sha256;
    }
    VOUCH_ASSIGN_OR_RETURN(
        PgRows other,
        c.Query("SELECT 1 FROM registrations WHERE ek_sha256 = $1 AND "
                "agent_id <> $2 AND activated_at IS NOT NULL",
                {ek_hex, reg.agent_id}));
    if (!other.rows.empty()) {
      return absl::AlreadyExistsError(
          "this EK is registered under another agent_id");
    }
    std::vector<std::string> inter;
    for (const std::string& der : reg.ek_intermediates) {
      inter.push_back(absl::BytesToHexString(der));
    }
    if (!keep_row) {
      // A pending registration (of whoever) is replaced as a whole; an
      // activated one of this TPM keeps its AIK and registered_at.
      VOUCH_RETURN_IF_ERROR(
          c.Exec(
               "INSERT INTO registrations AS r (agent_id, tenant, "
               "ek_public, ek_sha256, ek_certificate, ek_intermediates, "
               "ek_certificate_issuer, agent_version, agent_labels) VALUES "
               "($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) ON CONFLICT "
               "(agent_id) DO UPDATE SET agent_labels = "
               "EXCLUDED.agent_labels, "
               "tenant = EXCLUDED.tenant, ek_public = EXCLUDED.ek_public, "
               "ek_sha256 = EXCLUDED.ek_sha256, ek_certificate = "
               "EXCLUDED.ek_certificate, ek_intermediates = "
               "EXCLUDED.ek_intermediates, ek_certificate_issuer = "
               "EXCLUDED.ek_certificate_issuer, agent_version = "
               "EXCLUDED.agent_version, registered_at = CASE WHEN "
               "r.activated_at IS NULL THEN now() ELSE r.registered_at END",
               {reg.agent_id, reg.tenant, ToBytea(reg.ek_public), ek_hex,
                ToBytea(reg.ek_certificate), absl::StrJoin(inter, ","),
                reg.ek_certificate_issuer, reg.agent_version, reg.labels_json})
              .status());
    }
    VOUCH_ASSIGN_OR_RETURN(
        PgRows expires,
        c.Query("INSERT INTO registration_challenges (agent_id, secret, "
                "aik_public, aik_name, expires_at, ek_sha256, csr_spki, "
                "join_token_sha256, ek_ca_join) VALUES ($1, $2, $3, $4, now() "
                "+ make_interval(secs => $5::float8), $6, $7, $8, $9) ON "
                "CONFLICT (agent_id) DO UPDATE SET secret = EXCLUDED.secret, "
                "aik_public = EXCLUDED.aik_public, aik_name = "
                "EXCLUDED.aik_name, expires_at = EXCLUDED.expires_at, "
                "ek_sha256 = EXCLUDED.ek_sha256, csr_spki = "
                "EXCLUDED.csr_spki, join_token_sha256 = "
                "EXCLUDED.join_token_sha256, ek_ca_join = EXCLUDED.ek_ca_join "
                "RETURNING (extract(epoch from expires_at) * 1000000)::bigint",
                {reg.agent_id, ToBytea(challenge.secret),
                 ToBytea(challenge.aik_public), ToBytea(challenge.aik_name),
                 absl::StrCat(absl::ToDoubleSeconds(challenge.ttl)), ek_hex,
                 OptionalBytea(challenge.csr_spki),
                 OptionalBytea(challenge.join_token_sha256),
                 challenge.ek_ca_join ? "true" : "false"}));
    VOUCH_RETURN_IF_ERROR(
        c.Exec("INSERT INTO ek_aik_bindings (agent_id, tenant, ek_sha256, "
               "aik_name, event) VALUES ($1, $2, $3, $4, 'registered')",
               {reg.agent_id, reg.tenant, ek_hex, ToBytea(challenge.aik_name)})
            .status());
    if (expires.rows.empty()) return absl::InternalError("no challenge row");
    return Micros(expires.rows[0][0].value_or(""));
  });
}

absl::StatusOr<ActivateOutcome> PgRegistrarStore::Activate(
    const std::string& tenant, const std::string& agent_id,
    const std::function<bool(const std::string&, const std::string&)>& proof_ok,
    ActivateDetails* details) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return InTransaction(
      *db, [&](PgConnection& c) -> absl::StatusOr<ActivateOutcome> {
        VOUCH_ASSIGN_OR_RETURN(
            PgRows taken,
            c.Query(absl::StrCat(
                        "DELETE FROM registration_challenges ch USING "
                        "registrations r WHERE ch.agent_id = $1 AND "
                        "r.agent_id = ch.agent_id AND r.tenant = $2 RETURNING "
                        "ch.secret, ch.aik_public, ch.aik_name, "
                        "ch.expires_at < now() OR NOT ",
                        Live(pending_ttl_),
                        ", r.ek_sha256, COALESCE(ch.ek_sha256, r.ek_sha256) "
                        "= r.ek_sha256, ch.csr_spki, ch.join_token_sha256, "
                        "r.activated_at IS NULL"),
                    {agent_id, tenant}));
        if (taken.rows.empty()) return ActivateOutcome::kNoChallenge;
        const auto& row = taken.rows[0];
        if (row[3].value_or("t") != "f") return ActivateOutcome::kExpired;
        VOUCH_ASSIGN_OR_RETURN(std::string secret, Bytea(row[0]));
        VOUCH_ASSIGN_OR_RETURN(std::string spki, Bytea(row[6]));
        if (!proof_ok(secret, spki)) return ActivateOutcome::kBadProof;
        // Only an activated registration keeps its row for another TPM's
        // challenge (Register).
        if (row[5].value_or("f") != "t") return ActivateOutcome::kOtherTpm;
        if (row[7]) {
          // The join token admits this join only if it still can, now.
          VOUCH_ASSIGN_OR_RETURN(
              int64_t consumed,
              c.Exec("UPDATE join_tokens SET used = used + 1 WHERE sha256 = "
                     "$1 AND tenant = $2 AND used < uses AND revoked_at IS "
                     "NULL AND (expires_at IS NULL OR expires_at > now())",
                     {row[7], tenant}));
          if (consumed != 1) return ActivateOutcome::kTokenRefused;
        }
        if (details != nullptr) {
          details->csr_spki = spki;
          details->first_activation = row[8].value_or("f") == "t";
        }
        absl::StatusOr<int64_t> set = c.Exec(
            "UPDATE registrations SET aik_public = $2, aik_name = $3, "
            "activated_at = now() WHERE agent_id = $1",
            {agent_id, row[1], row[2]});
        if (absl::IsAlreadyExists(set.status())) {
          // registrations_active_ek: another agent_id activated this EK
          // after Register looked.
          return absl::AlreadyExistsError(
              "this EK is registered under another agent_id");
        }
        VOUCH_RETURN_IF_ERROR(set.status());
        // Pending registrations of this EK elsewhere can never activate now.
        VOUCH_RETURN_IF_ERROR(
            c.Exec("DELETE FROM registrations r WHERE r.ek_sha256 = $1 AND "
                   "r.agent_id <> $2 AND r.activated_at IS NULL AND NOT "
                   "EXISTS (SELECT 1 FROM agent_state s WHERE s.agent_id = "
                   "r.agent_id)",
                   {row[4], agent_id})
                .status());
        VOUCH_RETURN_IF_ERROR(
            c.Exec("INSERT INTO ek_aik_bindings (agent_id, tenant, "
                   "ek_sha256, aik_name, event) VALUES ($1, $2, $3, $4, "
                   "'activated')",
                   {agent_id, tenant, row[4], row[2]})
                .status());
        // The transparency log's binding leaf, queued in this transaction
        // (docs/transparency-log.md).
        VOUCH_RETURN_IF_ERROR(LogBinding(c, core::translog::LeafKind::kBinding,
                                         agent_id, tenant, row[4], row[2]));
        return ActivateOutcome::kActivated;
      });
}

absl::StatusOr<Registration> PgRegistrarStore::Get(
    const std::string& tenant, const std::string& agent_id) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(absl::StrCat("SELECT ", kColumns, kFrom,
                             "WHERE r.tenant = $1 AND r.agent_id = $2 AND ",
                             Live(pending_ttl_)),
                {tenant, agent_id}));
  if (rows.rows.empty()) return absl::NotFoundError("no such agent");
  return FromRow(rows.rows[0]);
}

absl::StatusOr<std::vector<Registration>> PgRegistrarStore::List(
    const std::string& tenant, const std::string& after,
    std::optional<bool> active, int limit) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  std::string filter;
  if (active) {
    filter =
        *active ? " AND r.aik_name IS NOT NULL" : " AND r.aik_name IS NULL";
  }
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(absl::StrCat("SELECT ", kColumns, kFrom,
                             "WHERE r.tenant = $1 AND r.agent_id > $2 AND ",
                             Live(pending_ttl_), filter,
                             " ORDER BY r.agent_id LIMIT $3"),
                {tenant, after, absl::StrCat(limit)}));
  std::vector<Registration> out;
  for (const auto& row : rows.rows) {
    VOUCH_ASSIGN_OR_RETURN(Registration r, FromRow(row));
    out.push_back(std::move(r));
  }
  return out;
}

absl::Status PgRegistrarStore::Delete(const std::string& tenant,
                                      const std::string& agent_id) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  absl::Status s = InTransaction(*db, [&](PgConnection& c) -> absl::Status {
    // The row lock orders this against an Enroll that checked the
    // registration; the foreign key catches one that has not committed yet.
    VOUCH_ASSIGN_OR_RETURN(
        PgRows reg,
        c.Query("SELECT activated_at IS NOT NULL, ek_sha256, aik_name FROM "
                "registrations WHERE tenant = $1 AND agent_id = $2 FOR UPDATE",
                {tenant, agent_id}));
    if (reg.rows.empty()) return absl::NotFoundError("no such agent");
    VOUCH_ASSIGN_OR_RETURN(
        PgRows enrolled,
        c.Query("SELECT 1 FROM agent_state WHERE agent_id = $1", {agent_id}));
    if (!enrolled.rows.empty()) {
      return absl::FailedPreconditionError("enrolled");
    }
    const auto& row = reg.rows[0];
    return RemoveRegistration(c, tenant, agent_id, row[0].value_or("f") == "t",
                              row[1], row[2]);
  });
  // A foreign-key violation (23503) reads as kFailedPrecondition too; the
  // caller gets one message either way.
  if (absl::IsFailedPrecondition(s)) {
    return absl::FailedPreconditionError(
        "the agent is enrolled at the verifier; unenroll it first");
  }
  return s;
}

absl::StatusOr<int64_t> PgRegistrarStore::DeleteExpired() {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return db->Exec(absl::StrCat(
      "DELETE FROM registrations r WHERE NOT ", Live(pending_ttl_),
      " AND NOT EXISTS (SELECT 1 FROM agent_state s WHERE s.agent_id = "
      "r.agent_id)"));
}

namespace {

// SQL: the agent of registration `r` (with its agent_state `s`, if any) was
// last seen before now - $1 seconds.
constexpr const char* kUnseen =
    "r.activated_at IS NOT NULL AND GREATEST(r.registered_at, "
    "r.activated_at, s.last_verdict_at) < now() - make_interval(secs => "
    "$1::float8)";

}  // namespace

absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
PgRegistrarStore::PruneUnseen(absl::Duration unseen, int limit) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  const std::string secs = Secs(unseen);
  VOUCH_ASSIGN_OR_RETURN(
      PgRows candidates,
      db->Query(absl::StrCat("SELECT r.tenant, r.agent_id FROM registrations "
                             "r LEFT JOIN agent_state s ON s.agent_id = "
                             "r.agent_id WHERE ",
                             kUnseen, " ORDER BY r.agent_id LIMIT $2"),
                {secs, absl::StrCat(limit)}));
  std::vector<std::pair<std::string, std::string>> removed;
  for (const Row& c : candidates.rows) {
    const std::string tenant = c[0].value_or("");
    const std::string agent_id = c[1].value_or("");
    VOUCH_ASSIGN_OR_RETURN(
        bool gone,
        InTransaction(*db, [&](PgConnection& t) -> absl::StatusOr<bool> {
          // Locked, then checked again by a later statement (which sees
          // every commit before the lock): a verdict committed since the
          // list above keeps the agent, and one still to come finds no
          // registration and is fenced.
          VOUCH_RETURN_IF_ERROR(
              t.Query("SELECT 1 FROM registrations WHERE tenant = $1 AND "
                      "agent_id = $2 FOR UPDATE",
                      {tenant, agent_id})
                  .status());
          VOUCH_ASSIGN_OR_RETURN(
              PgRows reg,
              t.Query(absl::StrCat(
                          "SELECT r.ek_sha256, r.aik_name FROM registrations "
                          "r LEFT JOIN agent_state s ON s.agent_id = "
                          "r.agent_id WHERE r.tenant = $2 AND r.agent_id = "
                          "$3 AND ",
                          kUnseen),
                      {secs, tenant, agent_id}));
          if (reg.rows.empty()) return false;
          VOUCH_RETURN_IF_ERROR(UnenrollIn(t, tenant, agent_id).status());
          VOUCH_RETURN_IF_ERROR(RemoveRegistration(
              t, tenant, agent_id,
              /*activated=*/true, reg.rows[0][0], reg.rows[0][1]));
          return true;
        }));
    if (gone) removed.emplace_back(tenant, agent_id);
  }
  return removed;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
PgRegistrarStore::Bindings(const std::string& agent_id) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows, db->Query("SELECT event, aik_name FROM ek_aik_bindings "
                             "WHERE agent_id = $1 ORDER BY seq",
                             {agent_id}));
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& row : rows.rows) {
    VOUCH_ASSIGN_OR_RETURN(std::string name, Bytea(row[1]));
    out.emplace_back(row[0].value_or(""), std::move(name));
  }
  return out;
}

absl::StatusOr<JoinTokenRecord> PgRegistrarStore::CreateJoinToken(
    const std::string& tenant, const std::string& sha256, int uses,
    absl::Duration ttl, const std::string& description) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  const PgParam expires =
      ttl > absl::ZeroDuration()
          ? PgParam(absl::StrCat(absl::ToDoubleSeconds(ttl)))
          : std::nullopt;
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(absl::StrCat("INSERT INTO join_tokens (sha256, id, tenant, "
                             "uses, expires_at, description) VALUES ($1, $2, "
                             "$3, $4, now() + make_interval(secs => "
                             "$5::float8), $6) RETURNING ",
                             kTokenColumns),
                {ToBytea(sha256), absl::BytesToHexString(sha256).substr(0, 16),
                 tenant, absl::StrCat(uses), expires, description}));
  if (rows.rows.empty()) return absl::InternalError("no join token row");
  return TokenFromRow(rows.rows[0]);
}

absl::StatusOr<std::vector<JoinTokenRecord>> PgRegistrarStore::ListJoinTokens(
    const std::string& tenant) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(absl::StrCat("SELECT ", kTokenColumns,
                             " FROM join_tokens WHERE tenant = $1 ORDER BY id"),
                {tenant}));
  std::vector<JoinTokenRecord> out;
  for (const auto& row : rows.rows) {
    VOUCH_ASSIGN_OR_RETURN(JoinTokenRecord t, TokenFromRow(row));
    out.push_back(std::move(t));
  }
  return out;
}

absl::Status PgRegistrarStore::DeleteJoinToken(const std::string& tenant,
                                               const std::string& id) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      int64_t n,
      db->Exec("UPDATE join_tokens SET revoked_at = now() WHERE tenant = $1 "
               "AND id = $2 AND revoked_at IS NULL",
               {tenant, id}));
  if (n == 0) return absl::NotFoundError("no such join token");
  return absl::OkStatus();
}

absl::Status PgRegistrarStore::SetOperatorLabels(
    const std::string& tenant, const std::string& agent_id,
    const std::string& labels_json) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      int64_t n,
      db->Exec("UPDATE registrations SET operator_labels = $3::jsonb WHERE "
               "tenant = $1 AND agent_id = $2",
               {tenant, agent_id, labels_json}));
  if (n == 0) return absl::NotFoundError("no such agent");
  return absl::OkStatus();
}

namespace {

constexpr const char* kRuleColumns =
    "e.tenant, e.name, (SELECT string_agg(key || '=' || value, ',' ORDER BY "
    "key) FROM jsonb_each_text(e.selector)), e.runtime_policy, "
    "e.boot_policy, e.interval_ms, "
    "(extract(epoch from e.created_at) * 1000000)::bigint";

absl::StatusOr<EnrollmentRuleRecord> RuleFromRow(
    const std::vector<std::optional<std::string>>& row) {
  EnrollmentRuleRecord r;
  r.tenant = row[0].value_or("");
  r.name = row[1].value_or("");
  r.selector = ParseLabelList(row[2].value_or(""));
  r.runtime_policy = row[3].value_or("");
  r.boot_policy = row[4].value_or("");
  int64_t ms = 0;
  if (!absl::SimpleAtoi(row[5].value_or(""), &ms)) {
    return absl::InternalError("bad rule interval");
  }
  r.interval = absl::Milliseconds(ms);
  VOUCH_ASSIGN_OR_RETURN(r.created_at, Micros(row[6].value_or("")));
  return r;
}

}  // namespace

absl::StatusOr<EnrollmentRuleRecord> PgRegistrarStore::CreateRule(
    const EnrollmentRuleRecord& rule, const std::string& selector_json) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  absl::StatusOr<PgRows> rows = db->Query(
      absl::StrCat("INSERT INTO enrollment_rules AS e (tenant, name, "
                   "selector, runtime_policy, boot_policy, interval_ms) "
                   "VALUES ($1, $2, $3::jsonb, $4, $5, $6) RETURNING ",
                   kRuleColumns),
      {rule.tenant, rule.name, selector_json, rule.runtime_policy,
       rule.boot_policy,
       absl::StrCat(absl::ToInt64Milliseconds(rule.interval))});
  if (absl::IsAlreadyExists(rows.status())) {
    return absl::AlreadyExistsError("a rule of this name exists");
  }
  VOUCH_RETURN_IF_ERROR(rows.status());
  if (rows->rows.empty()) return absl::InternalError("no rule row");
  return RuleFromRow(rows->rows[0]);
}

absl::StatusOr<std::vector<EnrollmentRuleRecord>> PgRegistrarStore::ListRules(
    const std::string& tenant) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(absl::StrCat("SELECT ", kRuleColumns,
                             " FROM enrollment_rules e WHERE e.tenant = $1 "
                             "ORDER BY e.name"),
                {tenant}));
  std::vector<EnrollmentRuleRecord> out;
  for (const auto& row : rows.rows) {
    VOUCH_ASSIGN_OR_RETURN(EnrollmentRuleRecord r, RuleFromRow(row));
    out.push_back(std::move(r));
  }
  return out;
}

absl::Status PgRegistrarStore::DeleteRule(const std::string& tenant,
                                          const std::string& name) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      int64_t n,
      db->Exec("DELETE FROM enrollment_rules WHERE tenant = $1 AND name = $2",
               {tenant, name}));
  if (n == 0) return absl::NotFoundError("no such rule");
  return absl::OkStatus();
}

absl::StatusOr<std::optional<EnrollmentRuleRecord>>
PgRegistrarStore::MatchingRule(const std::string& tenant,
                               const std::string& agent_id) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(absl::StrCat("SELECT ", kRuleColumns,
                             " FROM enrollment_rules e JOIN registrations r "
                             "ON r.tenant = e.tenant WHERE e.tenant = $1 AND "
                             "r.agent_id = $2 AND (r.agent_labels || "
                             "r.operator_labels) @> e.selector ORDER BY "
                             "e.name LIMIT 1"),
                {tenant, agent_id}));
  if (rows.rows.empty()) return std::optional<EnrollmentRuleRecord>();
  VOUCH_ASSIGN_OR_RETURN(EnrollmentRuleRecord r, RuleFromRow(rows.rows[0]));
  return std::optional<EnrollmentRuleRecord>(std::move(r));
}

absl::StatusOr<std::string> PgRegistrarStore::JoinChallengeTenant(
    const std::string& agent_id) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query("SELECT r.tenant FROM registration_challenges c JOIN "
                "registrations r ON r.agent_id = c.agent_id WHERE c.agent_id "
                "= $1 AND (c.join_token_sha256 IS NOT NULL OR c.ek_ca_join)",
                {agent_id}));
  if (rows.rows.empty()) return absl::NotFoundError("no join challenge");
  return rows.rows[0][0].value_or("");
}

absl::StatusOr<std::pair<JoinTokenState, std::string>>
PgRegistrarStore::CheckJoinToken(const std::string& sha256) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query("SELECT tenant, expires_at IS NOT NULL AND expires_at <= "
                "now(), used >= uses, revoked_at IS NOT NULL FROM join_tokens "
                "WHERE sha256 = $1",
                {ToBytea(sha256)}));
  if (rows.rows.empty()) return std::make_pair(JoinTokenState::kUnknown, "");
  const auto& row = rows.rows[0];
  JoinTokenState state = JoinTokenState::kUsable;
  if (row[3].value_or("t") == "t") {
    state = JoinTokenState::kRevoked;
  } else if (row[1].value_or("t") == "t") {
    state = JoinTokenState::kExpired;
  } else if (row[2].value_or("t") == "t") {
    state = JoinTokenState::kUsedUp;
  }
  return std::make_pair(state, row[0].value_or(""));
}

}  // namespace vouch::store
