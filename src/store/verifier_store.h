// File: store/verifier_store.h
// The verifier pool's tables (migrations/0002_verifier.sql): named,
// versioned policies; enrollments with the per-agent pool state (owner,
// epoch fence, lease, IMA replay position, TPM clock, state); attestation
// records; state-change events. Values come from a verifier after it
// validated them; every query is parameterised. Thread-safe: each call
// leases its own connection, except ApplyVerdict, which runs on the
// connection (and inside the transaction) of the group committer.
//
//   PgVerifierStore store(&pool, /*timeout_intervals=*/3);
//   VOUCH_ASSIGN_OR_RETURN(Takeover t, store.TakeOver(tenant, id, me, lease));
//   ... ApplyVerdict(conn, commit) inside a transaction, fenced by t.epoch.
#ifndef VOUCH_STORE_VERIFIER_STORE_H_
#define VOUCH_STORE_VERIFIER_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/pg_pool.h"

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
};

struct Enrollment {
  std::string tenant;
  std::string agent_id;
  std::string runtime_policy;  // Policy names; empty = none.
  std::string boot_policy;
  absl::Duration interval = absl::Seconds(60);
  int hash_alg = 0;  // vouch.v1.HashAlgorithm
  std::string enrolled_by;
};

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
  uint64_t runtime_policy_version = 0;
  // pending | pass | fail | timeout. As read: a pass or pending whose last
  // verdict (or enrollment) is older than timeout_intervals x interval reads
  // as timeout even before a sweeper wrote it, so no stale pass is shown.
  std::string state;
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

// One evaluated evidence to commit (see ApplyVerdict).
struct VerdictCommit {
  std::string tenant;
  std::string agent_id;
  std::string owner;
  int64_t epoch = 0;
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
  uint64_t runtime_policy_version = 0;
};

struct VerdictApplied {
  bool fenced = false;  // Zero rows: another verifier owns the agent now.
  std::string previous_state;
  std::string state;  // The agent's state after (fail is latched).
};

class PgVerifierStore {
 public:
  PgVerifierStore(PgPool* pool, int timeout_intervals)
      : pool_(pool), timeout_intervals_(timeout_intervals) {}

  // Policies. AddPolicy: version 1, or one past the newest removed version;
  // kAlreadyExists when a version that is not removed exists.
  absl::StatusOr<PolicyRow> AddPolicy(const PolicyRow& policy);
  // A new version of an existing policy; kNotFound when none is live,
  // kAborted when expected_version (non-zero) is not the newest.
  absl::StatusOr<PolicyRow> UpdatePolicy(const PolicyRow& policy,
                                         uint64_t expected_version);
  // version 0: the newest version that is not removed.
  absl::StatusOr<PolicyRow> GetPolicy(const std::string& tenant,
                                      const std::string& name,
                                      uint64_t version);
  // The newest live version number and kind; kNotFound when removed/absent.
  absl::StatusOr<std::pair<uint64_t, int>> NewestPolicyVersion(
      const std::string& tenant, const std::string& name);
  // Newest version of each live policy (without content), by name.
  absl::StatusOr<std::vector<PolicyRow>> ListPolicies(const std::string& tenant,
                                                      const std::string& after,
                                                      int limit);
  // kFailedPrecondition while an enrollment references it.
  absl::Status RemovePolicy(const std::string& tenant, const std::string& name);

  // Enrollment. kNotFound: not registered in the tenant or a policy does not
  // exist; kFailedPrecondition: registered but not activated;
  // kAlreadyExists: enrolled.
  absl::StatusOr<AgentRow> Enroll(const Enrollment& enrollment);
  // kNotFound when not enrolled. Deletes the row; the stream's next fenced
  // write finds zero rows and ends.
  absl::Status Unenroll(const std::string& tenant, const std::string& agent_id);
  absl::StatusOr<AgentRow> GetAgent(const std::string& tenant,
                                    const std::string& agent_id);
  // Enrolled agents with agent_id > after, ascending; `states` filters on
  // the state as read (empty: all), `policy` on the runtime or boot policy
  // name (empty: all).
  absl::StatusOr<std::vector<AgentRow>> ListAgents(
      const std::string& tenant, const std::string& after,
      const std::vector<std::string>& states, int limit,
      const std::string& policy = "");

