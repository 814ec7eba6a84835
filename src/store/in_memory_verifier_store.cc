#include "store/in_memory_verifier_store.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace vouch::store {
namespace {

// A time as PostgreSQL keeps it: to the microsecond (the infinities, which
// stand for NULL, as they are).
absl::Time AsStored(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return t;
  return absl::FromUnixMicros(absl::ToUnixMicros(t));
}

// One process, one database: its incarnation never changes.
constexpr char kMemoryIncarnation[] = "memory";

bool Before(const EventPosition& a, const EventPosition& b) {
  return a.xid < b.xid || (a.xid == b.xid && a.seq < b.seq);
}

bool Contains(const std::vector<core::AgentState>& v, core::AgentState s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

InMemoryVerifierStore::InMemoryVerifierStore(int timeout_intervals, Clock clock)
    : timeout_intervals_(timeout_intervals), clock_(std::move(clock)) {}

void InMemoryVerifierStore::SetRegistration(const std::string& tenant,
                                            const std::string& agent_id,
                                            const std::string& aik_public,
                                            const std::string& aik_name,
                                            bool active) {
  absl::MutexLock lock(&mu_);
  registrations_[{tenant, agent_id}] = {aik_public, aik_name, active};
}

void InMemoryVerifierStore::RemoveRegistration(const std::string& tenant,
                                               const std::string& agent_id) {
  absl::MutexLock lock(&mu_);
  registrations_.erase({tenant, agent_id});
}

bool InMemoryVerifierStore::Holds(const std::string& agent_id, int64_t epoch,
                                  const std::string& aik_name) const {
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || it->second.row.epoch != epoch) return false;
  auto reg = registrations_.find({it->second.row.enrollment.tenant, agent_id});
  return reg != registrations_.end() && reg->second.active &&
         reg->second.aik_name == aik_name;
}

void InMemoryVerifierStore::FailCommits(int n) {
  absl::MutexLock lock(&mu_);
  fail_commits_ = n;
}

std::vector<size_t> InMemoryVerifierStore::batch_sizes() const {
  absl::MutexLock lock(&mu_);
  return batch_sizes_;
}

void InMemoryVerifierStore::Backdate(const std::string& agent_id,
                                     absl::Duration d) {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) return;
  it->second.row.enrolled_at -= d;
  if (it->second.row.last_verdict_at) *it->second.row.last_verdict_at -= d;
}

absl::Time InMemoryVerifierStore::lease_until(
    const std::string& agent_id) const {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(agent_id);
  return it == agents_.end() ? absl::InfinitePast() : it->second.lease_until;
}

// --- Policies ---------------------------------------------------------------

absl::StatusOr<PolicyRow> InMemoryVerifierStore::AddPolicy(const PolicyRow& p) {
  absl::MutexLock lock(&mu_);
  std::vector<PolicyRow>& versions = policies_[{p.tenant, p.name}];
  uint64_t version = 1;
  if (!versions.empty()) {
    if (!versions.back().removed) {
      return absl::AlreadyExistsError(
          absl::StrCat("policy ", p.name, " exists; update it instead"));
    }
    version = versions.back().version + 1;
  }
  PolicyRow row = p;
  row.version = version;
  row.created_at = clock_();
  row.removed = false;
  versions.push_back(row);
  return row;
}

absl::StatusOr<PolicyRow> InMemoryVerifierStore::UpdatePolicy(
    const PolicyRow& p, uint64_t expected_version) {
  absl::MutexLock lock(&mu_);
  auto it = policies_.find({p.tenant, p.name});
  if (it == policies_.end() || it->second.back().removed) {
    return absl::NotFoundError(absl::StrCat("no policy ", p.name));
  }
  const PolicyRow& newest = it->second.back();
  if (expected_version != 0 && expected_version != newest.version) {
    return absl::AbortedError(absl::StrCat("policy ", p.name, " is at version ",
                                           newest.version, ", not ",
                                           expected_version));
  }
  PolicyRow row = p;
  row.kind = newest.kind;
  row.version = newest.version + 1;
  row.created_at = clock_();
  row.removed = false;
  it->second.push_back(row);
  return row;
}

