#include "store/pg_verifier_store.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "core/translog/tree_head.h"
#include "store/pg_columns.h"
#include "store/pg_translog.h"

namespace vouch::store {
namespace {

// A state read from our own columns (the CHECK constraints keep them to
// these names); anything else is a bug.
absl::StatusOr<core::AgentState> State(const std::optional<std::string>& v) {
  const core::AgentState s = core::ParseAgentState(v.value_or(""));
  if (s == v1::ATTESTATION_STATE_UNSPECIFIED) {
    return absl::InternalError("bad state column");
  }
  return s;
}

// {pass,fail}: a text[] literal of our own enum names, never caller text.
PgParam StateArray(const std::vector<core::AgentState>& states) {
  if (states.empty()) return std::nullopt;
  std::vector<std::string> names;
  for (core::AgentState s : states) {
    names.emplace_back(core::AgentStateName(s));
  }
  return absl::StrCat("{", absl::StrJoin(names, ","), "}");
}

// The state as read: never a stale pass (see AgentRow::state).
std::string EffectiveState(int k) {
  return absl::StrCat(
      "CASE WHEN a.state IN ('pass', 'pending') AND "
      "COALESCE(a.last_verdict_at, a.enrolled_at) < now() - "
      "make_interval(secs => a.interval_ms * ",
      k, " / 1000.0) THEN 'timeout' ELSE a.state END");
}

std::string AgentColumns(int k) {
  return absl::StrCat(
      "a.tenant, a.agent_id, COALESCE(a.runtime_policy, ''), "
      "COALESCE(a.boot_policy, ''), a.interval_ms, a.hash_alg, a.enrolled_by, ",
      UnixMicros("a.enrolled_at"),
      ", COALESCE(a.owner, ''), a.epoch, "
      "a.connected AND COALESCE(a.lease_until > now(), false), "
      "a.agent_version, a.clock_known, a.reset_count, a.restart_count, "
      "a.clock, a.ima_next_entry, a.pcr10_sha1, a.pcr10_sha256, "
      "a.runtime_policy_version, ",
      EffectiveState(k), ", ", UnixMicros("a.state_since"), ", ",
      UnixMicros("a.last_verdict_at"),
      ", COALESCE(a.last_attestation_id, ''), a.failures, a.boot_pcrs, "
      "a.boot_policy_version, COALESCE(a.pcr_policy, ''), "
      "a.ima_learned_keys");
}

// A text[] literal of values that need no escaping beyond double quotes
// (agent ids and label values: no quote, backslash or blank in them).
std::string TextArray(const std::vector<std::string>& values) {
  std::vector<std::string> quoted;
  for (const std::string& v : values)
    quoted.push_back(absl::StrCat("\"", v, "\""));
  return absl::StrCat("{", absl::StrJoin(quoted, ","), "}");
}

// The registration's labels, the operator's winning on a key (migration
// 0012), joined to agent_state a.
constexpr char kWithLabels[] =
    " JOIN registrations r ON r.agent_id = a.agent_id";
constexpr char kLabels[] = "(r.agent_labels || r.operator_labels)";

// " AND ..." conditions of the selector's requirements on kLabels, adding
// their parameters; "" for the empty selector. Keys and values are bound
// as parameters, never spliced into the text.
std::string SelectorFilter(const core::Selector& selector,
                           std::vector<PgParam>* params) {
  std::string sql;
  for (const core::Requirement& r : selector.requirements()) {
    params->push_back(r.key);
    const std::string key =
        absl::StrCat("(", kLabels, " ->> $", params->size(), ")");
    auto value = [&](const std::string& v) {
      params->push_back(v);
      return absl::StrCat("$", params->size());
    };
    switch (r.op) {
      case core::Requirement::Op::kEquals:
        absl::StrAppend(&sql, " AND ", key, " = ", value(r.values[0]));
        break;
      case core::Requirement::Op::kNotEquals:
        absl::StrAppend(&sql, " AND ", key, " IS DISTINCT FROM ",
                        value(r.values[0]));
        break;
      case core::Requirement::Op::kIn:
        absl::StrAppend(&sql, " AND ", key, " = ANY(",
                        value(TextArray(r.values)), "::text[])");
        break;
      case core::Requirement::Op::kNotIn:
        absl::StrAppend(&sql, " AND NOT COALESCE(", key, " = ANY(",
                        value(TextArray(r.values)), "::text[]), false)");
        break;
      case core::Requirement::Op::kExists:
        absl::StrAppend(&sql, " AND ", key, " IS NOT NULL");
        break;
      case core::Requirement::Op::kNotExists:
        absl::StrAppend(&sql, " AND ", key, " IS NULL");
        break;
    }
  }
  return sql;
}

absl::StatusOr<AgentRow> AgentFromRow(const Row& r) {
  AgentRow a;
  a.enrollment.tenant = r[0].value_or("");
  a.enrollment.agent_id = r[1].value_or("");
  a.enrollment.runtime_policy = r[2].value_or("");
  a.enrollment.boot_policy = r[3].value_or("");
  VOUCH_ASSIGN_OR_RETURN(int64_t ms, Int<int64_t>(r[4]));
  a.enrollment.interval = absl::Milliseconds(ms);
  VOUCH_ASSIGN_OR_RETURN(a.enrollment.hash_alg, Int<int>(r[5]));
  a.enrollment.enrolled_by = r[6].value_or("");
  VOUCH_ASSIGN_OR_RETURN(a.enrolled_at, Micros(r[7]));
  a.owner = r[8].value_or("");
  VOUCH_ASSIGN_OR_RETURN(a.epoch, Int<int64_t>(r[9]));
  a.connected = r[10].value_or("f") == "t";
  a.agent_version = r[11].value_or("");
  a.clock_known = r[12].value_or("f") == "t";
  VOUCH_ASSIGN_OR_RETURN(a.reset_count, Int<uint32_t>(r[13]));
  VOUCH_ASSIGN_OR_RETURN(a.restart_count, Int<uint32_t>(r[14]));
  VOUCH_ASSIGN_OR_RETURN(a.clock, Int<uint64_t>(r[15]));
  VOUCH_ASSIGN_OR_RETURN(a.ima_next_entry, Int<uint64_t>(r[16]));
  VOUCH_ASSIGN_OR_RETURN(a.pcr10_sha1, Bytea(r[17]));
  VOUCH_ASSIGN_OR_RETURN(a.pcr10_sha256, Bytea(r[18]));
  VOUCH_ASSIGN_OR_RETURN(a.runtime_policy_version, Int<uint64_t>(r[19]));
  VOUCH_ASSIGN_OR_RETURN(a.state, State(r[20]));
  VOUCH_ASSIGN_OR_RETURN(a.state_since, Micros(r[21]));
  if (r[22]) {
    VOUCH_ASSIGN_OR_RETURN(absl::Time t, Micros(r[22]));
    a.last_verdict_at = t;
  }
  a.last_attestation_id = r[23].value_or("");
  VOUCH_ASSIGN_OR_RETURN(a.failures, Bytea(r[24]));
  VOUCH_ASSIGN_OR_RETURN(a.boot_pcrs, Bytea(r[25]));
  VOUCH_ASSIGN_OR_RETURN(a.boot_policy_version, Int<uint64_t>(r[26]));
  a.enrollment.pcr_policy = r[27].value_or("");
  VOUCH_ASSIGN_OR_RETURN(a.ima_learned_keys, Bytea(r[28]));
  return a;
}

constexpr const char* kPolicyColumns =
    "tenant, name, version, kind, content, sha256, description, created_by, "
    "(extract(epoch from created_at) * 1000000)::bigint, removed, release, "
    "origin, source_sha256, signer_key_id";

absl::StatusOr<PolicyRow> PolicyFromRow(const Row& r) {
  PolicyRow p;
  p.tenant = r[0].value_or("");
  p.name = r[1].value_or("");
  VOUCH_ASSIGN_OR_RETURN(p.version, Int<uint64_t>(r[2]));
  VOUCH_ASSIGN_OR_RETURN(p.kind, Int<int>(r[3]));
  VOUCH_ASSIGN_OR_RETURN(p.content, Bytea(r[4]));
  VOUCH_ASSIGN_OR_RETURN(p.sha256, Bytea(r[5]));
  p.description = r[6].value_or("");
  p.created_by = r[7].value_or("");
  VOUCH_ASSIGN_OR_RETURN(p.created_at, Micros(r[8]));
  p.removed = r[9].value_or("f") == "t";
  VOUCH_ASSIGN_OR_RETURN(p.release, Int<int64_t>(r[10]));
  p.origin = r[11].value_or("");
  VOUCH_ASSIGN_OR_RETURN(p.source_sha256, Bytea(r[12]));
  p.signer_key_id = r[13].value_or("");
  return p;
}

absl::StatusOr<PolicyRow> InsertPolicyVersion(PgConnection& c,
                                              const PolicyRow& p,
                                              uint64_t version) {
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      c.Query(absl::StrCat("INSERT INTO policies (tenant, name, version, "
                           "kind, content, sha256, description, created_by, "
                           "release, origin, source_sha256, signer_key_id) "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
                           "$11, $12) RETURNING ",
                           kPolicyColumns),
              {p.tenant, p.name, absl::StrCat(version), absl::StrCat(p.kind),
               ToBytea(p.content), ToBytea(p.sha256), p.description,
               p.created_by, absl::StrCat(p.release), p.origin,
               ToBytea(p.source_sha256), p.signer_key_id}));
  if (rows.rows.empty()) return absl::InternalError("policy not inserted");
  return PolicyFromRow(rows.rows[0]);
}

// Takes the per-name lock (the row may not exist yet) and reads the newest
// version: (version, removed, kind), or no row.
absl::StatusOr<PgRows> LockNewest(PgConnection& c, const PolicyRow& p) {
  VOUCH_RETURN_IF_ERROR(
      c.Exec("SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2))",
             {p.tenant, p.name})
          .status());
  return c.Query(
      "SELECT version, removed, kind FROM policies WHERE tenant = $1 AND "
      "name = $2 ORDER BY version DESC LIMIT 1",
      {p.tenant, p.name});
}

}  // namespace

