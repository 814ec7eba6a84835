// File: store/verifier_store.h
// The verifier pool's storage, as three small interfaces and the plain
// values they pass: named, versioned policies (PolicyStore); enrollments
// with the per-agent pool state — owner, epoch fence, lease, IMA replay
// position, TPM clock, state — and the verdicts committed on them
// (AgentStore); state-change events and attestation records in commit
// order (EventStore). PgVerifierStore (pg_verifier_store.h) keeps them in
// PostgreSQL; InMemoryVerifierStore (in_memory_verifier_store.h) is its
// twin for unit tests, and one contract test suite runs against both.
// Values come from a verifier after it validated them. Implementations are
// thread-safe. No libpq here: the verifier's pure session uses these types.
//
//   AgentStore* agents = &pg_store;
//   VOUCH_ASSIGN_OR_RETURN(Takeover t, agents->TakeOver(tenant, id, me, v, l));
//   auto applied = agents->CommitVerdicts({&commit});  // fenced by t.epoch
#ifndef VOUCH_STORE_VERIFIER_STORE_H_
#define VOUCH_STORE_VERIFIER_STORE_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/agent_state.h"
#include "core/label_selector.h"

namespace vouch::store {

struct PolicyRow {
  std::string tenant;
  std::string name;
  uint64_t version = 0;
  int kind = 0;  // vouch.v1.PolicyKind
  std::string content;
  std::string sha256;
  std::string description;
  std::string created_by;
  absl::Time created_at;
  bool removed = false;
  // Provenance, kept with the version: the document's release number, where
  // it came from ("url:<address>", "import", "" for add/update), SHA-256 of
  // the document as received, the id of the key that verified it.
  int64_t release = 0;
  std::string origin;
  std::string source_sha256;
  std::string signer_key_id;
};

struct Enrollment {
  std::string tenant;
  std::string agent_id;
  std::string runtime_policy;  // Policy names; empty = none.
  std::string boot_policy;
  std::string pcr_policy;
  absl::Duration interval = absl::Seconds(60);
  int hash_alg = 0;  // vouch.v1.HashAlgorithm
  std::string enrolled_by;
};

// An enrollment's policy slots in order, each with the vouch.v1.PolicyKind
// a policy in it must have.
inline std::array<std::pair<int, const std::string*>, 3> EnrollmentSlots(
    const Enrollment& e) {
  return {{{1, &e.runtime_policy}, {2, &e.boot_policy}, {3, &e.pcr_policy}}};
}

// kInvalidArgument when policy `name` (of `kind`) sits in the slot for
// `slot_kind`: a boot policy named as the runtime policy, say.
inline absl::Status CheckSlotKind(int slot_kind, const std::string& name,
                                  int kind) {
  if (kind == slot_kind) return absl::OkStatus();
  static constexpr const char* kSlots[] = {"policy", "runtime_policy",
                                           "boot_policy", "pcr_policy"};
  static constexpr const char* kKinds[] = {"unspecified", "runtime", "boot",
                                           "PCR"};
  return absl::InvalidArgumentError(absl::StrCat(
      kSlots[slot_kind >= 1 && slot_kind <= 3 ? slot_kind : 0], ": ", name,
      " is a policy of kind ", kind >= 0 && kind <= 3 ? kKinds[kind] : "?"));
}

struct AgentRow {
  Enrollment enrollment;
  absl::Time enrolled_at;
  std::string owner;
  int64_t epoch = 0;
  bool connected = false;  // A verifier holds the stream and its lease.
  std::string agent_version;
  bool clock_known = false;
  uint32_t reset_count = 0;
  uint32_t restart_count = 0;
  uint64_t clock = 0;
  uint64_t ima_next_entry = 0;
  std::string pcr10_sha1;    // 20 bytes
  std::string pcr10_sha256;  // 32 bytes
  // Keys learned from the boot's keyring entries
  // (core::ima::EncodeLearnedKeys; opaque to the store).
  std::string ima_learned_keys;
  uint64_t runtime_policy_version = 0;
  // The boot PCRs kept from the boot log last accepted in this boot
  // (core::attest::EncodeBootPcrs; empty: none) and the boot policy version
  // that accepted it. Opaque to the store.
  std::string boot_pcrs;
  uint64_t boot_policy_version = 0;
  // pending | pass | fail | timeout. As read: a pass or pending whose last
  // verdict (or enrollment) is older than timeout_intervals x interval reads
  // as timeout even before a sweeper wrote it, so no stale pass is shown.
  core::AgentState state = v1::ATTESTATION_STATE_PENDING;
  absl::Time state_since;
  std::optional<absl::Time> last_verdict_at;
  std::string last_attestation_id;
  std::string failures;  // Opaque to the store (the verifier's encoding).
};

// What a verifier learns when it takes an agent's stream.
struct Takeover {
  AgentRow agent;          // agent.epoch is the fence for later writes.
  std::string aik_public;  // TPM2B_PUBLIC of the registrar's active AIK.
  std::string aik_name;
};

// What an attestation record keeps to be re-verified without its agent
// (migrations/0010). Opaque bytes to the store, except as noted.
struct KeptEvidence {
  // A serialized vouch.v1.Evidence holding only quote, signature and
  // pcr_values, as received.
  std::string quote;
  std::string aik_public;  // TPM2B_PUBLIC whose TPM name is aik_name.
  // The IMA entries this record accepted, [ima_first, ima_next) of the
  // boot numbered by the commit's reset_count; none when ima_data is empty.
  uint64_t ima_first = 0;
  int ima_format = 0;             // vouch.v1.ImaLogFormat
  int ima_template_hash_alg = 0;  // vouch.v1.HashAlgorithm
  std::string ima_data;
  // The boot log that came with this evidence; empty: the newest one kept
  // for the boot (if any) is the record's.
  std::string boot_log;
  std::string boot_log_sha256;
  // Policies judged against: names ("" none) and versions.
  std::string runtime_policy;
  uint64_t runtime_policy_version = 0;
  std::string boot_policy;
  uint64_t boot_policy_version = 0;
  std::string pcr_policy;
  uint64_t pcr_policy_version = 0;
};

// A roll-out of a runtime policy (docs/ima.md "Shadow versions and update
// windows"): a candidate runtime policy of the same tenant, judged next to
// the enrolled (active) one for some of its agents, at its newest version.
enum class RolloutKind {
  kShadow = 1,  // Evaluated on every Evidence; would-be failures reported.
  kWindow = 2,  // Inside [not_before, not_after): accepts what active fails.
};
absl::string_view RolloutKindName(RolloutKind kind);  // "shadow", "window"

// `ids` sorted, each once: how a roll-out (and a fleet update) keeps its
// agent ids.
std::vector<std::string> SortedUnique(std::vector<std::string> ids);

struct RolloutRow {
  std::string tenant;
  std::string policy;  // The enrolled runtime policy's name.
  RolloutKind kind = RolloutKind::kShadow;
  std::string candidate;  // Another live runtime policy of the tenant.
  // Every agent enrolled with `policy`, or these (sorted, unique); a label
  // selector is resolved to ids when the roll-out is set and kept, as given,
  // in `selector` for display.
  bool all_agents = true;
  std::vector<std::string> agent_ids;
  std::string selector;
  // A window's time range; a shadow's is unbounded.
  absl::Time not_before = absl::InfinitePast();
  absl::Time not_after = absl::InfiniteFuture();
  absl::Time created_at;
  std::string created_by;
  // Whether it applies to `agent_id` at `now`.
  bool Applies(const std::string& agent_id, absl::Time now) const;
};

// A shadow's judgement of one Evidence, stored with the verdict (same
// transaction, same fence) and summed per agent while the candidate and
// its version stay the same.
struct ShadowCommit {
  std::string policy;
  std::string candidate;
  uint64_t candidate_version = 0;
  uint64_t entries_checked = 0;
  uint64_t failure_count = 0;
  std::string failures;  // As VerdictCommit::failures; "" for none.
};

// One agent's shadow report: rounds, entries and would-be failures since
// the candidate version it names was first judged; `failures` are the
// listed ones of the newest round that had any.
struct ShadowResultRow {
  std::string agent_id;
  std::string candidate;
  uint64_t candidate_version = 0;
  uint64_t rounds = 0;
  uint64_t entries_checked = 0;
  uint64_t failure_count = 0;
  std::string failures;
  absl::Time updated_at;
};

// One evaluated evidence to commit (see ApplyVerdict).
struct VerdictCommit {
  std::string tenant;
  std::string agent_id;
  std::string owner;
  int64_t epoch = 0;
  // Name of the AIK the stream verifies with (Takeover::aik_name): the
  // commit is fenced unless it is still the registration's active AIK.
  std::string aik_name;
  std::string attestation_id;
  std::string nonce;
  bool passed = false;
  std::string failures;
  std::string evidence_sha256;
  absl::Duration lease = absl::Minutes(3);
  // TPMS_CLOCK_INFO of the quote; set only when its signature verified.
  std::optional<uint32_t> reset_count;
  uint32_t restart_count = 0;
  uint64_t clock = 0;
  // The IMA replay position after this evidence; unset: unchanged.
  std::optional<uint64_t> ima_from;
  std::optional<uint64_t> ima_next_entry;
  uint64_t ima_entries_received = 0;
  std::string pcr10_sha1;
  std::string pcr10_sha256;
  std::string ima_learned_keys;  // With the position; see AgentRow.
  uint64_t runtime_policy_version = 0;
  // The boot policy version applied (0: none), recorded with the
  // attestation, and whether a boot log was evaluated.
  uint64_t boot_policy_version = 0;
  bool boot_log_evaluated = false;
  // Set: replaces the agent's kept boot PCRs ("" clears them) and its
  // boot_policy_version. Unset: both unchanged.
  std::optional<std::string> boot_pcrs;
  // Kept with the record (same transaction) when set and the quote's clock
  // is known (reset_count set).
  std::optional<KeptEvidence> kept;
  // The shadow version's judgement, when one applied.
  std::optional<ShadowCommit> shadow;
};

struct VerdictApplied {
  // Zero rows: another verifier owns the agent now, it was unenrolled, or
  // its registration no longer has the stream's AIK (deleted, or another
  // AIK activated).
  bool fenced = false;
  core::AgentState previous_state = v1::ATTESTATION_STATE_UNSPECIFIED;
  // The agent's state after (fail is latched).
  core::AgentState state = v1::ATTESTATION_STATE_UNSPECIFIED;
};

struct LeaseRenewal {
  std::string agent_id;
  int64_t epoch = 0;
  absl::Duration lease;
  bool renew = true;  // false: only check that the epoch is still ours.
  // The stream's AIK: the lease holds only while it is the registration's
  // active AIK (as VerdictCommit::aik_name).
  std::string aik_name;
};

// Watch: events in commit order. A position orders every committed event;
// in PostgreSQL it is (xid, seq) of the last event delivered.
struct EventPosition {
  uint64_t xid = 0;
  int64_t seq = 0;
  // The database incarnation the position belongs to (EventsAfter); empty
  // is not checked (positions from before incarnations were recorded).
  std::string incarnation;
};
struct EventRow {
  EventPosition position;
  bool verdict = false;  // An attestation record, not a state change.
  std::string verifier;  // For verdicts.
  std::string agent_id;
  core::AgentState previous_state = v1::ATTESTATION_STATE_UNSPECIFIED;
  core::AgentState state = v1::ATTESTATION_STATE_UNSPECIFIED;
  std::string cause;  // verdict | timeout (state changes)
  std::string attestation_id;
  std::string failures;  // Of the verdict, when there is one.
  absl::Time at;
  // A shadow version's failing judgement (EventsAfter with `verdicts`):
  // the agent's newest per policy (a newer one replaces one not yet read);
  // `failures` are its listed would-be failures, `state` is unspecified.
  bool shadow = false;
  std::string policy;
  std::string candidate;
  uint64_t candidate_version = 0;
  uint64_t shadow_failure_count = 0;  // Of this candidate version so far.
};

// An attestation record of one agent.
struct AttestationRow {
  std::string attestation_id;
  core::AgentState state = v1::ATTESTATION_STATE_UNSPECIFIED;  // pass|fail
  std::string verifier;
  int64_t epoch = 0;
  std::optional<uint64_t> ima_from;
  std::optional<uint64_t> ima_next_entry;
  uint64_t ima_entries_received = 0;
  uint64_t boot_policy_version = 0;  // 0: no boot policy.
  bool boot_log_evaluated = false;
  absl::Time at;
};

// One page of attestation history (AgentStore::QueryHistory): the
// tenant's records, newest first (at descending, then attestation_id
// descending), filtered; the caller has validated it.
struct HistoryQuery {
  std::string tenant;
  std::string agent_id;                  // Empty: every agent.
  std::optional<absl::Time> from;        // at >= from.
  std::optional<absl::Time> to;          // at < to.
  std::vector<core::AgentState> states;  // pass/fail; empty: both.
  // Keyset: only records strictly after (after_at, after_id) in that order.
  std::optional<absl::Time> after_at;
  std::string after_id;
  int limit = 100;
};

// A record as QueryHistory returns it.
struct HistoryRow {
  std::string agent_id;
  AttestationRow row;
  std::string failures;  // The verifier's encoding, as committed.
};

// An attestation record with what it kept (AgentStore::GetKeptRecord).
struct KeptRecord {
  std::string tenant;
  std::string agent_id;
  AttestationRow row;
  std::string failures;  // The verifier's encoding, as committed.
  std::string nonce;
  // SHA-256 of the Evidence the verdict judged (the digest the record's
  // transparency-log leaf carries).
  std::string evidence_sha256;
  std::string aik_name;
  uint32_t reset_count = 0;
  // OK, or kFailedPrecondition naming what is no longer kept (committed
  // before evidence was kept; a part dropped by the retention): then only
  // the fields above are set.
  absl::Status evidence_status;
  KeptEvidence evidence;  // ima_* fields unused: see ima_log.
  // The boot's IMA entries from entry 0 to the record's ima_next_entry
  // (format and template hash algorithm of the boot's first segment).
  int ima_format = 0;
  int ima_template_hash_alg = 0;
  std::string ima_log;
  // Registration of the agent now (EK certificate, DER; intermediates as
  // stored: comma-separated hex DER); empty when it was deleted.
  std::string ek_public;  // TPM2B_PUBLIC
  std::string ek_certificate;
  std::string ek_intermediates;
};

class PolicyStore {
 public:
  virtual ~PolicyStore() = default;
  // AddPolicy: version 1, or one past the newest removed version;
  // kAlreadyExists when a version that is not removed exists.
  virtual absl::StatusOr<PolicyRow> AddPolicy(const PolicyRow& policy) = 0;
  // A new version of an existing policy; kNotFound when none is live,
  // kAborted when expected_version (non-zero) is not the newest.
  virtual absl::StatusOr<PolicyRow> UpdatePolicy(const PolicyRow& policy,
                                                 uint64_t expected_version) = 0;
  // version 0: the newest version that is not removed. kNotFound otherwise.
  virtual absl::StatusOr<PolicyRow> GetPolicy(const std::string& tenant,
                                              const std::string& name,
                                              uint64_t version) = 0;
  // The newest live version number and kind; kNotFound when removed/absent.
  virtual absl::StatusOr<std::pair<uint64_t, int>> NewestPolicyVersion(
      const std::string& tenant, const std::string& name) = 0;
  // Newest version of each live policy (without content), names > after,
  // ascending.
  virtual absl::StatusOr<std::vector<PolicyRow>> ListPolicies(
      const std::string& tenant, const std::string& after, int limit) = 0;
  // Every version of one policy (removed ones too), newest first, at most
  // `limit`, without content; kNotFound when the name never existed.
  virtual absl::StatusOr<std::vector<PolicyRow>> PolicyHistory(
      const std::string& tenant, const std::string& name, int limit) = 0;
  // kNotFound when absent; kFailedPrecondition while an enrollment
  // references it.
  virtual absl::Status RemovePolicy(const std::string& tenant,
                                    const std::string& name) = 0;

