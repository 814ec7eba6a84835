// File: store/in_memory_verifier_store.h
// The in-memory twin of PgVerifierStore for unit tests of pure logic (the
// attestation session, the Admin API's rules): the same three interfaces
// with the same rules — epoch fence, latched fail, the state as read (a
// stale pass reads as timeout), events in commit order — held in maps
// under one mutex. Registrations, which the registrar owns, are set with
// SetRegistration. Time comes from a clock the test controls. It passes the
// same contract tests as the PostgreSQL store (tests/store). Thread-safe.
//
//   absl::Time now = absl::FromUnixSeconds(1000);
//   InMemoryVerifierStore store(3, [&] { return now; });
//   store.SetRegistration("t", "a1", aik_public, aik_name);
#ifndef VOUCH_STORE_IN_MEMORY_VERIFIER_STORE_H_
#define VOUCH_STORE_IN_MEMORY_VERIFIER_STORE_H_

#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "store/verifier_store.h"

namespace vouch::store {

class InMemoryVerifierStore final : public PolicyStore,
                                    public AgentStore,
                                    public EventStore,
                                    public TenantSettingsStore {
 public:
  using Clock = std::function<absl::Time()>;
  InMemoryVerifierStore(int timeout_intervals, Clock clock);

  // The registrar's side: an activated registration (active false: it has
  // registered but not activated). Setting another AIK is a re-activation:
  // the streams of the old one are fenced.
  void SetRegistration(const std::string& tenant, const std::string& agent_id,
                       const std::string& aik_public,
                       const std::string& aik_name, bool active = true);
  // The registrar deleted the registration.
  void RemoveRegistration(const std::string& tenant,
                          const std::string& agent_id);
  // The next `n` CommitVerdicts calls fail with kUnavailable and commit
  // nothing (a database outage).
  void FailCommits(int n);
  // Verdict batches committed so far (what group commit formed).
  std::vector<size_t> batch_sizes() const;
  // Test hooks: moves the agent's enrollment and last verdict `d` into the
  // past; the end of its lease (InfinitePast when not enrolled).
  void Backdate(const std::string& agent_id, absl::Duration d);
  absl::Time lease_until(const std::string& agent_id) const;
  // Test hook: the record was committed at `at` (what a clock the test
  // cannot move, PostgreSQL's, would have stamped).
  void SetRecordTime(const std::string& attestation_id, absl::Time at);

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
  struct Registration {
    std::string aik_public;
    std::string aik_name;
    bool active = false;
  };
  struct Agent {
    AgentRow row;  // state as written (not as read)
    absl::Time lease_until = absl::InfinitePast();
  };
  struct Record {
    std::string tenant;
    EventRow event;  // verdict rows have verdict = true
    AttestationRow attestation;
    // A shadow judgement replaced by a newer one of its agent and policy,
    // or whose report was cleared (as PostgreSQL keeps one row each).
    bool superseded = false;
  };
  // Drops `policy`'s shadow report and its Watch events.
  void ClearShadowReportLocked(const std::string& tenant,
                               const std::string& policy)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks the shadow records of (tenant, policy[, agent_id]) superseded.
  void SupersedeShadowsLocked(const std::string& tenant,
                              const std::string& policy,
                              const std::string& agent_id = "")
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // kNotFound without a live policy `name`; CheckSlotKind's answer for
  // another kind than the slot's (1: runtime).
  absl::Status CheckPolicySlotLocked(const std::string& tenant, int slot,
                                     const std::string& name) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  AgentRow AsRead(const Agent& a) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a stream of `agent_id` at `epoch` verifying with `aik_name`
  // still holds the agent: the epoch fence and the registration's AIK.
  bool Holds(const std::string& agent_id, int64_t epoch,
             const std::string& aik_name) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends to the log at the next position, stamped now; a verdict row
  // carries its attestation record.
  void AddEvent(const std::string& tenant, EventRow e,
                AttestationRow attestation = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<VerdictApplied> Apply(const VerdictCommit& c)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Keep(const VerdictCommit& c, const AttestationRow& attestation)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int timeout_intervals_;
  const Clock clock_;
  mutable absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, Registration> registrations_
      ABSL_GUARDED_BY(mu_);
  // (tenant, name) -> versions, oldest first.
  std::map<std::pair<std::string, std::string>, std::vector<PolicyRow>>
      policies_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Agent> agents_ ABSL_GUARDED_BY(mu_);  // by agent_id
  // By (tenant, policy, kind); shadow reports by (tenant, policy), agent_id.
  std::map<std::tuple<std::string, std::string, int>, RolloutRow> rollouts_
      ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>,
           std::map<std::string, ShadowResultRow>>
      shadow_results_ ABSL_GUARDED_BY(mu_);
  std::vector<Record> log_ ABSL_GUARDED_BY(mu_);  // events and verdicts
  // Unique like the attestations table's keys.
  std::set<std::string> attestation_ids_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> nonces_ ABSL_GUARDED_BY(mu_);
  // Kept evidence (as migrations/0010): records by attestation_id (without
  // ima_log), IMA segments by (agent_id, reset_count), boot logs by
  // (agent_id, SHA-256) with their reset_count, AIKs by name.
  struct ImaSegment {
    uint64_t first = 0;
    uint64_t next = 0;
    int format = 0;
    int hash_alg = 0;
    std::string data;
  };
  std::map<std::string, KeptRecord> kept_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, uint32_t>, std::vector<ImaSegment>>
      ima_segments_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>,
           std::pair<uint32_t, std::string>>
      boot_logs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> aiks_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, TenantSettings> tenant_settings_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, uint32_t>, std::string> last_boot_log_
      ABSL_GUARDED_BY(mu_);
  uint64_t xid_ ABSL_GUARDED_BY(mu_) = 1;  // one per "transaction"
  int fail_commits_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<size_t> batch_sizes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vouch::store

#endif  // VOUCH_STORE_IN_MEMORY_VERIFIER_STORE_H_