absl::StatusOr<PolicyRow> PgVerifierStore::AddPolicy(const PolicyRow& p) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return InTransaction(*db, [&](PgConnection& c) -> absl::StatusOr<PolicyRow> {
    VOUCH_ASSIGN_OR_RETURN(PgRows newest, LockNewest(c, p));
    uint64_t version = 1;
    if (!newest.rows.empty()) {
      if (newest.rows[0][1].value_or("f") != "t") {
        return absl::AlreadyExistsError(
            absl::StrCat("policy ", p.name, " exists; update it instead"));
      }
      VOUCH_ASSIGN_OR_RETURN(uint64_t v, Int<uint64_t>(newest.rows[0][0]));
      version = v + 1;
    }
    return InsertPolicyVersion(c, p, version);
  });
}

absl::StatusOr<PolicyRow> PgVerifierStore::UpdatePolicy(
    const PolicyRow& p, uint64_t expected_version) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return InTransaction(*db, [&](PgConnection& c) -> absl::StatusOr<PolicyRow> {
    VOUCH_ASSIGN_OR_RETURN(PgRows newest, LockNewest(c, p));
    if (newest.rows.empty() || newest.rows[0][1].value_or("f") == "t") {
      return absl::NotFoundError(absl::StrCat("no policy ", p.name));
    }
    VOUCH_ASSIGN_OR_RETURN(uint64_t v, Int<uint64_t>(newest.rows[0][0]));
    if (expected_version != 0 && expected_version != v) {
      return absl::AbortedError(absl::StrCat(
          "policy ", p.name, " is at version ", v, ", not ", expected_version));
    }
    PolicyRow next = p;
    VOUCH_ASSIGN_OR_RETURN(next.kind, Int<int>(newest.rows[0][2]));
    return InsertPolicyVersion(c, next, v + 1);
  });
}

absl::StatusOr<PolicyRow> PgVerifierStore::GetPolicy(const std::string& tenant,
                                                     const std::string& name,
                                                     uint64_t version) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  PgRows rows;
  if (version == 0) {
    VOUCH_ASSIGN_OR_RETURN(
        rows, db->Query(absl::StrCat("SELECT ", kPolicyColumns,
                                     " FROM policies WHERE tenant = $1 AND "
                                     "name = $2 ORDER BY version DESC LIMIT 1"),
                        {tenant, name}));
    if (!rows.rows.empty() && rows.rows[0][9].value_or("f") == "t") {
      rows.rows.clear();
    }
  } else {
    VOUCH_ASSIGN_OR_RETURN(
        rows, db->Query(absl::StrCat("SELECT ", kPolicyColumns,
                                     " FROM policies WHERE tenant = $1 AND "
                                     "name = $2 AND version = $3"),
                        {tenant, name, absl::StrCat(version)}));
  }
  if (rows.rows.empty()) {
    return absl::NotFoundError(absl::StrCat("no policy ", name));
  }
  return PolicyFromRow(rows.rows[0]);
}

absl::StatusOr<std::pair<uint64_t, int>> PgVerifierStore::NewestPolicyVersion(
    const std::string& tenant, const std::string& name) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query("SELECT version, kind, removed FROM policies WHERE tenant = "
                "$1 AND name = $2 ORDER BY version DESC LIMIT 1",
                {tenant, name}));
  if (rows.rows.empty() || rows.rows[0][2].value_or("f") == "t") {
    return absl::NotFoundError(absl::StrCat("no policy ", name));
  }
  VOUCH_ASSIGN_OR_RETURN(uint64_t v, Int<uint64_t>(rows.rows[0][0]));
  VOUCH_ASSIGN_OR_RETURN(int kind, Int<int>(rows.rows[0][1]));
  return std::make_pair(v, kind);
}

absl::StatusOr<std::vector<PolicyRow>> PgVerifierStore::ListPolicies(
    const std::string& tenant, const std::string& after, int limit) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(
          "SELECT DISTINCT ON (name) tenant, name, version, kind, "
          "''::bytea, sha256, description, created_by, (extract(epoch "
          "from created_at) * 1000000)::bigint, removed, release, origin, "
          "source_sha256, signer_key_id FROM policies "
          "WHERE tenant = $1 AND name > $2 ORDER BY name, version DESC",
          {tenant, after}));
  std::vector<PolicyRow> out;
  for (const Row& r : rows.rows) {
    if (r[9].value_or("f") == "t") continue;
    VOUCH_ASSIGN_OR_RETURN(PolicyRow p, PolicyFromRow(r));
    out.push_back(std::move(p));
    if (static_cast<int>(out.size()) >= limit) break;
  }
  return out;
}

absl::StatusOr<std::vector<PolicyRow>> PgVerifierStore::PolicyHistory(
    const std::string& tenant, const std::string& name, int limit) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(absl::StrCat("SELECT ",
                             absl::StrReplaceAll(kPolicyColumns,
                                                 {{"content", "''::bytea"}}),
                             " FROM policies WHERE tenant = $1 AND name = $2 "
                             "ORDER BY version DESC LIMIT $3"),
                {tenant, name, absl::StrCat(limit)}));
  if (rows.rows.empty()) {
    return absl::NotFoundError(absl::StrCat("no policy ", name));
  }
  std::vector<PolicyRow> out;
  for (const Row& r : rows.rows) {
    VOUCH_ASSIGN_OR_RETURN(PolicyRow p, PolicyFromRow(r));
    out.push_back(std::move(p));
  }
  return out;
}

namespace {

// Drops `policy`'s shadow report (its rows are its Watch events too).
absl::Status ClearShadowReport(PgConnection& c, const std::string& tenant,
                               const std::string& policy) {
  return c
      .Exec(
          "DELETE FROM policy_shadow_results WHERE tenant = $1 AND policy = "
          "$2",
          {tenant, policy})
      .status();
}

}  // namespace

absl::Status PgVerifierStore::RemovePolicy(const std::string& tenant,
                                           const std::string& name) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return InTransaction(*db, [&](PgConnection& c) -> absl::Status {
    VOUCH_ASSIGN_OR_RETURN(
        PgRows used,
        c.Query("SELECT agent_id FROM agent_state WHERE tenant = $1 AND "
                "$2 IN (runtime_policy, boot_policy, pcr_policy) LIMIT 1",
                {tenant, name}));
    if (!used.rows.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("policy ", name, " is used by agent ",
                       used.rows[0][0].value_or(""), "; unenroll it first"));
    }
    VOUCH_ASSIGN_OR_RETURN(
        int64_t n, c.Exec("UPDATE policies SET removed = true WHERE tenant = "
                          "$1 AND name = $2 AND NOT removed",
                          {tenant, name}));
    if (n == 0) return absl::NotFoundError(absl::StrCat("no policy ", name));
    VOUCH_RETURN_IF_ERROR(
        c.Exec("DELETE FROM policy_rollouts WHERE tenant = $1 AND $2 IN "
               "(policy, candidate)",
               {tenant, name})
            .status());
    return ClearShadowReport(c, tenant, name);
  });
}

namespace {

// Defined with Enroll below: kNotFound without a live policy `name`,
// kInvalidArgument when it is not of the slot's kind (1: runtime).
absl::Status CheckPolicySlot(PgConnection& c, const std::string& tenant,
                             int slot, const std::string& name);

PgParam TimeParam(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) {
    return PgParam();
  }
  return absl::StrCat(absl::ToUnixMicros(t));
}

const std::string& RolloutColumns() {
  static const std::string* columns = new std::string(absl::StrCat(
      "tenant, policy, kind, candidate, all_agents, array_to_string(agent_ids, "
      "','), selector, ",
      UnixMicros("not_before"), ", ", UnixMicros("not_after"), ", ",
      UnixMicros("created_at"), ", created_by"));
  return *columns;
}

absl::StatusOr<RolloutRow> RolloutFromRow(const Row& r) {
  RolloutRow out;
  out.tenant = r[0].value_or("");
  out.policy = r[1].value_or("");
  out.kind = r[2].value_or("") == "window" ? RolloutKind::kWindow
                                           : RolloutKind::kShadow;
  out.candidate = r[3].value_or("");
  out.all_agents = r[4].value_or("t") == "t";
  if (!r[5].value_or("").empty()) {
    out.agent_ids = absl::StrSplit(*r[5], ',');
  }
  out.selector = r[6].value_or("");
  VOUCH_ASSIGN_OR_RETURN(std::optional<absl::Time> nb, OptionalMicros(r[7]));
  VOUCH_ASSIGN_OR_RETURN(std::optional<absl::Time> na, OptionalMicros(r[8]));
  out.not_before = nb.value_or(absl::InfinitePast());
  out.not_after = na.value_or(absl::InfiniteFuture());
  VOUCH_ASSIGN_OR_RETURN(out.created_at, Micros(r[9]));
  out.created_by = r[10].value_or("");
  return out;
}

}  // namespace

