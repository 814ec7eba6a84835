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

}  // namespace

absl::StatusOr<absl::Time> PgRegistrarStore::Register(
    const Registration& reg, const PendingChallenge& challenge) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return InTransaction(*db, [&](PgConnection& c) -> absl::StatusOr<absl::Time> {
    VOUCH_ASSIGN_OR_RETURN(
        PgRows existing,
        c.Query("SELECT ek_sha256, tenant FROM registrations WHERE agent_id "
                "= $1 FOR UPDATE",
                {reg.agent_id}));
    const std::string ek_hex = ToBytea(reg.ek_sha256);
    if (!existing.rows.empty()) {
      VOUCH_ASSIGN_OR_RETURN(std::string ek, Bytea(existing.rows[0][0]));
      if (ek != reg.ek_sha256 || existing.rows[0][1] != reg.tenant) {
        return absl::AlreadyExistsError(
            "this agent_id is registered with another TPM; an admin must "
            "delete it first");
      }
    }
    VOUCH_ASSIGN_OR_RETURN(
        PgRows other, c.Query("SELECT 1 FROM registrations WHERE ek_sha256 = "
                              "$1 AND agent_id <> $2",
                              {ek_hex, reg.agent_id}));
    if (!other.rows.empty()) {
      return absl::AlreadyExistsError(
          "this EK is registered under another agent_id");
    }
    std::vector<std::string> inter;
    for (const std::string& der : reg.ek_intermediates) {
      inter.push_back(absl::BytesToHexString(der));
    }
    VOUCH_RETURN_IF_ERROR(
        c.Exec("INSERT INTO registrations (agent_id, tenant, ek_public, "
               "ek_sha256, ek_certificate, ek_intermediates, "
               "ek_certificate_issuer, agent_version) VALUES ($1, $2, $3, $4, "
               "$5, $6, $7, $8) ON CONFLICT (agent_id) DO UPDATE SET "
               "ek_public = EXCLUDED.ek_public, ek_certificate = "
               "EXCLUDED.ek_certificate, ek_intermediates = "
               "EXCLUDED.ek_intermediates, ek_certificate_issuer = "
               "EXCLUDED.ek_certificate_issuer, agent_version = "
               "EXCLUDED.agent_version",
               {reg.agent_id, reg.tenant, ToBytea(reg.ek_public), ek_hex,
                ToBytea(reg.ek_certificate), absl::StrJoin(inter, ","),
                reg.ek_certificate_issuer, reg.agent_version})
            .status());
    VOUCH_ASSIGN_OR_RETURN(
        PgRows expires,
        c.Query("INSERT INTO registration_challenges (agent_id, secret, "
                "aik_public, aik_name, expires_at) VALUES ($1, $2, $3, $4, "
                "now() + make_interval(secs => $5::float8)) ON CONFLICT "
                "(agent_id) DO UPDATE SET secret = EXCLUDED.secret, "
                "aik_public = EXCLUDED.aik_public, aik_name = "
                "EXCLUDED.aik_name, expires_at = EXCLUDED.expires_at "
                "RETURNING (extract(epoch from expires_at) * 1000000)::bigint",
                {reg.agent_id, ToBytea(challenge.secret),
                 ToBytea(challenge.aik_public), ToBytea(challenge.aik_name),
                 absl::StrCat(absl::ToDoubleSeconds(challenge.ttl))}));
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
            c.Query("DELETE FROM registration_challenges ch USING "
                    "registrations r WHERE ch.agent_id = $1 AND r.agent_id = "
                    "ch.agent_id AND r.tenant = $2 RETURNING ch.secret, "
                    "ch.aik_public, ch.aik_name, ch.expires_at < now(), "
                    "r.ek_sha256",
                    {agent_id, tenant}));
        if (taken.rows.empty()) return ActivateOutcome::kNoChallenge;
        const auto& row = taken.rows[0];
        if (row[3].value_or("t") != "f") return ActivateOutcome::kExpired;
        VOUCH_ASSIGN_OR_RETURN(std::string secret, Bytea(row[0]));
        if (!proof_ok(secret)) return ActivateOutcome::kBadProof;
        VOUCH_RETURN_IF_ERROR(
            c.Exec("UPDATE registrations SET aik_public = $2, aik_name = $3, "
                   "activated_at = now() WHERE agent_id = $1",
                   {agent_id, row[1], row[2]})
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
                             "WHERE r.tenant = $1 AND r.agent_id = $2"),
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
                             "WHERE r.tenant = $1 AND r.agent_id > $2", filter,
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
  VOUCH_ASSIGN_OR_RETURN(
      int64_t n,
      db->Exec("DELETE FROM registrations WHERE tenant = $1 AND agent_id = $2",
               {tenant, agent_id}));
  if (n == 0) return absl::NotFoundError("no such agent");
  return absl::OkStatus();
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