  // Pool ownership. Bumps epoch and makes `owner` the holder (a
  // reconnecting agent is taken over at once). kFailedPrecondition when the
  // agent is not registered and active in the tenant or not enrolled.
  absl::StatusOr<Takeover> TakeOver(const std::string& tenant,
                                    const std::string& agent_id,
                                    const std::string& owner,
                                    const std::string& agent_version,
                                    absl::Duration lease);
  // Renews the lease while epoch is still ours; false when fenced out.
  absl::StatusOr<bool> RenewLease(const std::string& agent_id, int64_t epoch,
                                  absl::Duration lease);
  struct LeaseRenewal {
    std::string agent_id;
    int64_t epoch = 0;
    absl::Duration lease;
    bool renew = true;  // false: only check that the epoch is still ours.
  };
  // Checks many agents' epochs in one statement, renewing the leases of
  // those marked `renew` (only those rows are written); element i is false
  // when renewals[i] was fenced out (taken over or unenrolled).
  absl::StatusOr<std::vector<bool>> RenewLeases(
      const std::vector<LeaseRenewal>& renewals);
  // Whether the agent is enrolled (has an agent_state row).
  absl::StatusOr<bool> Enrolled(const std::string& agent_id);
  // The stream ended: marks the agent disconnected if epoch is still ours.
  absl::Status Release(const std::string& agent_id, int64_t epoch);

  // Marks pass/pending agents whose last verdict (or enrollment) is older
  // than timeout_intervals x interval as timeout, with an event each. Safe
  // to run in every verifier at once (row locks; the WHERE is rechecked).
  absl::StatusOr<int64_t> SweepTimeouts();

  // Watch: events in commit order. A position is (xid, seq) of the last
  // event delivered. Only events of transactions older than every running
  // one are returned (xid < the snapshot's xmin), so a later read never
  // finds an event before a position already passed.
  struct EventPosition {
    uint64_t xid = 0;
    int64_t seq = 0;
  };
  struct EventRow {
    EventPosition position;
    bool verdict = false;  // An attestation record, not a state change.
    std::string verifier;  // For verdicts.
    std::string agent_id;
    std::string previous_state;
    std::string state;
    std::string cause;
    std::string attestation_id;
    std::string failures;  // Of the verdict, when there is one.
    absl::Time at;
  };
  // Where "now" is: every event committed later comes after it.
  absl::StatusOr<EventPosition> EventHorizon();
  // Events of `tenant` after `after`, final ones only, oldest first; empty
  // `agent_ids` / `states`: no filter.
  // `verdicts`: attestation records too, interleaved in the same order.
  absl::StatusOr<std::vector<EventRow>> EventsAfter(
      const std::string& tenant, EventPosition after,
      const std::vector<std::string>& agent_ids,
      const std::vector<std::string>& states, bool verdicts, int limit);

  // Attestation records of one agent, newest first: (id, state, verifier,
  // epoch, ima_from, ima_next_entry, entries received).
  struct AttestationRow {
    std::string attestation_id;
    std::string state;
    std::string verifier;
    int64_t epoch = 0;
    std::optional<uint64_t> ima_from;
    std::optional<uint64_t> ima_next_entry;
    uint64_t ima_entries_received = 0;
    absl::Time at;
  };
  absl::StatusOr<std::vector<AttestationRow>> History(
      const std::string& tenant, const std::string& agent_id, int limit);

  // Writes one verdict on `db`, which must be inside a transaction: the
  // agent's state, replay position, clock and lease (fenced with epoch), the
  // attestation record and, when the state changed, an event — one
  // statement, so a batch of verdicts costs one round trip each and one
  // commit for all.
  static absl::StatusOr<VerdictApplied> ApplyVerdict(PgConnection& db,
                                                     const VerdictCommit& c);
  // The same as a statement to pipeline, and the reading of its rows.
  static PgStatement VerdictStatement(const VerdictCommit& c);
  static VerdictApplied VerdictResult(const PgRows& rows);

 private:
  PgPool* pool_;
  int timeout_intervals_;
};

}  // namespace vouch::store

#endif  // VOUCH_STORE_VERIFIER_STORE_H_