absl::StatusOr<RolloutRow> PgVerifierStore::SetRollout(const RolloutRow& r) {
  if (r.policy == r.candidate) {
    return absl::InvalidArgumentError(
        "a roll-out's candidate must be another policy");
  }
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return InTransaction(*db, [&](PgConnection& c) -> absl::StatusOr<RolloutRow> {
    VOUCH_RETURN_IF_ERROR(CheckPolicySlot(c, r.tenant, 1, r.policy));
    VOUCH_RETURN_IF_ERROR(CheckPolicySlot(c, r.tenant, 1, r.candidate));
    const std::string kind(RolloutKindName(r.kind));
    VOUCH_ASSIGN_OR_RETURN(
        PgRows rows,
        c.Query(
            absl::StrCat("INSERT INTO policy_rollouts (tenant, policy, kind, "
                         "candidate, all_agents, agent_ids, selector, "
                         "not_before, not_after, created_by) VALUES ($1, $2, "
                         "$3, $4, $5, $6::text[], $7, to_timestamp($8::bigint "
                         "/ 1000000.0), to_timestamp($9::bigint / 1000000.0), "
                         "$10) ON CONFLICT (tenant, policy, kind) DO UPDATE "
                         "SET candidate = EXCLUDED.candidate, all_agents = "
                         "EXCLUDED.all_agents, agent_ids = EXCLUDED.agent_ids, "
                         "selector = EXCLUDED.selector, not_before = "
                         "EXCLUDED.not_before, not_after = EXCLUDED.not_after, "
                         "created_at = now(), created_by = EXCLUDED.created_by "
                         "RETURNING ",
                         RolloutColumns()),
            {r.tenant, r.policy, kind, r.candidate,
             r.all_agents ? "true" : "false",
             ToTextArray(SortedUnique(r.agent_ids)), r.selector,
             TimeParam(r.not_before), TimeParam(r.not_after), r.created_by}));
    if (rows.rows.size() != 1) return absl::InternalError("no roll-out");
    if (r.kind == RolloutKind::kShadow) {
      VOUCH_RETURN_IF_ERROR(ClearShadowReport(c, r.tenant, r.policy));
    }
    return RolloutFromRow(rows.rows[0]);
  });
}

absl::StatusOr<std::vector<RolloutRow>> PgVerifierStore::ListRollouts(
    const std::string& tenant, const std::string& policy) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(absl::StrCat("SELECT ", RolloutColumns(),
                             " FROM policy_rollouts WHERE tenant = $1 AND "
                             "($2 = '' OR policy = $2) ORDER BY policy, kind"),
                {tenant, policy}));
  std::vector<RolloutRow> out;
  for (const Row& r : rows.rows) {
    VOUCH_ASSIGN_OR_RETURN(RolloutRow row, RolloutFromRow(r));
    out.push_back(std::move(row));
  }
  return out;
}

absl::Status PgVerifierStore::DeleteRollout(const std::string& tenant,
                                            const std::string& policy,
                                            RolloutKind kind) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return InTransaction(*db, [&](PgConnection& c) -> absl::Status {
    VOUCH_ASSIGN_OR_RETURN(
        int64_t n,
        c.Exec("DELETE FROM policy_rollouts WHERE tenant = $1 AND policy = "
               "$2 AND kind = $3",
               {tenant, policy, std::string(RolloutKindName(kind))}));
    if (n == 0) {
      return absl::NotFoundError(
          absl::StrCat("policy ", policy, " has no ", RolloutKindName(kind)));
    }
    if (kind != RolloutKind::kShadow) return absl::OkStatus();
    return ClearShadowReport(c, tenant, policy);
  });
}

absl::StatusOr<std::vector<ShadowResultRow>> PgVerifierStore::ShadowReport(
    const std::string& tenant, const std::string& policy) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(absl::StrCat("SELECT agent_id, candidate, candidate_version, "
                             "rounds, entries_checked, failure_count, "
                             "failures, ",
                             UnixMicros("updated_at"),
                             " FROM policy_shadow_results WHERE tenant = $1 "
                             "AND policy = $2 ORDER BY agent_id"),
                {tenant, policy}));
  std::vector<ShadowResultRow> out;
  for (const Row& r : rows.rows) {
    ShadowResultRow s;
    s.agent_id = r[0].value_or("");
    s.candidate = r[1].value_or("");
    VOUCH_ASSIGN_OR_RETURN(s.candidate_version, Int<uint64_t>(r[2]));
    VOUCH_ASSIGN_OR_RETURN(s.rounds, Int<uint64_t>(r[3]));
    VOUCH_ASSIGN_OR_RETURN(s.entries_checked, Int<uint64_t>(r[4]));
    VOUCH_ASSIGN_OR_RETURN(s.failure_count, Int<uint64_t>(r[5]));
    VOUCH_ASSIGN_OR_RETURN(s.failures, Bytea(r[6]));
    VOUCH_ASSIGN_OR_RETURN(s.updated_at, Micros(r[7]));
    out.push_back(std::move(s));
  }
  return out;
}

namespace {

// kNotFound without a live policy `name` in the tenant; kInvalidArgument
// when its newest version is not of the slot's kind (CheckSlotKind).
absl::Status CheckPolicySlot(PgConnection& c, const std::string& tenant,
                             int slot, const std::string& name) {
  VOUCH_ASSIGN_OR_RETURN(
      PgRows p, c.Query("SELECT kind FROM policies WHERE tenant = $1 AND "
                        "name = $2 AND NOT removed ORDER BY version DESC "
                        "LIMIT 1",
                        {tenant, name}));
  if (p.rows.empty()) {
    return absl::NotFoundError(absl::StrCat("no policy ", name));
  }
  VOUCH_ASSIGN_OR_RETURN(int kind, Int<int>(p.rows[0][0]));
  return CheckSlotKind(slot, name, kind);
}

}  // namespace

absl::StatusOr<AgentRow> PgVerifierStore::Enroll(const Enrollment& e) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return InTransaction(*db, [&](PgConnection& c) -> absl::StatusOr<AgentRow> {
    VOUCH_ASSIGN_OR_RETURN(
        PgRows reg, c.Query("SELECT activated_at IS NOT NULL FROM "
                            "registrations WHERE tenant = $1 AND agent_id = $2",
                            {e.tenant, e.agent_id}));
    if (reg.rows.empty()) {
      return absl::NotFoundError(
          "agent is not registered in this tenant (see vouchctl registrar "
          "list)");
    }
    if (reg.rows[0][0].value_or("f") != "t") {
      return absl::FailedPreconditionError(
          "agent has registered but not activated its AIK yet");
    }
    for (const auto& [slot, name] : EnrollmentSlots(e)) {
      if (name->empty()) continue;
      VOUCH_RETURN_IF_ERROR(CheckPolicySlot(c, e.tenant, slot, *name));
    }
    auto opt = [](const std::string& s) -> PgParam {
      return s.empty() ? PgParam() : PgParam(s);
    };
    VOUCH_ASSIGN_OR_RETURN(
        PgRows rows,
        c.Query(
            absl::StrCat("INSERT INTO agent_state AS a (agent_id, tenant, "
                         "runtime_policy, boot_policy, interval_ms, hash_alg, "
                         "enrolled_by, pcr_policy) VALUES ($1, $2, $3, $4, "
                         "$5, $6, $7, $8) ON "
                         "CONFLICT (agent_id) DO NOTHING RETURNING ",
                         AgentColumns(timeout_intervals_)),
            {e.agent_id, e.tenant, opt(e.runtime_policy), opt(e.boot_policy),
             absl::StrCat(absl::ToInt64Milliseconds(e.interval)),
             absl::StrCat(e.hash_alg), e.enrolled_by, opt(e.pcr_policy)}));
    if (rows.rows.empty()) {
      return absl::AlreadyExistsError(
          "agent is already enrolled; unenroll it first");
    }
    VOUCH_RETURN_IF_ERROR(
        c.Exec("INSERT INTO agent_events (tenant, agent_id, previous_state, "
               "state, cause) VALUES ($1, $2, 'unenrolled', 'pending', "
               "'enrolled')",
               {e.tenant, e.agent_id})
            .status());
    return AgentFromRow(rows.rows[0]);
  });
}

absl::StatusOr<bool> UnenrollIn(PgConnection& c, const std::string& tenant,
                                const std::string& agent_id) {
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      c.Query("WITH d AS (DELETE FROM agent_state WHERE tenant = $1 AND "
              "agent_id = $2 RETURNING state) INSERT INTO agent_events "
              "(tenant, agent_id, previous_state, state, cause) SELECT $1, "
              "$2, d.state, 'unenrolled', 'unenrolled' FROM d RETURNING 1",
              {tenant, agent_id}));
  return !rows.rows.empty();
}

absl::Status PgVerifierStore::Unenroll(const std::string& tenant,
                                       const std::string& agent_id) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(bool unenrolled, UnenrollIn(*db, tenant, agent_id));
  if (!unenrolled) return absl::NotFoundError("agent is not enrolled");
  return absl::OkStatus();
}

absl::StatusOr<AgentRow> PgVerifierStore::GetAgent(
    const std::string& tenant, const std::string& agent_id) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(absl::StrCat("SELECT ", AgentColumns(timeout_intervals_),
                             " FROM agent_state a WHERE a.tenant = $1 AND "
                             "a.agent_id = $2"),
                {tenant, agent_id}));
  if (rows.rows.empty()) return absl::NotFoundError("agent is not enrolled");
  return AgentFromRow(rows.rows[0]);
}

absl::StatusOr<std::vector<AgentRow>> PgVerifierStore::ListAgents(
    const std::string& tenant, const std::string& after,
    const std::vector<core::AgentState>& states, int limit,
    const std::string& policy) {
  return ListAgentsMatching(tenant, after, states, limit, policy,
                            core::Selector());
}