absl::StatusOr<PolicyRow> InMemoryVerifierStore::GetPolicy(
    const std::string& tenant, const std::string& name, uint64_t version) {
  absl::MutexLock lock(&mu_);
  auto it = policies_.find({tenant, name});
  if (it != policies_.end()) {
    if (version == 0 && !it->second.back().removed) return it->second.back();
    for (const PolicyRow& row : it->second) {
      if (version != 0 && row.version == version) return row;
    }
  }
  return absl::NotFoundError(absl::StrCat("no policy ", name));
}

absl::StatusOr<std::pair<uint64_t, int>>
InMemoryVerifierStore::NewestPolicyVersion(const std::string& tenant,
                                           const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = policies_.find({tenant, name});
  if (it == policies_.end() || it->second.back().removed) {
    return absl::NotFoundError(absl::StrCat("no policy ", name));
  }
  return std::make_pair(it->second.back().version, it->second.back().kind);
}

absl::StatusOr<std::vector<PolicyRow>> InMemoryVerifierStore::ListPolicies(
    const std::string& tenant, const std::string& after, int limit) {
  absl::MutexLock lock(&mu_);
  std::vector<PolicyRow> out;
  for (auto it = policies_.upper_bound({tenant, after});
       it != policies_.end() && it->first.first == tenant &&
       static_cast<int>(out.size()) < limit;
       ++it) {
    if (it->second.back().removed) continue;
    PolicyRow row = it->second.back();
    row.content.clear();
    out.push_back(std::move(row));
  }
  return out;
}

absl::StatusOr<std::vector<PolicyRow>> InMemoryVerifierStore::PolicyHistory(
    const std::string& tenant, const std::string& name, int limit) {
  absl::MutexLock lock(&mu_);
  auto it = policies_.find({tenant, name});
  if (it == policies_.end()) {
    return absl::NotFoundError(absl::StrCat("no policy ", name));
  }
  std::vector<PolicyRow> out;
  for (auto v = it->second.rbegin();
       v != it->second.rend() && static_cast<int>(out.size()) < limit; ++v) {
    PolicyRow row = *v;
    row.content.clear();
    out.push_back(std::move(row));
  }
  return out;
}

absl::Status InMemoryVerifierStore::RemovePolicy(const std::string& tenant,
                                                 const std::string& name) {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, a] : agents_) {
    const Enrollment& e = a.row.enrollment;
    if (e.tenant == tenant && (e.runtime_policy == name ||
                               e.boot_policy == name || e.pcr_policy == name)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "policy ", name, " is used by agent ", id, "; unenroll it first"));
    }
  }
  auto it = policies_.find({tenant, name});
  bool removed = false;
  if (it != policies_.end()) {
    for (PolicyRow& row : it->second) {
      removed = removed || !row.removed;
      row.removed = true;
    }
  }
  if (!removed) return absl::NotFoundError(absl::StrCat("no policy ", name));
  for (auto r = rollouts_.begin(); r != rollouts_.end();) {
    const bool names =
        std::get<0>(r->first) == tenant &&
        (r->second.policy == name || r->second.candidate == name);
    r = names ? rollouts_.erase(r) : std::next(r);
  }
  ClearShadowReportLocked(tenant, name);
  return absl::OkStatus();
}

absl::Status InMemoryVerifierStore::CheckPolicySlotLocked(
    const std::string& tenant, int slot, const std::string& name) const {
  auto it = policies_.find({tenant, name});
  if (it == policies_.end() || it->second.back().removed) {
    return absl::NotFoundError(absl::StrCat("no policy ", name));
  }
  return CheckSlotKind(slot, name, it->second.back().kind);
}