  // Roll-outs. SetRollout replaces the (policy, kind) roll-out: kNotFound
  // when policy or candidate is not a live policy, kInvalidArgument when
  // either is not a runtime policy or they are the same. Setting or
  // deleting a shadow clears its report; RemovePolicy deletes the
  // roll-outs that name the policy on either side.
  virtual absl::StatusOr<RolloutRow> SetRollout(const RolloutRow& rollout) = 0;
  // policy "": every roll-out of the tenant; ordered by policy, kind.
  virtual absl::StatusOr<std::vector<RolloutRow>> ListRollouts(
      const std::string& tenant, const std::string& policy) = 0;
  // kNotFound when there is none.
  virtual absl::Status DeleteRollout(const std::string& tenant,
                                     const std::string& policy,
                                     RolloutKind kind) = 0;
  // The shadow report of `policy`, by agent_id.
  virtual absl::StatusOr<std::vector<ShadowResultRow>> ShadowReport(
      const std::string& tenant, const std::string& policy) = 0;
};

class AgentStore {
 public:
  virtual ~AgentStore() = default;
  // kNotFound: not registered in the tenant or a policy does not exist;
  // kFailedPrecondition: registered but not activated; kAlreadyExists:
  // enrolled.
  virtual absl::StatusOr<AgentRow> Enroll(const Enrollment& enrollment) = 0;
  // kNotFound when not enrolled. Deletes the row; the stream's next fenced
  // write finds zero rows and ends.
  virtual absl::Status Unenroll(const std::string& tenant,
                                const std::string& agent_id) = 0;
  virtual absl::StatusOr<AgentRow> GetAgent(const std::string& tenant,
                                            const std::string& agent_id) = 0;
  // Enrolled agents with agent_id > after, ascending; `states` filters on
  // the state as read (empty: all), `policy` on the runtime or boot policy
  // name (empty: all).
  virtual absl::StatusOr<std::vector<AgentRow>> ListAgents(
      const std::string& tenant, const std::string& after,
      const std::vector<core::AgentState>& states, int limit,
      const std::string& policy) = 0;