absl::StatusOr<std::vector<AgentRow>> PgVerifierStore::ListAgentsMatching(
    const std::string& tenant, const std::string& after,
    const std::vector<core::AgentState>& states, int limit,
    const std::string& policy, const core::Selector& selector) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  std::string filter;
  std::vector<PgParam> params = {tenant, after, absl::StrCat(limit)};
  if (!policy.empty()) {
    params.push_back(policy);
    absl::StrAppend(&filter, " AND $", params.size(),
                    " IN (a.runtime_policy, a.boot_policy, a.pcr_policy)");
  }
  if (!states.empty()) {
    params.push_back(StateArray(states));
    absl::StrAppend(&filter, " AND ", EffectiveState(timeout_intervals_),
                    " = ANY($", params.size(), "::text[])");
  }
  const std::string labels = SelectorFilter(selector, &params);
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(
          absl::StrCat("SELECT ", AgentColumns(timeout_intervals_),
                       " FROM agent_state a", labels.empty() ? "" : kWithLabels,
                       " WHERE a.tenant = $1 AND a.agent_id > $2", filter,
                       labels, " ORDER BY a.agent_id LIMIT $3"),
          params));
  std::vector<AgentRow> out;
  for (const Row& r : rows.rows) {
    VOUCH_ASSIGN_OR_RETURN(AgentRow a, AgentFromRow(r));
    out.push_back(std::move(a));
  }
  return out;
}

absl::StatusOr<std::vector<AgentRow>> PgVerifierStore::UpdateEnrollments(
    const EnrollmentUpdate& u) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return InTransaction(
      *db, [&](PgConnection& c) -> absl::StatusOr<std::vector<AgentRow>> {
        for (const auto& [slot, name] : {std::make_pair(1, &u.runtime_policy),
                                         std::make_pair(2, &u.boot_policy)}) {
          if (name->empty()) continue;
          VOUCH_RETURN_IF_ERROR(CheckPolicySlot(c, u.tenant, slot, *name));
        }
        // The agents, locked in agent_id order (two updates never deadlock).
        std::vector<PgParam> params = {u.tenant};
        std::string which;
        if (!u.agent_ids.empty()) {
          params.push_back(TextArray(u.agent_ids));
          which = " AND a.agent_id = ANY($2::text[])";
        } else {
          which = SelectorFilter(u.selector, &params);
        }
        VOUCH_ASSIGN_OR_RETURN(
            PgRows locked,
            c.Query(
                absl::StrCat(
                    "SELECT a.agent_id FROM agent_state a",
                    which.empty() || !u.agent_ids.empty() ? "" : kWithLabels,
                    " WHERE a.tenant = $1", which,
                    " ORDER BY a.agent_id FOR UPDATE OF a"),
                params));
        std::vector<std::string> ids;
        for (const Row& r : locked.rows) ids.push_back(r[0].value_or(""));
        for (const std::string& id : u.agent_ids) {
          if (!std::binary_search(ids.begin(), ids.end(), id)) {
            return absl::NotFoundError(
                absl::StrCat("agent ", id, " is not enrolled"));
          }
        }
        if (ids.empty()) return std::vector<AgentRow>();
        auto opt = [](const std::string& s) -> PgParam {
          return s.empty() ? PgParam() : PgParam(s);
        };
        // An enrollment anew: pending until the next verdict, with an event;
        // the epoch fences the running stream.
        VOUCH_ASSIGN_OR_RETURN(
            PgRows rows,
            c.Query(
                absl::StrCat(
                    "WITH old AS (SELECT agent_id, state FROM agent_state "
                    "WHERE "
                    "agent_id = ANY($1::text[])), upd AS (UPDATE agent_state a "
                    "SET runtime_policy = COALESCE($2, a.runtime_policy), "
                    "boot_policy = CASE WHEN $4::boolean THEN NULL ELSE "
                    "COALESCE($3, a.boot_policy) END, interval_ms = "
                    "COALESCE($5::bigint, a.interval_ms), epoch = a.epoch + 1, "
                    "enrolled_by = $6, state = 'pending', state_since = now(), "
                    "enrolled_at = now(), failures = ''::bytea FROM old WHERE "
                    "a.agent_id = old.agent_id RETURNING old.state AS "
                    "old_state, ",
                    AgentColumns(timeout_intervals_),
                    "), ev AS (INSERT INTO agent_events (tenant, agent_id, "
                    "previous_state, state, cause) SELECT upd.tenant, "
                    "upd.agent_id, upd.old_state, 'pending', 'enrolled' FROM "
                    "upd) "
                    "SELECT * FROM upd ORDER BY agent_id"),
                {TextArray(ids), opt(u.runtime_policy), opt(u.boot_policy),
                 u.clear_boot_policy ? "true" : "false",
                 u.interval ? PgParam(absl::StrCat(
                                  absl::ToInt64Milliseconds(*u.interval)))
                            : PgParam(),
                 u.updated_by}));
        std::vector<AgentRow> out;
        for (const Row& r : rows.rows) {
          // Column 0 is the state before the update.
          VOUCH_ASSIGN_OR_RETURN(AgentRow a,
                                 AgentFromRow(Row(r.begin() + 1, r.end())));
          out.push_back(std::move(a));
        }
        return out;
      });
}

absl::StatusOr<Takeover> PgVerifierStore::TakeOver(
    const std::string& tenant, const std::string& agent_id,
    const std::string& owner, const std::string& agent_version,
    absl::Duration lease) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return InTransaction(*db, [&](PgConnection& c) -> absl::StatusOr<Takeover> {
    VOUCH_ASSIGN_OR_RETURN(
        PgRows reg,
        c.Query("SELECT aik_public, aik_name FROM registrations WHERE tenant "
                "= $1 AND agent_id = $2 AND activated_at IS NOT NULL",
                {tenant, agent_id}));
    if (reg.rows.empty()) {
      return absl::FailedPreconditionError(
          "agent is not registered and active: register again");
    }
    VOUCH_ASSIGN_OR_RETURN(
        PgRows rows,
        c.Query(absl::StrCat("UPDATE agent_state a SET owner = $3, epoch = "
                             "a.epoch + 1, lease_until = now() + "
                             "make_interval(secs => $4::float8), connected = "
                             "true, agent_version = $5 WHERE a.tenant = $1 "
                             "AND a.agent_id = $2 RETURNING ",
                             AgentColumns(timeout_intervals_)),
                {tenant, agent_id, owner, Secs(lease), agent_version}));
    if (rows.rows.empty()) {
      return absl::FailedPreconditionError("agent is not enrolled");
    }
    Takeover t;
    VOUCH_ASSIGN_OR_RETURN(t.agent, AgentFromRow(rows.rows[0]));
    VOUCH_ASSIGN_OR_RETURN(t.aik_public, Bytea(reg.rows[0][0]));
    VOUCH_ASSIGN_OR_RETURN(t.aik_name, Bytea(reg.rows[0][1]));
    return t;
  });
}

absl::StatusOr<std::vector<bool>> PgVerifierStore::RenewLeases(
    const std::vector<LeaseRenewal>& renewals) {
  std::vector<bool> renewed(renewals.size(), false);
  if (renewals.empty()) return renewed;
  std::vector<std::string> ids, epochs, secs, renew, aiks;
  for (const LeaseRenewal& r : renewals) {
    ids.push_back(r.agent_id);
    epochs.push_back(absl::StrCat(r.epoch));
    secs.push_back(Secs(r.lease));
    renew.push_back(r.renew ? "true" : "false");
    aiks.push_back(absl::BytesToHexString(r.aik_name));
  }
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  // Rows not renewed are only read (no row lock, no new row version), so
  // checking every held stream each sweep does not contend with verdicts.
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      // A lease holds only while the stream's AIK is the registration's.
      db->Query("WITH r AS (SELECT * FROM unnest($1::text[], $2::bigint[], "
                "$3::float8[], $4::boolean[], $5::text[]) WITH ORDINALITY AS "
                "r(agent_id, epoch, secs, renew, aik, i) WHERE EXISTS (SELECT "
                "1 FROM registrations g WHERE g.agent_id = r.agent_id AND "
                "g.aik_name = decode(r.aik, 'hex'))), u AS (UPDATE "
                "agent_state a SET lease_until = now() + make_interval(secs "
                "=> r.secs) FROM r WHERE r.renew AND a.agent_id = r.agent_id "
                "AND a.epoch = r.epoch RETURNING r.i) SELECT i FROM u UNION "
                "ALL SELECT r.i FROM r JOIN agent_state a ON a.agent_id = "
                "r.agent_id AND a.epoch = r.epoch WHERE NOT r.renew",
                {ToTextArray(ids), ToTextArray(epochs), ToTextArray(secs),
                 ToTextArray(renew), ToTextArray(aiks)}));
  for (const auto& row : rows.rows) {
    VOUCH_ASSIGN_OR_RETURN(size_t i, Int<size_t>(row.at(0)));
    if (i >= 1 && i <= renewed.size()) renewed[i - 1] = true;
  }
  return renewed;
}

absl::StatusOr<bool> PgVerifierStore::Enrolled(const std::string& agent_id) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query("SELECT 1 FROM agent_state WHERE agent_id = $1", {agent_id}));
  return !rows.rows.empty();
}

absl::Status PgVerifierStore::Release(const std::string& agent_id,
                                      int64_t epoch) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return db
      ->Exec(
          "UPDATE agent_state SET connected = false WHERE agent_id = $1 "
          "AND epoch = $2",
          {agent_id, absl::StrCat(epoch)})
      .status();
}