void InMemoryVerifierStore::ClearShadowReportLocked(const std::string& tenant,
                                                    const std::string& policy) {
  shadow_results_.erase({tenant, policy});
  SupersedeShadowsLocked(tenant, policy);
}

void InMemoryVerifierStore::SupersedeShadowsLocked(
    const std::string& tenant, const std::string& policy,
    const std::string& agent_id) {
  for (Record& r : log_) {
    if (r.event.shadow && r.tenant == tenant && r.event.policy == policy &&
        (agent_id.empty() || r.event.agent_id == agent_id)) {
      r.superseded = true;
    }
  }
}

absl::StatusOr<RolloutRow> InMemoryVerifierStore::SetRollout(
    const RolloutRow& r) {
  if (r.policy == r.candidate) {
    return absl::InvalidArgumentError(
        "a roll-out's candidate must be another policy");
  }
  absl::MutexLock lock(&mu_);
  VOUCH_RETURN_IF_ERROR(CheckPolicySlotLocked(r.tenant, 1, r.policy));
  VOUCH_RETURN_IF_ERROR(CheckPolicySlotLocked(r.tenant, 1, r.candidate));
  RolloutRow row = r;
  row.agent_ids = SortedUnique(r.agent_ids);
  row.not_before = AsStored(row.not_before);
  row.not_after = AsStored(row.not_after);
  row.created_at = AsStored(clock_());
  rollouts_[{r.tenant, r.policy, static_cast<int>(r.kind)}] = row;
  if (r.kind == RolloutKind::kShadow)
    ClearShadowReportLocked(r.tenant, r.policy);
  return row;
}

absl::StatusOr<std::vector<RolloutRow>> InMemoryVerifierStore::ListRollouts(
    const std::string& tenant, const std::string& policy) {
  absl::MutexLock lock(&mu_);
  std::vector<RolloutRow> out;
  for (const auto& [key, row] : rollouts_) {
    if (std::get<0>(key) == tenant &&
        (policy.empty() || row.policy == policy)) {
      out.push_back(row);
    }
  }
  return out;
}

