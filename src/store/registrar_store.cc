#include "store/registrar_store.h"

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace vouch::store {
namespace {

constexpr const char* kColumns =
    "r.agent_id, r.tenant, r.ek_public, r.ek_sha256, r.ek_certificate, "
    "r.ek_intermediates, r.ek_certificate_issuer, r.aik_public, r.aik_name, "
    "c.aik_name, r.agent_version, "
    "(extract(epoch from r.registered_at) * 1000000)::bigint, "
    "(extract(epoch from r.activated_at) * 1000000)::bigint";
constexpr const char* kFrom =
    " FROM registrations r LEFT JOIN registration_challenges c"
    " ON c.agent_id = r.agent_id ";

absl::StatusOr<std::string> Bytea(const std::optional<std::string>& v) {
  if (!v) return std::string();
  return FromBytea(*v);
}

absl::StatusOr<absl::Time> Micros(const std::string& v) {
  int64_t us = 0;
  if (!absl::SimpleAtoi(v, &us)) return absl::InternalError("bad timestamp");
  return absl::FromUnixMicros(us);
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
          c.Exec("INSERT INTO registrations AS r (agent_id, tenant, "
                 "ek_public, ek_sha256, ek_certificate, ek_intermediates, "
                 "ek_certificate_issuer, agent_version) VALUES ($1, $2, $3, "
                 "$4, $5, $6, $7, $8) ON CONFLICT (agent_id) DO UPDATE SET "
                 "tenant = EXCLUDED.tenant, ek_public = EXCLUDED.ek_public, "
                 "ek_sha256 = EXCLUDED.ek_sha256, ek_certificate = "
                 "EXCLUDED.ek_certificate, ek_intermediates = "
                 "EXCLUDED.ek_intermediates, ek_certificate_issuer = "
                 "EXCLUDED.ek_certificate_issuer, agent_version = "
                 "EXCLUDED.agent_version, registered_at = CASE WHEN "
                 "r.activated_at IS NULL THEN now() ELSE r.registered_at END",
                 {reg.agent_id, reg.tenant, ToBytea(reg.ek_public), ek_hex,
                  ToBytea(reg.ek_certificate), absl::StrJoin(inter, ","),
                  reg.ek_certificate_issuer, reg.agent_version})
              .status());
    }
    VOUCH_ASSIGN_OR_RETURN(
        PgRows expires,
        c.Query("INSERT INTO registration_challenges (agent_id, secret, "
                "aik_public, aik_name, expires_at, ek_sha256) VALUES ($1, $2, "
                "$3, $4, now() + make_interval(secs => $5::float8), $6) ON "
                "CONFLICT (agent_id) DO UPDATE SET secret = EXCLUDED.secret, "
                "aik_public = EXCLUDED.aik_public, aik_name = "
                "EXCLUDED.aik_name, expires_at = EXCLUDED.expires_at, "
                "ek_sha256 = EXCLUDED.ek_sha256 "
                "RETURNING (extract(epoch from expires_at) * 1000000)::bigint",
                {reg.agent_id, ToBytea(challenge.secret),
                 ToBytea(challenge.aik_public), ToBytea(challenge.aik_name),
                 absl::StrCat(absl::ToDoubleSeconds(challenge.ttl)), ek_hex}));
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
    const std::function<bool(const std::string&)>& proof_ok) {
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
                        "= r.ek_sha256"),
                    {agent_id, tenant}));
        if (taken.rows.empty()) return ActivateOutcome::kNoChallenge;
        const auto& row = taken.rows[0];
        if (row[3].value_or("t") != "f") return ActivateOutcome::kExpired;
        VOUCH_ASSIGN_OR_RETURN(std::string secret, Bytea(row[0]));
        if (!proof_ok(secret)) return ActivateOutcome::kBadProof;
        // Only an activated registration keeps its row for another TPM's
        // challenge (Register).
        if (row[5].value_or("f") != "t") return ActivateOutcome::kOtherTpm;
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
        PgRows reg, c.Query("SELECT 1 FROM registrations WHERE tenant = $1 "
                            "AND agent_id = $2 FOR UPDATE",
                            {tenant, agent_id}));
    if (reg.rows.empty()) return absl::NotFoundError("no such agent");
    VOUCH_ASSIGN_OR_RETURN(
        PgRows enrolled,
        c.Query("SELECT 1 FROM agent_state WHERE agent_id = $1", {agent_id}));
    if (!enrolled.rows.empty()) {
      return absl::FailedPreconditionError("enrolled");
    }
    return c
        .Exec("DELETE FROM registrations WHERE tenant = $1 AND agent_id = $2",
              {tenant, agent_id})
        .status();
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

}  // namespace vouch::store