absl::StatusOr<int64_t> PgVerifierStore::SweepTimeouts() {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  // The self-join reads the state before the update for the event; the
  // conditions are on `a`, which PostgreSQL rechecks on the newest row
  // version when another sweeper got there first.
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(absl::StrCat(
          "WITH t AS (UPDATE agent_state a SET state = 'timeout', state_since "
          "= now() FROM agent_state o WHERE o.agent_id = a.agent_id AND "
          "a.state IN ('pass', 'pending') AND COALESCE(a.last_verdict_at, "
          "a.enrolled_at) < now() - make_interval(secs => a.interval_ms * ",
          timeout_intervals_,
          " / 1000.0) RETURNING a.tenant, a.agent_id, o.state AS prev) "
          "INSERT INTO agent_events (tenant, agent_id, previous_state, state, "
          "cause) SELECT tenant, agent_id, prev, 'timeout', 'timeout' FROM t "
          "RETURNING 1")));
  return static_cast<int64_t>(rows.rows.size());
}

namespace {

// The database incarnation (migrations/0007): the random id of this
// database's schema and the current timeline, which a promotion or a
// point-in-time restore advances.
constexpr char kIncarnation[] =
    "(SELECT id FROM database_incarnation) || '-' || "
    "substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)";

// EventsAfter's answer to a position older than the retention: events
// after it, written before `before`, were dropped.
absl::Status EventsExpired(absl::string_view before) {
  return absl::OutOfRangeError(absl::StrCat(
      "resume_token is past the retention: events before ", before,
      " have expired; list agents and resume from now (Watch without a "
      "token)"));
}

// The incarnation, and OUT_OF_RANGE when events after `after` may have
// been dropped by the retention (migrations/0008 event_retention: every
// position at or before (xid, seq) may be gone).
absl::StatusOr<std::string> CheckPosition(PgConnection& db,
                                          const EventPosition& after) {
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db.Query(
          absl::StrCat(
              "SELECT ", kIncarnation,
              ", r.before > '-infinity' AND ($1::xid8, $2::bigint) <= (r.xid, "
              "r.seq), to_char(r.before AT "
              "TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM "
              "event_retention r"),
          {absl::StrCat(after.xid), absl::StrCat(after.seq)}));
  if (rows.rows.size() != 1 || !rows.rows[0][0]) {
    return absl::InternalError("database_incarnation: no row");
  }
  const std::string incarnation = *rows.rows[0][0];
  if (!after.incarnation.empty() && after.incarnation != incarnation) {
    return IncarnationChanged();
  }
  if (rows.rows[0][1].value_or("f") == "t") {
    return EventsExpired(rows.rows[0][2].value_or("?"));
  }
  return incarnation;
}

}  // namespace

absl::StatusOr<EventPosition> PgVerifierStore::EventHorizon() {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows, db->Query(absl::StrCat(
                       "SELECT pg_snapshot_xmin(pg_current_snapshot())::text, ",
                       kIncarnation)));
  EventPosition p;
  VOUCH_ASSIGN_OR_RETURN(p.xid, Int<uint64_t>(rows.rows.at(0).at(0)));
  p.incarnation = rows.rows.at(0).at(1).value_or("");
  return p;
}

absl::StatusOr<std::vector<EventRow>> PgVerifierStore::EventsAfter(
    const std::string& tenant, EventPosition after,
    const std::vector<std::string>& agent_ids,
    const std::vector<core::AgentState>& states, bool verdicts, int limit) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(std::string incarnation, CheckPosition(*db, after));
  // An array literal of validated agent ids.
  auto array = [](const std::vector<std::string>& v) -> PgParam {
    if (v.empty()) return std::nullopt;
    return absl::StrCat("{", absl::StrJoin(v, ","), "}");
  };
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(
          "SELECT xid::text, seq, agent_id, previous_state, state, cause, "
          "attestation_id, failures, us, verdict, verifier, policy, "
          "candidate, candidate_version, shadow_failures FROM ("
          "SELECT e.xid, e.seq, e.agent_id, e.previous_state, e.state, "
          "e.cause, COALESCE(e.attestation_id, '') AS attestation_id, "
          "COALESCE(t.failures, ''::bytea) AS failures, (extract(epoch from "
          "e.at) * 1000000)::bigint AS us, false AS verdict, '' AS verifier, "
          "NULL::text AS policy, '' AS candidate, 0::bigint AS "
          "candidate_version, "
          "0::bigint AS shadow_failures "
          "FROM agent_events e LEFT JOIN attestations t ON t.attestation_id = "
          "e.attestation_id WHERE e.tenant = $1 AND (e.xid, e.seq) > "
          "($2::xid8, $3::bigint) AND e.xid < "
          "pg_snapshot_xmin(pg_current_snapshot()) AND ($4::text[] IS NULL OR "
          "e.agent_id = ANY($4::text[])) AND ($5::text[] IS NULL OR e.state = "
          "ANY($5::text[])) "
          "UNION ALL "
          "SELECT t.xid, t.seq, t.agent_id, '', t.state, '', "
          "t.attestation_id, t.failures, (extract(epoch from t.at) * "
          "1000000)::bigint, true, t.verifier, NULL::text, '', 0, 0 FROM "
          "attestations t WHERE "
          "$7::boolean AND t.tenant = $1 AND (t.xid, t.seq) > ($2::xid8, "
          "$3::bigint) AND t.xid < pg_snapshot_xmin(pg_current_snapshot()) "
          "AND ($4::text[] IS NULL OR t.agent_id = ANY($4::text[])) AND "
          "($5::text[] IS NULL OR t.state = ANY($5::text[])) "
          "UNION ALL "
          "SELECT s.xid, s.seq, s.agent_id, '', '', '', '', s.failures, "
          "(extract(epoch from s.updated_at) * 1000000)::bigint, false, '', "
          "s.policy, s.candidate, s.candidate_version, s.failure_count FROM "
          "policy_shadow_results s WHERE $7::boolean AND s.tenant = $1 AND "
          "s.failure_count > 0 AND (s.xid, s.seq) > ($2::xid8, $3::bigint) "
          "AND s.xid < pg_snapshot_xmin(pg_current_snapshot()) AND "
          "($4::text[] IS NULL OR s.agent_id = ANY($4::text[]))"
          ") u ORDER BY u.xid, u.seq LIMIT $6",
          {tenant, absl::StrCat(after.xid), absl::StrCat(after.seq),
           array(agent_ids), StateArray(states), absl::StrCat(limit),
           verdicts ? "true" : "false"}));
  std::vector<EventRow> out;
  for (const Row& r : rows.rows) {
    EventRow e;
    e.position.incarnation = incarnation;
    VOUCH_ASSIGN_OR_RETURN(e.position.xid, Int<uint64_t>(r[0]));
    VOUCH_ASSIGN_OR_RETURN(e.position.seq, Int<int64_t>(r[1]));
    e.agent_id = r[2].value_or("");
    // previous_state is '' for verdict and shadow rows; policy NULL for all
    // but shadow rows.
    e.previous_state = core::ParseAgentState(r[3].value_or(""));
    e.shadow = r[11].has_value();
    if (e.shadow) {
      e.policy = *r[11];
      e.candidate = r[12].value_or("");
      VOUCH_ASSIGN_OR_RETURN(e.candidate_version, Int<uint64_t>(r[13]));
      VOUCH_ASSIGN_OR_RETURN(e.shadow_failure_count, Int<uint64_t>(r[14]));
    } else {
      VOUCH_ASSIGN_OR_RETURN(e.state, State(r[4]));
    }
    e.cause = r[5].value_or("");
    e.attestation_id = r[6].value_or("");
    VOUCH_ASSIGN_OR_RETURN(e.failures, Bytea(r[7]));
    VOUCH_ASSIGN_OR_RETURN(e.at, Micros(r[8]));
    e.verdict = r[9].value_or("f") == "t";
    e.verifier = r[10].value_or("");
    out.push_back(std::move(e));
  }
  return out;
}

namespace {

// Columns 0..9 of an attestations row (attestation_id, state, verifier,
// epoch, ima_from, ima_next_entry, ima_entries_received, at,
// boot_policy_version, boot_log_evaluated).
absl::StatusOr<AttestationRow> AttestationRowOf(const Row& r) {
  AttestationRow a;
  a.attestation_id = r[0].value_or("");
  VOUCH_ASSIGN_OR_RETURN(a.state, State(r[1]));
  a.verifier = r[2].value_or("");
  VOUCH_ASSIGN_OR_RETURN(a.epoch, Int<int64_t>(r[3]));
  if (r[4]) {
    VOUCH_ASSIGN_OR_RETURN(uint64_t v, Int<uint64_t>(r[4]));
    a.ima_from = v;
  }
  if (r[5]) {
    VOUCH_ASSIGN_OR_RETURN(uint64_t v, Int<uint64_t>(r[5]));
    a.ima_next_entry = v;
  }
  VOUCH_ASSIGN_OR_RETURN(a.ima_entries_received, Int<uint64_t>(r[6]));
  VOUCH_ASSIGN_OR_RETURN(a.at, Micros(r[7]));
  VOUCH_ASSIGN_OR_RETURN(a.boot_policy_version, Int<uint64_t>(r[8]));
  a.boot_log_evaluated = r[9].value_or("f") == "t";
  return a;
}

}  // namespace