absl::Status InMemoryVerifierStore::DeleteRollout(const std::string& tenant,
                                                  const std::string& policy,
                                                  RolloutKind kind) {
  absl::MutexLock lock(&mu_);
  if (rollouts_.erase({tenant, policy, static_cast<int>(kind)}) == 0) {
    return absl::NotFoundError(
        absl::StrCat("policy ", policy, " has no ", RolloutKindName(kind)));
  }
  if (kind == RolloutKind::kShadow) ClearShadowReportLocked(tenant, policy);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ShadowResultRow>>
InMemoryVerifierStore::ShadowReport(const std::string& tenant,
                                    const std::string& policy) {
  absl::MutexLock lock(&mu_);
  std::vector<ShadowResultRow> out;
  auto it = shadow_results_.find({tenant, policy});
  if (it == shadow_results_.end()) return out;
  for (const auto& [agent, row] : it->second) out.push_back(row);
  return out;
}

// --- Agents -----------------------------------------------------------------

AgentRow InMemoryVerifierStore::AsRead(const Agent& a) const {
  AgentRow row = a.row;
  const absl::Time now = clock_();
  row.connected = a.row.connected && a.lease_until > now;
  const absl::Time last = a.row.last_verdict_at.value_or(a.row.enrolled_at);
  if ((row.state == v1::ATTESTATION_STATE_PASS ||
       row.state == v1::ATTESTATION_STATE_PENDING) &&
      last < now - a.row.enrollment.interval * timeout_intervals_) {
    row.state = v1::ATTESTATION_STATE_TIMEOUT;
  }
  return row;
}

void InMemoryVerifierStore::AddEvent(const std::string& tenant, EventRow e,
                                     AttestationRow attestation) {
  e.position = {xid_, static_cast<int64_t>(log_.size()) + 1,
                kMemoryIncarnation};
  e.at = clock_();
  log_.push_back(Record{tenant, std::move(e), std::move(attestation)});
}

absl::StatusOr<AgentRow> InMemoryVerifierStore::Enroll(const Enrollment& e) {
  absl::MutexLock lock(&mu_);
  auto reg = registrations_.find({e.tenant, e.agent_id});
  if (reg == registrations_.end()) {
    return absl::NotFoundError(
        "agent is not registered in this tenant (see vouchctl registrar "
        "list)");
  }
  if (!reg->second.active) {
    return absl::FailedPreconditionError(
        "agent has registered but not activated its AIK yet");
  }
  for (const auto& [slot, name] : EnrollmentSlots(e)) {
    if (name->empty()) continue;
    VOUCH_RETURN_IF_ERROR(CheckPolicySlotLocked(e.tenant, slot, *name));
  }
  if (agents_.count(e.agent_id) != 0) {
    return absl::AlreadyExistsError(
        "agent is already enrolled; unenroll it first");
  }
  Agent& a = agents_[e.agent_id];
  a.row.enrollment = e;
  a.row.enrolled_at = clock_();
  a.row.state = v1::ATTESTATION_STATE_PENDING;
  a.row.state_since = a.row.enrolled_at;
  ++xid_;
  EventRow ev;
  ev.agent_id = e.agent_id;
  ev.previous_state = v1::ATTESTATION_STATE_UNENROLLED;
  ev.state = v1::ATTESTATION_STATE_PENDING;
  ev.cause = "enrolled";
  AddEvent(e.tenant, std::move(ev));
  return AsRead(a);
}

absl::Status InMemoryVerifierStore::Unenroll(const std::string& tenant,
                                             const std::string& agent_id) {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || it->second.row.enrollment.tenant != tenant) {
    return absl::NotFoundError("agent is not enrolled");
  }
  ++xid_;
  EventRow ev;
  ev.agent_id = agent_id;
  ev.previous_state = it->second.row.state;
  ev.state = v1::ATTESTATION_STATE_UNENROLLED;
  ev.cause = "unenrolled";
  AddEvent(tenant, std::move(ev));
  agents_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<AgentRow> InMemoryVerifierStore::GetAgent(
    const std::string& tenant, const std::string& agent_id) {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || it->second.row.enrollment.tenant != tenant) {
    return absl::NotFoundError("agent is not enrolled");
  }
  return AsRead(it->second);
}

absl::StatusOr<std::vector<AgentRow>> InMemoryVerifierStore::ListAgents(
    const std::string& tenant, const std::string& after,
    const std::vector<core::AgentState>& states, int limit,
    const std::string& policy) {
  absl::MutexLock lock(&mu_);
  std::vector<AgentRow> out;
  for (auto it = agents_.upper_bound(after);
       it != agents_.end() && static_cast<int>(out.size()) < limit; ++it) {
    const Enrollment& e = it->second.row.enrollment;
    if (e.tenant != tenant) continue;
    if (!policy.empty() && e.runtime_policy != policy &&
        e.boot_policy != policy && e.pcr_policy != policy) {
      continue;
    }
    AgentRow row = AsRead(it->second);
    if (!states.empty() && !Contains(states, row.state)) continue;
    out.push_back(std::move(row));
  }
  return out;
}

absl::StatusOr<Takeover> InMemoryVerifierStore::TakeOver(
    const std::string& tenant, const std::string& agent_id,
    const std::string& owner, const std::string& agent_version,
    absl::Duration lease) {
  absl::MutexLock lock(&mu_);
  auto reg = registrations_.find({tenant, agent_id});
  if (reg == registrations_.end() || !reg->second.active) {
    return absl::FailedPreconditionError(
        "agent is not registered and active: register again");
  }
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || it->second.row.enrollment.tenant != tenant) {
    return absl::FailedPreconditionError("agent is not enrolled");
  }
  Agent& a = it->second;
  a.row.owner = owner;
  ++a.row.epoch;
  a.lease_until = clock_() + lease;
  a.row.connected = true;
  a.row.agent_version = agent_version;
  return Takeover{AsRead(a), reg->second.aik_public, reg->second.aik_name};
}