  // Pool ownership. Bumps epoch and makes `owner` the holder (a
  // reconnecting agent is taken over at once). kFailedPrecondition when the
  // agent is not registered and active in the tenant or not enrolled.
  virtual absl::StatusOr<Takeover> TakeOver(const std::string& tenant,
                                            const std::string& agent_id,
                                            const std::string& owner,
                                            const std::string& agent_version,
                                            absl::Duration lease) = 0;
  // Checks many agents' epochs at once, renewing the leases of those
  // marked `renew`; element i is false when renewals[i] was fenced out
  // (taken over, unenrolled, or its AIK is no longer the registration's
  // active one).
  virtual absl::StatusOr<std::vector<bool>> RenewLeases(
      const std::vector<LeaseRenewal>& renewals) = 0;
  // Whether the agent is enrolled.
  virtual absl::StatusOr<bool> Enrolled(const std::string& agent_id) = 0;
  // The stream ended: marks the agent disconnected if epoch is still ours.
  virtual absl::Status Release(const std::string& agent_id, int64_t epoch) = 0;
  // Marks pass/pending agents whose last verdict (or enrollment) is older
  // than timeout_intervals x interval as timeout, with an event each. Safe
  // to run in every verifier at once. Returns how many it marked.
  virtual absl::StatusOr<int64_t> SweepTimeouts() = 0;