namespace {

// A timestamptz parameter, exact to the microsecond.
std::string TimestampParam(absl::Time t) {
  return absl::FormatTime("%E4Y-%m-%dT%H:%M:%E6S+00:00", t,
                          absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<std::vector<HistoryRow>> PgVerifierStore::QueryHistory(
    const HistoryQuery& q) {
  // Only the clauses the query needs, so the planner sees plain bounds on
  // `at` (partition pruning) and the (tenant, agent_id, at, attestation_id)
  // or (tenant, at, attestation_id) index walked backwards: a keyset, never
  // an OFFSET (migration 0016).
  std::vector<PgParam> params = {q.tenant};
  std::string where = "tenant = $1";
  auto param = [&params](PgParam p) {
    params.push_back(std::move(p));
    return absl::StrCat("$", params.size());
  };
  if (!q.agent_id.empty()) {
    absl::StrAppend(&where, " AND agent_id = ", param(q.agent_id));
  }
  if (q.from) {
    absl::StrAppend(&where, " AND at >= ", param(TimestampParam(*q.from)),
                    "::timestamptz");
  }
  if (q.to) {
    absl::StrAppend(&where, " AND at < ", param(TimestampParam(*q.to)),
                    "::timestamptz");
  }
  if (!q.states.empty()) {
    absl::StrAppend(&where, " AND state = ANY(", param(StateArray(q.states)),
                    "::text[])");
  }
  if (q.after_at) {
    const std::string at = param(TimestampParam(*q.after_at));
    // The plain bound lets newer partitions be pruned too.
    absl::StrAppend(&where, " AND at <= ", at,
                    "::timestamptz AND (at, "
                    "attestation_id) < (",
                    at, "::timestamptz, ", param(q.after_id), "::text)");
  }
  const std::string limit = param(absl::StrCat(q.limit));
  const std::string sql = absl::StrCat(
      "SELECT attestation_id, state, verifier, epoch, ima_from, "
      "ima_next_entry, ima_entries_received, ",
      UnixMicros("at"),
      ", boot_policy_version, boot_log_evaluated, agent_id, failures FROM "
      "attestations WHERE ",
      where, " ORDER BY at DESC, attestation_id DESC LIMIT ", limit);
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(PgRows rows, db->Query(sql, params));
  std::vector<HistoryRow> out;
  for (const Row& r : rows.rows) {
    HistoryRow h;
    VOUCH_ASSIGN_OR_RETURN(h.row, AttestationRowOf(r));
    h.agent_id = r[10].value_or("");
    VOUCH_ASSIGN_OR_RETURN(h.failures, Bytea(r[11]));
    out.push_back(std::move(h));
  }
  return out;
}

namespace {

// The verdict statement's SQL, built once (with and without the
// transparency-log leaf).
// $1 agent_id  $2 epoch  $3 passed  $4 attestation_id  $5 failures
// $6 lease s   $7 clock? $8 reset   $9 restart  $10 clock
// $11 ima_next $12 sha1 $13 sha256  $14 tenant  $15 verifier  $16 nonce
// $17 ima_from $18 received  $19 evidence sha256  $20 policy version
// $21 boot PCRs (null: unchanged)  $22 boot policy version
// $23 boot log evaluated
// $24 aik_name: the registration's active AIK must still be the stream's;
// the share lock orders this against an Activate that replaces it.
// $40 keys learned from keyrings (null: unchanged, like $11..$13)
// $41 (with the log on): the record's transparency-log leaf, queued in
// the same transaction (docs/transparency-log.md).
//
// The kept rows that only some verdicts write are optional parts of the
// statement (VerdictPart): PostgreSQL prepares every part for each
// execution, written or not, so a part a verdict does not need is left
// out. Its parameters are then only typed, in a CTE nothing reads (which
// the planner drops), so every variant takes the same parameter list.
enum VerdictPart : unsigned {
  kKept = 1,        // k: the record's kept evidence
  kImaSegment = 2,  // ks: the IMA entries this record accepted
  kBootLog = 4,     // kb: the boot log that came with the evidence
  kNewAik = 8,      // ka: the AIK, unless known to be kept already
  kLogged = 16,     // l: the transparency-log leaf
  kAllParts = 32,
};

std::string BuildVerdictSql(unsigned parts) {
  const std::string log_cte =
      parts & kLogged
          ? absl::StrCat(
                ", l AS (",
                TranslogAppendSql("$1", "$41",
                                  core::translog::LeafKind::kAttestation),
                " FROM u)")
          : "";
  return absl::StrCat(
      "WITH g AS (SELECT 1 FROM registrations WHERE agent_id = $1 AND "
      "aik_name = $24::bytea FOR SHARE), "
      "u AS (UPDATE agent_state a SET "
      "state = CASE WHEN $3::boolean AND o.state <> 'fail' THEN 'pass' "
      "ELSE 'fail' END, "
      "state_since = CASE WHEN (CASE WHEN $3::boolean AND o.state <> "
      "'fail' THEN 'pass' ELSE 'fail' END) = o.state THEN a.state_since "
      "ELSE now() END, "
      "last_verdict_at = now(), last_attestation_id = $4, failures = $5, "
      "lease_until = now() + make_interval(secs => $6::float8), "
      "connected = true, "
      "clock_known = a.clock_known OR $7::boolean, "
      "reset_count = CASE WHEN $7::boolean THEN $8::bigint ELSE "
      "a.reset_count END, "
      "restart_count = CASE WHEN $7::boolean THEN $9::bigint ELSE "
      "a.restart_count END, "
      "clock = CASE WHEN $7::boolean THEN $10::bigint ELSE a.clock END, "
      "ima_next_entry = COALESCE($11::bigint, a.ima_next_entry), "
      "pcr10_sha1 = COALESCE($12::bytea, a.pcr10_sha1), "
      "pcr10_sha256 = COALESCE($13::bytea, a.pcr10_sha256), "
      "ima_learned_keys = COALESCE($40::bytea, a.ima_learned_keys), "
      "runtime_policy_version = $20::bigint, "
      "boot_pcrs = COALESCE($21::bytea, a.boot_pcrs), "
      "boot_policy_version = CASE WHEN $21::bytea IS NULL THEN "
      "a.boot_policy_version ELSE $22::bigint END "
      "FROM agent_state o WHERE o.agent_id = a.agent_id AND a.agent_id = "
      "$1 AND a.epoch = $2::bigint AND EXISTS (SELECT 1 FROM g) "
      "RETURNING o.state AS prev, a.state), "
      "r AS (INSERT INTO attestations (attestation_id, tenant, agent_id, "
      "verifier, epoch, nonce, state, failures, ima_from, "
      "ima_next_entry, ima_entries_received, reset_count, "
      "evidence_sha256, boot_policy_version, boot_log_evaluated) SELECT $4, "
      "$14, $1, $15, $2::bigint, $16, CASE "
      "WHEN $3::boolean THEN 'pass' ELSE 'fail' END, $5, $17::bigint, "
      "$11::bigint, $18::bigint, CASE WHEN $7::boolean THEN $8::bigint "
      "ELSE -1 END, $19, $22::bigint, $23::boolean FROM u), "
      // A nonce is accepted once in the pool: attestations is partitioned
      // and cannot hold that constraint (migrations/0008).
      "n AS (INSERT INTO attestation_nonces (nonce) SELECT $16 FROM u), "
      "e AS (INSERT INTO agent_events (tenant, agent_id, previous_state, "
      "state, cause, attestation_id) SELECT $14, $1, u.prev, u.state, "
      "'verdict', $4 FROM u WHERE u.prev <> u.state)",
      // Kept evidence (migrations/0010), only with a verified clock
      // ($7): $25 kept?  $26 quote  $27 AIK public  $28 first IMA index
      // of the segment (null: none)  $29 format  $30 template hash alg
      // $31 IMA data  $32 boot log  $33 its SHA-256 (null: none came)
      // $34..$39 runtime/boot/pcr policy names and versions.
      parts & kKept
          ? ", k AS (INSERT INTO attestation_evidence (attestation_id, "
            "tenant, agent_id, quote, aik_name, reset_count, "
            "ima_next_entry, boot_log_sha256, runtime_policy, "
            "runtime_policy_version, boot_policy, boot_policy_version, "
            "pcr_policy, pcr_policy_version) SELECT $4, $14, $1, $26, "
            "$24::bytea, $8::bigint, $11::bigint, COALESCE($33::bytea, "
            "(SELECT b.sha256 FROM kept_boot_logs b WHERE b.agent_id = $1 "
            "AND b.reset_count = $8::bigint ORDER BY b.at DESC LIMIT 1)), "
            "$34, $35::bigint, $36, $37::bigint, $38, $39::bigint FROM u "
            "WHERE $25::boolean AND $7::boolean)"
          : "",
      parts & kImaSegment
          ? ", ks AS (INSERT INTO ima_segments (tenant, agent_id, "
            "reset_count, first_index, next_index, format, "
            "template_hash_alg, data) SELECT $14, $1, $8::bigint, "
            "$28::bigint, $11::bigint, $29::integer, $30::integer, $31 FROM "
            "u WHERE $25::boolean AND $7::boolean AND $28::bigint IS NOT "
            "NULL)"
          : "",
      parts & kBootLog
          ? ", kb AS (INSERT INTO kept_boot_logs (agent_id, sha256, "
            "reset_count, data) SELECT $1, $33, $8::bigint, $32 FROM u WHERE "
            "$25::boolean AND $7::boolean AND $33::bytea IS NOT NULL ON "
            "CONFLICT (agent_id, sha256) DO UPDATE SET reset_count = "
            "EXCLUDED.reset_count, at = now())"
          : "",
      parts & kNewAik
          ? ", ka AS (INSERT INTO kept_aiks (aik_name, aik_public) SELECT "
            "$24::bytea, $27 FROM u WHERE $25::boolean AND $7::boolean ON "
            "CONFLICT (aik_name) DO NOTHING)"
          : "",
      // The parameters of the parts left out, typed.
      ", p AS (SELECT $25::boolean",
      parts & kKept ? ""
                    : ", $26::bytea, $33::bytea, $34::text, $35::bigint, "
                      "$36::text, $37::bigint, $38::text, $39::bigint",
      parts & kImaSegment
          ? ""
          : ", $28::bigint, $29::integer, $30::integer, $31::bytea",
      parts & kBootLog ? "" : ", $32::bytea",
      parts & kNewAik ? "" : ", $27::bytea", ")", log_cte,
      " SELECT u.prev, u.state FROM u");
}

// Each variant's SQL and prepared-statement name, built once.
struct VerdictVariant {
  std::string sql;
  std::string name;
};
const VerdictVariant& VerdictSql(unsigned parts) {
  static const std::vector<VerdictVariant>* const kAll = [] {
    auto* all = new std::vector<VerdictVariant>;
    for (unsigned p = 0; p < kAllParts; ++p) {
      all->push_back({BuildVerdictSql(p), absl::StrCat("vouch_verdict_", p)});
    }
    return all;
  }();
  return (*kAll)[parts];
}

// The verdict's bytea parameters (from 0: $5 is bit 4), sent as raw bytes.
constexpr uint64_t Bit(int param) { return uint64_t{1} << (param - 1); }
constexpr uint64_t kVerdictByteaParams =
    Bit(5) | Bit(12) | Bit(13) | Bit(16) | Bit(19) | Bit(21) | Bit(24) |
    Bit(26) | Bit(27) | Bit(31) | Bit(32) | Bit(33) | Bit(40) | Bit(41);

// Whether the verdict writes its kept evidence: kept, with a verified clock.
bool WritesKept(const VerdictCommit& c) {
  return c.kept.has_value() && c.reset_count.has_value();
}

// One verdict as one statement (to pipeline): see AgentStore::CommitVerdicts.
// `aik_kept`: its AIK is known to be in kept_aiks already.
PgStatement VerdictStatement(const VerdictCommit& c, bool translog,
                             bool aik_kept) {
  auto opt_u64 = [](const std::optional<uint64_t>& v) -> PgParam {
    return v ? PgParam(absl::StrCat(*v)) : PgParam();
  };
  const bool ima = c.ima_next_entry.has_value();
  const bool clock = c.reset_count.has_value();
  static const KeptEvidence kNone;
  const bool kept = c.kept.has_value();
  const KeptEvidence& k = kept ? *c.kept : kNone;
  const bool segment = kept && ima && !k.ima_data.empty();
  unsigned parts = translog ? unsigned{kLogged} : 0u;
  if (WritesKept(c)) {
    parts |= kKept;
    if (segment) parts |= kImaSegment;
    if (!k.boot_log.empty()) parts |= kBootLog;
    if (!aik_kept) parts |= kNewAik;
  }
  const VerdictVariant& variant = VerdictSql(parts);
  PgStatement st{variant.sql,
                 {c.agent_id,
                  absl::StrCat(c.epoch),
                  c.passed ? "true" : "false",
                  c.attestation_id,
                  c.failures,
                  Secs(c.lease),
                  clock ? "true" : "false",
                  absl::StrCat(c.reset_count.value_or(0)),
                  absl::StrCat(c.restart_count),
                  absl::StrCat(c.clock),
                  opt_u64(c.ima_next_entry),
                  ima ? PgParam(c.pcr10_sha1) : PgParam(),
                  ima ? PgParam(c.pcr10_sha256) : PgParam(),
                  c.tenant,
                  c.owner,
                  c.nonce,
                  opt_u64(c.ima_from),
                  absl::StrCat(c.ima_entries_received),
                  c.evidence_sha256,
                  absl::StrCat(c.runtime_policy_version),
                  c.boot_pcrs ? PgParam(*c.boot_pcrs) : PgParam(),
                  absl::StrCat(c.boot_policy_version),
                  c.boot_log_evaluated ? "true" : "false",
                  c.aik_name,
                  kept ? "true" : "false",
                  k.quote,
                  k.aik_public,
                  segment ? PgParam(absl::StrCat(k.ima_first)) : PgParam(),
                  absl::StrCat(k.ima_format),
                  absl::StrCat(k.ima_template_hash_alg),
                  k.ima_data,
                  k.boot_log,
                  k.boot_log.empty() ? PgParam() : PgParam(k.boot_log_sha256),
                  k.runtime_policy,
                  absl::StrCat(k.runtime_policy_version),
                  k.boot_policy,
                  absl::StrCat(k.boot_policy_version),
                  k.pcr_policy,
                  absl::StrCat(k.pcr_policy_version),
                  ima ? PgParam(c.ima_learned_keys) : PgParam()},
                 variant.name,
                 kVerdictByteaParams};
  if (translog) {
    st.params.push_back(core::translog::TranslogLeafForAttestation(
        c.attestation_id, c.agent_id, c.nonce, c.passed ? "pass" : "fail",
        c.evidence_sha256, absl::Now()));
  }
  return st;
}

// The shadow's judgement, fenced like the verdict (same epoch), summed per
// agent while candidate and version stay the same.
constexpr char kShadowSql[] =
    "INSERT INTO policy_shadow_results AS s (tenant, policy, agent_id, "
    "candidate, candidate_version, rounds, entries_checked, failure_count, "
    "failures, xid, seq) SELECT a.tenant, $3, a.agent_id, $4, $5, 1, $6, $7, "
    "$8, CASE WHEN $7::bigint > 0 THEN pg_current_xact_id() ELSE "
    "'0'::xid8 END, CASE WHEN $7::bigint > 0 THEN "
    "nextval('agent_events_seq_seq') ELSE 0 END FROM agent_state a WHERE "
    "a.agent_id = $1 AND a.epoch = $2 ON CONFLICT "
    "(tenant, policy, agent_id) DO UPDATE SET rounds = CASE WHEN same THEN "
    "s.rounds + 1 ELSE 1 END, entries_checked = CASE WHEN same THEN "
    "s.entries_checked + EXCLUDED.entries_checked ELSE "
    "EXCLUDED.entries_checked END, failure_count = CASE WHEN same THEN "
    "s.failure_count + EXCLUDED.failure_count ELSE EXCLUDED.failure_count "
    "END, failures = CASE WHEN EXCLUDED.failure_count > 0 OR NOT same THEN "
    "EXCLUDED.failures ELSE s.failures END, candidate = EXCLUDED.candidate, "
    "candidate_version = EXCLUDED.candidate_version, updated_at = now(), "
    "xid = CASE WHEN EXCLUDED.failure_count > 0 THEN EXCLUDED.xid ELSE "
    "s.xid END, seq = CASE WHEN EXCLUDED.failure_count > 0 THEN EXCLUDED.seq "
    "ELSE s.seq END";

PgStatement ShadowStatement(const VerdictCommit& c) {
  const ShadowCommit& sh = *c.shadow;
  static const std::string sql = absl::StrReplaceAll(
      kShadowSql,
      {{"same",
        "(s.candidate = EXCLUDED.candidate AND s.candidate_version = "
        "EXCLUDED.candidate_version)"}});
  return PgStatement{
      sql,
      {c.agent_id, absl::StrCat(c.epoch), sh.policy, sh.candidate,
       absl::StrCat(sh.candidate_version), absl::StrCat(sh.entries_checked),
       absl::StrCat(sh.failure_count), sh.failures},
      "vouch_shadow_result",
      Bit(8)};
}

// A verdict's statements: the verdict, then its shadow's when it has one.
void AppendVerdict(const VerdictCommit& c, bool translog, bool aik_kept,
                   std::vector<PgStatement>* out) {
  out->push_back(VerdictStatement(c, translog, aik_kept));
  if (c.shadow) out->push_back(ShadowStatement(c));
}

absl::StatusOr<VerdictApplied> VerdictResult(const PgRows& rows) {
  VerdictApplied out;
  if (rows.rows.empty()) {
    out.fenced = true;
    return out;
  }
  VOUCH_ASSIGN_OR_RETURN(out.previous_state, State(rows.rows[0][0]));
  VOUCH_ASSIGN_OR_RETURN(out.state, State(rows.rows[0][1]));
  return out;
}

// `verdict`: the verdict's statement, for the caller.
absl::StatusOr<VerdictApplied> ApplyVerdict(PgConnection& db,
                                            const VerdictCommit& c,
                                            bool translog, bool aik_kept,
                                            PgStatement* verdict) {
  std::vector<PgStatement> statements;
  AppendVerdict(c, translog, aik_kept, &statements);
  VOUCH_ASSIGN_OR_RETURN(std::vector<PgRows> rows,
                         db.QueryPipelined(statements));
  if (rows.size() != statements.size()) {
    return absl::InternalError("short pipeline");
  }
  *verdict = std::move(statements[0]);
  return VerdictResult(rows[0]);
}

}  // namespace

std::vector<absl::StatusOr<VerdictApplied>> PgVerifierStore::CommitVerdicts(
    const std::vector<const VerdictCommit*>& commits) {
  std::vector<absl::StatusOr<VerdictApplied>> results;
  results.reserve(commits.size());
  absl::StatusOr<PgPool::Lease> db = pool_->Acquire(absl::Seconds(5));
  if (!db.ok()) {
    results.assign(commits.size(), db.status());
    return results;
  }
  // The whole batch in one round trip: BEGIN, one fenced statement per
  // verdict, COMMIT (libpq pipeline mode).
  std::vector<PgStatement> statements;
  statements.reserve(commits.size() + 2);
  statements.push_back({"BEGIN", {}, {}});
  // The verdict statement of commits[i] (a shadow's follows it).
  std::vector<size_t> at;
  at.reserve(commits.size());
  for (const VerdictCommit* c : commits) {
    at.push_back(statements.size());
    AppendVerdict(*c, translog_, AikKept(c->aik_name), &statements);
  }
  if (commit_delay_ > absl::ZeroDuration()) {
    statements.push_back({"SELECT pg_sleep($1)",
                          {absl::StrCat(absl::ToDoubleSeconds(commit_delay_))},
                          {}});
  }
  statements.push_back({"COMMIT", {}, {}});
  absl::StatusOr<std::vector<PgRows>> all = (*db)->QueryPipelined(statements);
  if (all.ok() && all->size() == statements.size()) {
    for (size_t i = 0; i < commits.size(); ++i) {
      results.push_back(VerdictResult((*all)[at[i]]));
      Committed(*commits[i], statements[at[i]], results.back());
    }
    return results;
  }
  absl::Status failed =
      all.ok() ? absl::InternalError("short pipeline") : all.status();
  Log(LogLevel::kWarning, "verdict batch failed; committing one by one",
      {{"error", failed.message()}, {"batch", commits.size()}});
  (void)(*db)->Exec("ROLLBACK");  // The failed transaction stays open.
  // One verdict may have broken the batch: commit each on its own.
  for (const VerdictCommit* c : commits) {
    if (!(*db)->Healthy()) {
      results.push_back(failed);
      continue;
    }
    PgStatement verdict;
    results.push_back(InTransaction(
        **db, [&](PgConnection& conn) -> absl::StatusOr<VerdictApplied> {
          return ApplyVerdict(conn, *c, translog_, AikKept(c->aik_name),
                              &verdict);
        }));
    Committed(*c, verdict, results.back());
  }
  return results;
}

bool PgVerifierStore::AikKept(const std::string& aik_name) {
  absl::MutexLock lock(&aiks_mu_);
  return kept_aiks_.contains(aik_name);
}

void PgVerifierStore::Committed(const VerdictCommit& commit,
                                const PgStatement& verdict,
                                const absl::StatusOr<VerdictApplied>& result) {
  if (!result.ok() || result->fenced) return;
  if (WritesKept(commit)) {
    // kept_aiks rows are never deleted (migrations/0010).
    absl::MutexLock lock(&aiks_mu_);
    if (kept_aiks_.size() >= kKeptAiksKnown) kept_aiks_.clear();
    kept_aiks_.insert(commit.aik_name);
  }
  if (committed_ == nullptr || !translog_ || verdict.params.empty() ||
      !verdict.params.back()) {
    return;
  }
  // The leaf is the statement's last parameter ($41).
  committed_->Add(core::translog::LeafHash(*verdict.params.back()),
                  absl::Now());
}

absl::StatusOr<KeptRecord> PgVerifierStore::GetKeptRecord(
    const std::string& tenant, const std::string& attestation_id) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(
          "SELECT a.attestation_id, a.state, a.verifier, a.epoch, a.ima_from, "
          "a.ima_next_entry, a.ima_entries_received, (extract(epoch from "
          "a.at) * 1000000)::bigint, a.boot_policy_version, "
          "a.boot_log_evaluated, a.failures, a.nonce, a.agent_id, e.quote, "
          "e.aik_name, e.reset_count, e.boot_log_sha256, e.runtime_policy, "
          "e.runtime_policy_version, e.boot_policy, e.boot_policy_version, "
          "e.pcr_policy, e.pcr_policy_version, k.aik_public, b.data, "
          "r.ek_certificate, r.ek_intermediates, e.attestation_id IS NOT NULL, "
          "r.ek_public, a.evidence_sha256 "
          "FROM attestations a LEFT JOIN attestation_evidence e ON "
          "e.attestation_id = a.attestation_id AND e.at = a.at LEFT JOIN "
          "kept_aiks k ON k.aik_name = e.aik_name LEFT JOIN kept_boot_logs b "
          "ON b.agent_id = a.agent_id AND b.sha256 = e.boot_log_sha256 LEFT "
          "JOIN registrations r ON r.agent_id = a.agent_id AND r.tenant = "
          "a.tenant WHERE a.tenant = $1 AND a.attestation_id = $2 LIMIT 1",
          {tenant, attestation_id}));
  if (rows.rows.empty()) {
    return absl::NotFoundError("no such attestation record");
  }
  const Row& r = rows.rows[0];
  KeptRecord out;
  out.tenant = tenant;
  VOUCH_ASSIGN_OR_RETURN(out.row, AttestationRowOf(r));
  const AttestationRow& a = out.row;
  VOUCH_ASSIGN_OR_RETURN(out.failures, Bytea(r[10]));
  VOUCH_ASSIGN_OR_RETURN(out.nonce, Bytea(r[11]));
  out.agent_id = r[12].value_or("");
  VOUCH_ASSIGN_OR_RETURN(out.evidence_sha256, Bytea(r[29]));
  if (r[27].value_or("f") != "t") {
    out.evidence_status = absl::FailedPreconditionError(
        "the record's evidence is not kept (committed before evidence was "
        "kept, or dropped by the retention)");
    return out;
  }
  KeptEvidence& k = out.evidence;
  VOUCH_ASSIGN_OR_RETURN(k.quote, Bytea(r[13]));
  VOUCH_ASSIGN_OR_RETURN(out.aik_name, Bytea(r[14]));
  VOUCH_ASSIGN_OR_RETURN(int64_t reset, Int<int64_t>(r[15]));
  out.reset_count = static_cast<uint32_t>(reset);
  if (r[16]) {
    VOUCH_ASSIGN_OR_RETURN(k.boot_log_sha256, Bytea(r[16]));
    if (!r[24]) {
      out.evidence_status = absl::FailedPreconditionError(
          "the record's boot log is no longer kept");
      return out;
    }
    VOUCH_ASSIGN_OR_RETURN(k.boot_log, Bytea(r[24]));
  }
  k.runtime_policy = r[17].value_or("");
  VOUCH_ASSIGN_OR_RETURN(k.runtime_policy_version, Int<uint64_t>(r[18]));
  k.boot_policy = r[19].value_or("");
  VOUCH_ASSIGN_OR_RETURN(k.boot_policy_version, Int<uint64_t>(r[20]));
  k.pcr_policy = r[21].value_or("");
  VOUCH_ASSIGN_OR_RETURN(k.pcr_policy_version, Int<uint64_t>(r[22]));
  if (!r[23]) {
    out.evidence_status =
        absl::FailedPreconditionError("the record's AIK is not kept");
    return out;
  }
  VOUCH_ASSIGN_OR_RETURN(k.aik_public, Bytea(r[23]));
  if (r[25]) {
    VOUCH_ASSIGN_OR_RETURN(out.ek_certificate, Bytea(r[25]));
  }
  out.ek_intermediates = r[26].value_or("");
  VOUCH_ASSIGN_OR_RETURN(out.ek_public, Bytea(r[28]));
  if (!a.ima_next_entry || *a.ima_next_entry == 0) return out;
  // The boot's IMA entries 0 .. ima_next_entry, segment by segment.
  VOUCH_ASSIGN_OR_RETURN(
      PgRows segments,
      db->Query("SELECT first_index, next_index, format, template_hash_alg, "
                "data FROM ima_segments WHERE agent_id = $1 AND reset_count "
                "= $2::bigint AND first_index < $3::bigint ORDER BY "
                "first_index, at",
                {out.agent_id, absl::StrCat(reset),
                 absl::StrCat(*a.ima_next_entry)}));
  uint64_t next = 0;
  for (const Row& seg : segments.rows) {
    VOUCH_ASSIGN_OR_RETURN(uint64_t first, Int<uint64_t>(seg[0]));
    VOUCH_ASSIGN_OR_RETURN(uint64_t last, Int<uint64_t>(seg[1]));
    if (first != next) continue;  // A repeat (another verifier's retry).
    if (next == 0) {
      VOUCH_ASSIGN_OR_RETURN(out.ima_format, Int<int>(seg[2]));
      VOUCH_ASSIGN_OR_RETURN(out.ima_template_hash_alg, Int<int>(seg[3]));
    }
    VOUCH_ASSIGN_OR_RETURN(std::string data, Bytea(seg[4]));
    out.ima_log += data;
    next = last;
  }
  if (next != *a.ima_next_entry) {
    out.evidence_status = absl::FailedPreconditionError(absl::StrCat(
        "the record's IMA entries from ", next, " are no longer kept"));
    return out;
  }
  return out;
}

absl::StatusOr<std::string> PgVerifierStore::RecordAt(
    const std::string& tenant, const std::string& agent_id, absl::Time at) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query("SELECT attestation_id FROM attestations WHERE tenant = $1 "
                "AND agent_id = $2 AND at <= to_timestamp($3::float8 / "
                "1000000) ORDER BY at DESC, attestation_id LIMIT 1",
                {tenant, agent_id, absl::StrCat(absl::ToUnixMicros(at))}));
  if (rows.rows.empty()) {
    return absl::NotFoundError("the agent has no attestation record then");
  }
  return rows.rows[0][0].value_or("");
}

// --- Tenant settings --------------------------------------------------------

absl::StatusOr<TenantSettings> PgVerifierStore::GetTenantSettings(
    const std::string& tenant) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query("SELECT peer_notices FROM tenant_settings WHERE tenant = $1",
                {tenant}));
  TenantSettings s;
  s.tenant = tenant;
  if (!rows.rows.empty()) s.peer_notices = rows.rows[0][0].value_or("f") == "t";
  return s;
}

absl::Status PgVerifierStore::SetTenantSettings(const TenantSettings& s) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return db
      ->Query(
          "INSERT INTO tenant_settings (tenant, peer_notices) VALUES ($1, $2) "
          "ON CONFLICT (tenant) DO UPDATE SET peer_notices = $2, updated_at = "
          "now() RETURNING 1",
          {s.tenant, s.peer_notices ? "true" : "false"})
      .status();
}

}  // namespace vouch::store