absl::StatusOr<std::vector<bool>> InMemoryVerifierStore::RenewLeases(
    const std::vector<LeaseRenewal>& renewals) {
  absl::MutexLock lock(&mu_);
  std::vector<bool> out;
  for (const LeaseRenewal& r : renewals) {
    const bool ours = Holds(r.agent_id, r.epoch, r.aik_name);
    if (ours && r.renew) agents_[r.agent_id].lease_until = clock_() + r.lease;
    out.push_back(ours);
  }
  return out;
}

absl::StatusOr<bool> InMemoryVerifierStore::Enrolled(
    const std::string& agent_id) {
  absl::MutexLock lock(&mu_);
  return agents_.count(agent_id) != 0;
}

absl::Status InMemoryVerifierStore::Release(const std::string& agent_id,
                                            int64_t epoch) {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(agent_id);
  if (it != agents_.end() && it->second.row.epoch == epoch) {
    it->second.row.connected = false;
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> InMemoryVerifierStore::SweepTimeouts() {
  absl::MutexLock lock(&mu_);
  ++xid_;
  int64_t n = 0;
  for (auto& [id, a] : agents_) {
    if (AsRead(a).state != v1::ATTESTATION_STATE_TIMEOUT ||
        a.row.state == v1::ATTESTATION_STATE_TIMEOUT) {
      continue;
    }
    EventRow ev;
    ev.agent_id = id;
    ev.previous_state = a.row.state;
    ev.state = v1::ATTESTATION_STATE_TIMEOUT;
    ev.cause = "timeout";
    AddEvent(a.row.enrollment.tenant, std::move(ev));
    a.row.state = v1::ATTESTATION_STATE_TIMEOUT;
    a.row.state_since = clock_();
    ++n;
  }
  return n;
}

absl::StatusOr<VerdictApplied> InMemoryVerifierStore::Apply(
    const VerdictCommit& c) {
  VerdictApplied out;
  if (!Holds(c.agent_id, c.epoch, c.aik_name)) {
    out.fenced = true;
    return out;
  }
  auto it = agents_.find(c.agent_id);
  if (attestation_ids_.count(c.attestation_id) != 0 ||
      nonces_.count(c.nonce) != 0) {
    return absl::AlreadyExistsError("attestation or nonce recorded before");
  }
  attestation_ids_.insert(c.attestation_id);
  nonces_.insert(c.nonce);
  Agent& a = it->second;
  const absl::Time now = clock_();
  out.previous_state = a.row.state;
  out.state = c.passed && a.row.state != v1::ATTESTATION_STATE_FAIL
                  ? v1::ATTESTATION_STATE_PASS
                  : v1::ATTESTATION_STATE_FAIL;
  if (out.state != a.row.state) a.row.state_since = now;
  a.row.state = out.state;
  a.row.last_verdict_at = now;
  a.row.last_attestation_id = c.attestation_id;
  a.row.failures = c.failures;
  a.lease_until = now + c.lease;
  a.row.connected = true;
  if (c.reset_count) {
    a.row.clock_known = true;
    a.row.reset_count = *c.reset_count;
    a.row.restart_count = c.restart_count;
    a.row.clock = c.clock;
  }
  if (c.ima_next_entry) {
    a.row.ima_next_entry = *c.ima_next_entry;
    a.row.pcr10_sha1 = c.pcr10_sha1;
    a.row.pcr10_sha256 = c.pcr10_sha256;
    a.row.ima_learned_keys = c.ima_learned_keys;
  }
  a.row.runtime_policy_version = c.runtime_policy_version;
  if (c.boot_pcrs) {
    a.row.boot_pcrs = *c.boot_pcrs;
    a.row.boot_policy_version = c.boot_policy_version;
  }
  EventRow record;
  record.verdict = true;
  record.verifier = c.owner;
  record.agent_id = c.agent_id;
  record.state =
      c.passed ? v1::ATTESTATION_STATE_PASS : v1::ATTESTATION_STATE_FAIL;
  record.attestation_id = c.attestation_id;
  record.failures = c.failures;
  AttestationRow attestation;
  attestation.attestation_id = c.attestation_id;
  attestation.state = record.state;
  attestation.verifier = c.owner;
  attestation.epoch = c.epoch;
  attestation.ima_from = c.ima_from;
  attestation.ima_next_entry = c.ima_next_entry;
  attestation.ima_entries_received = c.ima_entries_received;
  attestation.boot_policy_version = c.boot_policy_version;
  attestation.boot_log_evaluated = c.boot_log_evaluated;
  attestation.at = now;
  Keep(c, attestation);
  if (c.shadow) {
    const ShadowCommit& sh = *c.shadow;
    ShadowResultRow& r = shadow_results_[{c.tenant, sh.policy}][c.agent_id];
    const bool same = r.candidate == sh.candidate &&
                      r.candidate_version == sh.candidate_version;
    r.agent_id = c.agent_id;
    r.rounds = same ? r.rounds + 1 : 1;
    r.entries_checked = (same ? r.entries_checked : 0) + sh.entries_checked;
    r.failure_count = (same ? r.failure_count : 0) + sh.failure_count;
    if (sh.failure_count > 0 || !same) r.failures = sh.failures;
    r.candidate = sh.candidate;
    r.candidate_version = sh.candidate_version;
    r.updated_at = AsStored(now);
    if (sh.failure_count > 0 || !same) {
      SupersedeShadowsLocked(c.tenant, sh.policy, c.agent_id);
    }
    if (sh.failure_count > 0) {
      EventRow ev;
      ev.shadow = true;
      ev.agent_id = c.agent_id;
      ev.policy = sh.policy;
      ev.candidate = sh.candidate;
      ev.candidate_version = sh.candidate_version;
      ev.shadow_failure_count = r.failure_count;
      ev.failures = r.failures;
      AddEvent(c.tenant, std::move(ev));
    }
  }
  AddEvent(c.tenant, std::move(record), attestation);
  if (out.previous_state != out.state) {
    EventRow ev;
    ev.agent_id = c.agent_id;
    ev.previous_state = out.previous_state;
    ev.state = out.state;
    ev.cause = "verdict";
    ev.attestation_id = c.attestation_id;
    ev.failures = c.failures;
    AddEvent(c.tenant, std::move(ev));
  }
  return out;
}

std::vector<absl::StatusOr<VerdictApplied>>
InMemoryVerifierStore::CommitVerdicts(
    const std::vector<const VerdictCommit*>& commits) {
  absl::MutexLock lock(&mu_);
  std::vector<absl::StatusOr<VerdictApplied>> out;
  if (fail_commits_ > 0) {
    --fail_commits_;
    out.assign(commits.size(), absl::UnavailableError("database down"));
    return out;
  }
  ++xid_;  // One transaction for the batch.
  batch_sizes_.push_back(commits.size());
  for (const VerdictCommit* c : commits) out.push_back(Apply(*c));
  return out;
}

absl::StatusOr<std::vector<HistoryRow>> InMemoryVerifierStore::QueryHistory(
    const HistoryQuery& q) {
  absl::MutexLock lock(&mu_);
  // Newest first: at descending, then attestation_id descending.
  auto before = [](const AttestationRow& x, absl::Time at,
                   const std::string& id) {
    return x.at < at || (x.at == at && x.attestation_id < id);
  };
  std::vector<HistoryRow> out;
  for (const Record& r : log_) {
    const AttestationRow& a = r.attestation;
    if (!r.event.verdict || r.tenant != q.tenant ||
        (!q.agent_id.empty() && r.event.agent_id != q.agent_id) ||
        (q.from && a.at < *q.from) || (q.to && a.at >= *q.to) ||
        (!q.states.empty() && std::find(q.states.begin(), q.states.end(),
                                        a.state) == q.states.end()) ||
        (q.after_at && !before(a, *q.after_at, q.after_id))) {
      continue;
    }
    out.push_back(HistoryRow{r.event.agent_id, a, r.event.failures});
  }
  std::sort(out.begin(), out.end(),
            [&](const HistoryRow& x, const HistoryRow& y) {
              return before(y.row, x.row.at, x.row.attestation_id);
            });
  if (out.size() > static_cast<size_t>(std::max(q.limit, 0))) {
    out.resize(std::max(q.limit, 0));
  }
  return out;
}

void InMemoryVerifierStore::SetRecordTime(const std::string& attestation_id,
                                          absl::Time at) {
  absl::MutexLock lock(&mu_);
  for (Record& r : log_) {
    if (r.event.verdict && r.attestation.attestation_id == attestation_id) {
      r.event.at = at;
      r.attestation.at = at;
    }
  }
}

void InMemoryVerifierStore::Keep(const VerdictCommit& c,
                                 const AttestationRow& attestation) {
  if (!c.kept || !c.reset_count) return;
  const KeptEvidence& k = *c.kept;
  const uint32_t boot = *c.reset_count;
  KeptRecord r;
  r.tenant = c.tenant;
  r.agent_id = c.agent_id;
  r.row = attestation;
  r.failures = c.failures;
  r.nonce = c.nonce;
  r.evidence_sha256 = c.evidence_sha256;
  r.aik_name = c.aik_name;
  r.reset_count = boot;
  r.evidence = k;
  r.evidence.ima_data.clear();
  r.evidence.boot_log.clear();
  r.evidence.boot_log_sha256.clear();
  if (!k.boot_log.empty()) {
    boot_logs_[{c.agent_id, k.boot_log_sha256}] = {boot, k.boot_log};
    r.evidence.boot_log_sha256 = k.boot_log_sha256;
  } else {
    // The newest boot log kept for the boot (the map keeps no time:
    // the one stored last for this boot wins, as with PostgreSQL's
    // ORDER BY at DESC).
    auto last = last_boot_log_.find({c.agent_id, boot});
    if (last != last_boot_log_.end()) {
      r.evidence.boot_log_sha256 = last->second;
    }
  }
  if (!k.boot_log.empty()) {
    last_boot_log_[{c.agent_id, boot}] = k.boot_log_sha256;
  }
  if (c.ima_next_entry && !k.ima_data.empty()) {
    ima_segments_[{c.agent_id, boot}].push_back(
        ImaSegment{k.ima_first, *c.ima_next_entry, k.ima_format,
                   k.ima_template_hash_alg, k.ima_data});
  }
  aiks_.emplace(c.aik_name, k.aik_public);
  kept_[c.attestation_id] = std::move(r);
}

absl::StatusOr<KeptRecord> InMemoryVerifierStore::GetKeptRecord(
    const std::string& tenant, const std::string& attestation_id) {
  absl::MutexLock lock(&mu_);
  const Record* found = nullptr;
  for (const Record& rec : log_) {
    if (rec.event.verdict && rec.tenant == tenant &&
        rec.attestation.attestation_id == attestation_id) {
      found = &rec;
    }
  }
  if (found == nullptr) {
    return absl::NotFoundError("no such attestation record");
  }
  auto it = kept_.find(attestation_id);
  if (it == kept_.end()) {
    KeptRecord out;
    out.tenant = tenant;
    out.agent_id = found->event.agent_id;
    out.row = found->attestation;
    out.failures = found->event.failures;
    out.evidence_status = absl::FailedPreconditionError(
        "the record's evidence is not kept (committed before evidence was "
        "kept, or dropped by the retention)");
    return out;
  }
  KeptRecord out = it->second;
  if (!out.evidence.boot_log_sha256.empty()) {
    auto b = boot_logs_.find({out.agent_id, out.evidence.boot_log_sha256});
    if (b == boot_logs_.end()) {
      out.evidence_status = absl::FailedPreconditionError(
          "the record's boot log is no longer kept");
      return out;
    }
    out.evidence.boot_log = b->second.second;
  }
  auto aik = aiks_.find(out.aik_name);
  if (aik == aiks_.end()) {
    out.evidence_status =
        absl::FailedPreconditionError("the record's AIK is not kept");
    return out;
  }
  out.evidence.aik_public = aik->second;
  const uint64_t want = out.row.ima_next_entry.value_or(0);
  uint64_t next = 0;
  auto segs = ima_segments_.find({out.agent_id, out.reset_count});
  if (want > 0 && segs != ima_segments_.end()) {
    for (const ImaSegment& seg : segs->second) {
      if (seg.first != next || seg.first >= want) continue;
      if (next == 0) {
        out.ima_format = seg.format;
        out.ima_template_hash_alg = seg.hash_alg;
      }
      out.ima_log += seg.data;
      next = seg.next;
    }
  }
  if (next != want) {
    out.evidence_status = absl::FailedPreconditionError(absl::StrCat(
        "the record's IMA entries from ", next, " are no longer kept"));
    return out;
  }
  return out;
}

absl::StatusOr<std::string> InMemoryVerifierStore::RecordAt(
    const std::string& tenant, const std::string& agent_id, absl::Time at) {
  absl::MutexLock lock(&mu_);
  for (auto it = log_.rbegin(); it != log_.rend(); ++it) {
    if (it->event.verdict && it->tenant == tenant &&
        it->event.agent_id == agent_id && it->attestation.at <= at) {
      return it->attestation.attestation_id;
    }
  }
  return absl::NotFoundError("the agent has no attestation record then");
}

// --- Events -----------------------------------------------------------------

absl::StatusOr<EventPosition> InMemoryVerifierStore::EventHorizon() {
  absl::MutexLock lock(&mu_);
  // Every later event has a higher xid (each write bumps it first).
  return EventPosition{xid_, static_cast<int64_t>(log_.size()),
                       kMemoryIncarnation};
}

absl::StatusOr<std::vector<EventRow>> InMemoryVerifierStore::EventsAfter(
    const std::string& tenant, EventPosition after,
    const std::vector<std::string>& agent_ids,
    const std::vector<core::AgentState>& states, bool verdicts, int limit) {
  if (!after.incarnation.empty() && after.incarnation != kMemoryIncarnation) {
    return IncarnationChanged();
  }
  absl::MutexLock lock(&mu_);
  std::vector<EventRow> out;
  for (const Record& r : log_) {
    if (static_cast<int>(out.size()) >= limit) break;
    if (r.tenant != tenant || !Before(after, r.event.position)) continue;
    if ((r.event.verdict || r.event.shadow) && !verdicts) continue;
    if (r.superseded) continue;
    if (!agent_ids.empty() && std::find(agent_ids.begin(), agent_ids.end(),
                                        r.event.agent_id) == agent_ids.end()) {
      continue;
    }
    if (!states.empty() && !r.event.shadow &&
        !Contains(states, r.event.state)) {
      continue;
    }
    out.push_back(r.event);
  }
  return out;
}

// --- Tenant settings --------------------------------------------------------

absl::StatusOr<TenantSettings> InMemoryVerifierStore::GetTenantSettings(
    const std::string& tenant) {
  absl::MutexLock lock(&mu_);
  auto it = tenant_settings_.find(tenant);
  if (it != tenant_settings_.end()) return it->second;
  TenantSettings s;
  s.tenant = tenant;
  return s;
}

absl::Status InMemoryVerifierStore::SetTenantSettings(
    const TenantSettings& settings) {
  absl::MutexLock lock(&mu_);
  tenant_settings_[settings.tenant] = settings;
  return absl::OkStatus();
}

}  // namespace vouch::store