  // Commits verdicts together (one transaction where the store has them):
  // each one, fenced by its epoch and by its AIK being the registration's
  // active one, writes the agent's state, replay
  // position, clock and lease, the attestation record and, when the state
  // changed, an event. Element i is commits[i]'s result, returned only
  // after it is durable; a commit that breaks the batch does not fail the
  // others (they are retried one by one).
  virtual std::vector<absl::StatusOr<VerdictApplied>> CommitVerdicts(
      const std::vector<const VerdictCommit*>& commits) = 0;

  // A page of attestation records (see HistoryQuery), at most q.limit.
  virtual absl::StatusOr<std::vector<HistoryRow>> QueryHistory(
      const HistoryQuery& q) = 0;
  // The newest `limit` records of one agent, newest first.
  absl::StatusOr<std::vector<AttestationRow>> History(
      const std::string& tenant, const std::string& agent_id, int limit) {
    HistoryQuery q;
    q.tenant = tenant;
    q.agent_id = agent_id;
    q.limit = limit;
    absl::StatusOr<std::vector<HistoryRow>> rows = QueryHistory(q);
    if (!rows.ok()) return rows.status();
    std::vector<AttestationRow> out;
    for (HistoryRow& r : *rows) out.push_back(std::move(r.row));
    return out;
  }

