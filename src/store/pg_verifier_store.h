// File: store/pg_verifier_store.h
// The verifier pool's storage in PostgreSQL (migrations/0002..0004): the
// three interfaces of verifier_store.h over the policies, agent_state,
// attestations and agent_events tables. Every query is parameterised; each
// call leases its own connection from the pool. Verdicts commit in one
// transaction and one round trip per batch (libpq pipeline mode). Event
// positions are (xid, seq): only events of transactions older than every
// running one are returned, so a later read never finds an event before a
// position already passed. Thread-safe.
//
//   PgVerifierStore store(&pool, /*timeout_intervals=*/3);
//   VOUCH_ASSIGN_OR_RETURN(Takeover t, store.TakeOver(tenant, id, me, v, l));
//   std::vector<absl::StatusOr<VerdictApplied>> r = store.CommitVerdicts(b);
#ifndef VOUCH_STORE_PG_VERIFIER_STORE_H_
#define VOUCH_STORE_PG_VERIFIER_STORE_H_

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "store/pg_pool.h"
#include "store/pg_translog.h"
#include "store/verifier_store.h"

namespace vouch::store {

// Unenrolls agent_id in `c`'s transaction: deletes its agent_state row and
// adds the `unenrolled` event Watch sees; false when it was not enrolled.
// AgentStore::Unenroll, and the registrar's prune rule, in theirs.
absl::StatusOr<bool> UnenrollIn(PgConnection& c, const std::string& tenant,
                                const std::string& agent_id);

class PgVerifierStore final : public PolicyStore,
                              public AgentStore,
                              public EventStore,
                              public TenantSettingsStore,
                              public FleetStore {
 public:
  PgVerifierStore(PgPool* pool, int timeout_intervals)
      : pool_(pool), timeout_intervals_(timeout_intervals) {}

  // Test-only fault injection: each verdict batch sleeps this long inside
  // its transaction, after its statements and before COMMIT (so a test can
  // kill the verifier while a commit is open). Call before serving.
  void SetCommitDelayForTests(absl::Duration delay) { commit_delay_ = delay; }
  // Each committed verdict also queues its transparency-log leaf
  // (TranslogLeafForAttestation) in the same transaction, and, with
  // `committed`, hands the leaf's hash there once the transaction has
  // committed (the watchdog checks it reaches the tree). Call before serving.
  void SetTranslog(bool on, CommittedLeaves* committed = nullptr) {
    translog_ = on;
    committed_ = committed;
  }

  // PolicyStore.
  absl::StatusOr<PolicyRow> AddPolicy(const PolicyRow& policy) override;
  absl::StatusOr<PolicyRow> UpdatePolicy(const PolicyRow& policy,
                                         uint64_t expected_version) override;
  absl::StatusOr<PolicyRow> GetPolicy(const std::string& tenant,
                                      const std::string& name,
                                      uint64_t version) override;
  absl::StatusOr<std::pair<uint64_t, int>> NewestPolicyVersion(
      const std::string& tenant, const std::string& name) override;
  absl::StatusOr<std::vector<PolicyRow>> ListPolicies(const std::string& tenant,
                                                      const std::string& after,
                                                      int limit) override;
  absl::StatusOr<std::vector<PolicyRow>> PolicyHistory(
      const std::string& tenant, const std::string& name, int limit) override;
  absl::Status RemovePolicy(const std::string& tenant,
                            const std::string& name) override;

  absl::StatusOr<RolloutRow> SetRollout(const RolloutRow& rollout) override;
  absl::StatusOr<std::vector<RolloutRow>> ListRollouts(
      const std::string& tenant, const std::string& policy) override;
  absl::Status DeleteRollout(const std::string& tenant,
                             const std::string& policy,
                             RolloutKind kind) override;
  absl::StatusOr<std::vector<ShadowResultRow>> ShadowReport(
      const std::string& tenant, const std::string& policy) override;

  // AgentStore.
  absl::StatusOr<AgentRow> Enroll(const Enrollment& enrollment) override;
  absl::Status Unenroll(const std::string& tenant,
                        const std::string& agent_id) override;
  absl::StatusOr<AgentRow> GetAgent(const std::string& tenant,
                                    const std::string& agent_id) override;
  absl::StatusOr<std::vector<AgentRow>> ListAgents(
      const std::string& tenant, const std::string& after,
      const std::vector<core::AgentState>& states, int limit,
      const std::string& policy) override;
  // FleetStore.
  absl::StatusOr<std::vector<AgentRow>> ListAgentsMatching(
      const std::string& tenant, const std::string& after,
      const std::vector<core::AgentState>& states, int limit,
      const std::string& policy, const core::Selector& selector) override;
  absl::StatusOr<std::vector<AgentRow>> UpdateEnrollments(
      const EnrollmentUpdate& update) override;
  absl::StatusOr<Takeover> TakeOver(const std::string& tenant,
                                    const std::string& agent_id,
                                    const std::string& owner,
                                    const std::string& agent_version,
                                    absl::Duration lease) override;
  absl::StatusOr<std::vector<bool>> RenewLeases(
      const std::vector<LeaseRenewal>& renewals) override;
  absl::StatusOr<bool> Enrolled(const std::string& agent_id) override;
  absl::Status Release(const std::string& agent_id, int64_t epoch) override;
  absl::StatusOr<int64_t> SweepTimeouts() override;
  std::vector<absl::StatusOr<VerdictApplied>> CommitVerdicts(
      const std::vector<const VerdictCommit*>& commits) override;
  absl::StatusOr<std::vector<HistoryRow>> QueryHistory(
      const HistoryQuery& q) override;
  absl::StatusOr<KeptRecord> GetKeptRecord(
      const std::string& tenant, const std::string& attestation_id) override;
  absl::StatusOr<std::string> RecordAt(const std::string& tenant,
                                       const std::string& agent_id,
                                       absl::Time at) override;

  // EventStore.
  absl::StatusOr<EventPosition> EventHorizon() override;
  absl::StatusOr<std::vector<EventRow>> EventsAfter(
      const std::string& tenant, EventPosition after,
      const std::vector<std::string>& agent_ids,
      const std::vector<core::AgentState>& states, bool verdicts,
      int limit) override;

  // TenantSettingsStore.
  absl::StatusOr<TenantSettings> GetTenantSettings(
      const std::string& tenant) override;
  absl::Status SetTenantSettings(const TenantSettings& settings) override;

 private:
  // After a verdict's transaction: notes its AIK as kept (when it wrote
  // kept evidence) and hands its log leaf to committed_ (when it has one).
  void Committed(const VerdictCommit& commit, const PgStatement& verdict,
                 const absl::StatusOr<VerdictApplied>& result);
  // Whether this process committed a record that kept this AIK (so a
  // verdict's statement can leave out the kept_aiks insert). A database
  // restored behind a running verifier could lack such a row: its records
  // then read "the record's AIK is not kept" (FAILED_PRECONDITION), never
  // as a pass; a restore starts the servers again anyway (operations.md).
  bool AikKept(const std::string& aik_name);

  PgPool* pool_;
  int timeout_intervals_;
  absl::Duration commit_delay_ = absl::ZeroDuration();
  bool translog_ = false;
  CommittedLeaves* committed_ = nullptr;
  // AIK names known to be in kept_aiks; forgotten all at once at the bound.
  static constexpr size_t kKeptAiksKnown = 1 << 16;
  absl::Mutex aiks_mu_;
  absl::flat_hash_set<std::string> kept_aiks_ ABSL_GUARDED_BY(aiks_mu_);
};

}  // namespace vouch::store

#endif  // VOUCH_STORE_PG_VERIFIER_STORE_H_