  // A record with its kept evidence (KeptRecord::evidence_status says
  // whether it is whole). kNotFound: no such record in the tenant.
  virtual absl::StatusOr<KeptRecord> GetKeptRecord(
      const std::string& tenant, const std::string& attestation_id) = 0;
  // The id of the agent's record in force at `at`: the newest committed at
  // or before it. kNotFound when there is none.
  virtual absl::StatusOr<std::string> RecordAt(const std::string& tenant,
                                               const std::string& agent_id,
                                               absl::Time at) = 0;
};

// A change of many agents' enrollments (FleetStore::UpdateEnrollments).
struct EnrollmentUpdate {
  std::string tenant;
  // Exactly one of: the agents by id, or those whose labels match.
  std::vector<std::string> agent_ids;
  core::Selector selector;
  // Empty: unchanged. clear_boot_policy removes the boot policy.
  std::string runtime_policy;
  std::string boot_policy;
  bool clear_boot_policy = false;
  std::optional<absl::Duration> interval;
  std::string updated_by;
};

// Fleet operations over the agents' labels. Labels are the registrar's
// (registrations: the agent's own and the operator's, the operator's
// winning on a key), so only the store that shares the registrar's database
// (PgVerifierStore) serves them; the in-memory twin holds no registrations
// with labels.
class FleetStore {
 public:
  virtual ~FleetStore() = default;
  // As AgentStore::ListAgents, of the agents whose labels match `selector`.
  virtual absl::StatusOr<std::vector<AgentRow>> ListAgentsMatching(
      const std::string& tenant, const std::string& after,
      const std::vector<core::AgentState>& states, int limit,
      const std::string& policy, const core::Selector& selector) = 0;
  // One transaction, all or nothing: the named policies must exist
  // (kNotFound), every agent_id must be enrolled in the tenant (kNotFound
  // naming the first that is not). Each agent's epoch is bumped (its
  // running stream is fenced out and the agent is taken over again with the
  // new enrollment) and its state becomes pending with an "enrolled" event,
  // as after enrolling again. Returns the agents after
  // the change, by agent_id (none when the selector matched none).
  virtual absl::StatusOr<std::vector<AgentRow>> UpdateEnrollments(
      const EnrollmentUpdate& update) = 0;
};

// EventsAfter's answer to a position from another database incarnation.
inline absl::Status IncarnationChanged() {
  return absl::OutOfRangeError(
      "resume_token is from another database incarnation (failover or "
      "restore): re-read state with ListAgents, then Watch without a token");
}

class EventStore {
 public:
  virtual ~EventStore() = default;
  // Where "now" is: every event committed later comes after it.
  virtual absl::StatusOr<EventPosition> EventHorizon() = 0;
  // Events of `tenant` after `after`, final ones only (never one that a
  // later read could find before a position already passed), oldest first;
  // empty `agent_ids` / `states`: no filter. `verdicts`: attestation
  // records and shadow judgements (EventRow::shadow; never filtered by
  // `states`) too, interleaved in the same order. kOutOfRange when `after`
  // names another database incarnation (a promoted standby, a restore, a
  // re-created database): its events may be missing or numbered anew; and
  // when events after `after` have been dropped by the retention.
  virtual absl::StatusOr<std::vector<EventRow>> EventsAfter(
      const std::string& tenant, EventPosition after,
      const std::vector<std::string>& agent_ids,
      const std::vector<core::AgentState>& states, bool verdicts,
      int limit) = 0;
};

// Settings of one tenant (tenant_settings, migration 0014).
struct TenantSettings {
  std::string tenant;
  // Agents of the tenant are told of each other's failures (action
  // notices); off: each hears only of its own.
  bool peer_notices = false;
};

class TenantSettingsStore {
 public:
  virtual ~TenantSettingsStore() = default;
  // A tenant never set has the defaults.
  virtual absl::StatusOr<TenantSettings> GetTenantSettings(
      const std::string& tenant) = 0;
  // Creates or replaces the tenant's settings.
  virtual absl::Status SetTenantSettings(const TenantSettings& settings) = 0;
};

}  // namespace vouch::store

#endif  // VOUCH_STORE_VERIFIER_STORE_H_
