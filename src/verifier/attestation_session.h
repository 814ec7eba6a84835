// File: verifier/attestation_session.h
// One agent's Attest stream as a pure state machine: the whole session
// protocol of docs/protocol.md (Hello, takeover, challenges, evidence,
// min_interval and floods, verdicts committed before they are sent,
// reboots, truncated IMA chunks, fencing and unenrollment) with no gRPC, no
// database and no clock of its own. Inputs are the agent's messages, the
// results of the work it asked for (takeover, policy loads, commits, the
// fence check) and `now`; outputs are SessionActions the stream's shell
// runs: send a message, take the agent over, load policies, commit a
// verdict, check the fence, read the next message, end the stream.
// Everything an agent sends is untrusted. Not thread-safe: the shell calls
// it from one chain of work at a time (see StreamReactor); SessionEnv and
// PolicySource must be thread-safe if shared between sessions.
//
//   AttestationSession s(identity, options, &env, &policies);
//   for (SessionAction& a : s.OnMessage(msg, now)) shell.Run(a);
//   ... the shell runs kTakeOver and calls s.OnTakenOver(result, now) ...
#ifndef VOUCH_VERIFIER_ATTESTATION_SESSION_H_
#define VOUCH_VERIFIER_ATTESTATION_SESSION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/bytes.h"
#include "core/attest/evidence.h"
#include "core/tpm/quote.h"
#include "store/verifier_store.h"
#include "verifier/policy_cache.h"
#include "vouch/v1/attestation.pb.h"

namespace vouch::verifier {

struct SessionOptions {
  std::string verifier_id;
  absl::Duration min_interval = absl::Seconds(1);
  int timeout_intervals = 3;
  // Consecutive early pushes tolerated before the stream is cut off.
  int max_early_pushes = 5;
  // The shortest lease a stream takes (interval x timeout_intervals when
  // longer).
  absl::Duration min_lease = absl::Seconds(60);
  // Each record keeps its evidence (quote, PCRs, IMA entries, boot log,
  // policy versions: store::KeptEvidence) for re-verification.
  bool keep_evidence = true;
};

// What a session needs from its verifier besides policies; non-blocking.
class SessionEnv {
 public:
  virtual ~SessionEnv() = default;
  // n unpredictable bytes (nonces, attestation ids).
  virtual Bytes Random(size_t n) = 0;
  // Whether agent_id may open a stream now (the Hello rate limit).
  virtual bool AllowHello(const std::string& agent_id, absl::Time now) = 0;
  // Accounts `delta` more (negative: fewer) bytes of unproven IMA entries
  // held by sessions. False, and nothing accounted, when a positive delta
  // would exceed the verifier-wide budget.
  virtual bool HoldImaBytes(int64_t delta) = 0;
};

// The policies of an enrollment as loaded for one evidence.
struct LoadedPolicies {
  absl::StatusOr<Versioned<core::ima::RuntimePolicy>> runtime =
      Versioned<core::ima::RuntimePolicy>{};
  absl::StatusOr<Versioned<core::boot::BootPolicy>> boot =
      Versioned<core::boot::BootPolicy>{};
  absl::StatusOr<Versioned<core::boot::PcrPolicy>> pcr =
      Versioned<core::boot::PcrPolicy>{};
  // Roll-out candidates of the runtime policy that apply to the agent now
  // (store::RolloutRow); unset when none applies or it did not load (a
  // candidate that does not load never changes a verdict).
  struct Candidate {
    std::string name;
    Versioned<core::ima::RuntimePolicy> policy;
  };
  std::optional<Candidate> shadow;
  std::optional<Candidate> window;
  // The member a roll-out of `kind` fills.
  std::optional<Candidate>& Slot(store::RolloutKind kind) {
    return kind == store::RolloutKind::kShadow ? shadow : window;
  }
};

struct SessionAction;

// What a kLoadPolicies action asks for, loaded (blocking) through `cache`:
// the enrollment's policies, then the runtime policy's roll-outs that apply
// to a.agent_id at `now` and their candidates. What the reactor runs.
LoadedPolicies LoadPolicies(PolicyCache& cache, const SessionAction& a,
                            absl::Time now);

struct SessionAction {
  enum class Kind {
    kSend,          // Write `message` to the stream.
    kTakeOver,      // Blocking: AgentStore::TakeOver(tenant, agent_id,
                    // owner, agent_version, lease), then OnTakenOver.
    kHold,          // The stream now holds agent_id at `epoch` with `lease`
                    // and `aik_name` (the verifier ends its older streams
                    // of the agent; lease checks carry the AIK).
    kLoadPolicies,  // Blocking: LoadPolicies(cache, action), then
                    // OnPoliciesLoaded.
    kCommit,        // Group-commit `commit`, then OnCommitted.
    kCheckFence,    // Blocking: AgentStore::Enrolled(agent_id), then
                    // OnFenceChecked.
    kReadNext,      // The last message is answered: read the next one.
    kEnd,           // Finish the stream with `status`.
  };
  Kind kind = Kind::kEnd;
  v1::VerifierMessage message;  // kSend
  store::VerdictCommit commit;  // kCommit
  // kCommit: entries an update window's candidate accepted (for metrics).
  uint64_t window_accepted = 0;
  absl::Status status;  // kEnd
  // kTakeOver, kHold, kLoadPolicies, kCheckFence.
  std::string tenant;
  std::string agent_id;
  std::string aik_name;  // kHold
  std::string agent_version;
  int64_t epoch = 0;
  absl::Duration lease;
  std::string runtime_policy;
  std::string boot_policy;
  std::string pcr_policy;
};
using SessionActions = std::vector<SessionAction>;

class AttestationSession {
 public:
  // The session's states (docs/verifier.md draws them).
  enum class State {
    kAwaitHello,       // Nothing read yet.
    kTakingOver,       // Hello valid; the takeover runs.
    kReady,            // A Challenge is outstanding; waiting for Evidence.
    kLoadingPolicies,  // Evidence held while its policies load.
    kCommitting,       // A verdict is being committed.
    kCheckingFence,    // A fenced write: taken over or unenrolled?
    kClosed,           // The stream is ending.
  };

  // `tenant` and `agent` are the authenticated identity of the client
  // certificate (agent empty: the caller is no agent).
  AttestationSession(std::string tenant, std::string agent,
                     const SessionOptions& options, SessionEnv* env,
                     PolicySource* policies);
  // Returns the held IMA bytes to the SessionEnv's budget.
  ~AttestationSession();
  AttestationSession(const AttestationSession&) = delete;
  AttestationSession& operator=(const AttestationSession&) = delete;

  // An AgentMessage read from the stream.
  SessionActions OnMessage(std::shared_ptr<const v1::AgentMessage> message,
                           absl::Time now);
  SessionActions OnTakenOver(absl::StatusOr<store::Takeover> taken,
                             absl::Time now);
  SessionActions OnPoliciesLoaded(LoadedPolicies loaded, absl::Time now);
  SessionActions OnCommitted(absl::StatusOr<store::VerdictApplied> applied,
                             absl::Time now);
  SessionActions OnFenceChecked(absl::StatusOr<bool> enrolled, absl::Time now);

  // What ends a stream whose fenced write or lease check found another
  // epoch: a StateNotice and FAILED_PRECONDITION when the agent is no
  // longer enrolled, else ABORTED (taken over, or the check failed). Pure;
  // for the sweeper too.
  static SessionActions Fenced(const std::string& agent_id, int64_t epoch,
                               const absl::StatusOr<bool>& enrolled,
                               absl::Time now);

  State state() const { return state_; }
  const std::string& agent_id() const { return agent_id_; }
  int64_t epoch() const { return epoch_; }
  // Whether OnMessage(message) is cheap enough for the reading thread:
  // anything but evidence with a boot log or a large IMA chunk (the
  // shell's choice; either way is correct).
  static bool Cheap(const v1::AgentMessage& message);

 private:
  SessionActions OnHello(const v1::Hello& hello, absl::Time now);
  SessionActions OnEvidence(std::shared_ptr<const v1::AgentMessage> message,
                            absl::Time now);
  SessionActions OnAgentError(const v1::AgentError& error, absl::Time now);
  // The enrolled runtime policy's roll-outs that apply now, from the
  // cache; false when something must be loaded first.
  bool TryRollouts(LoadedPolicies& loaded, absl::Time now);
  SessionActions Evaluate(const LoadedPolicies& policies, absl::Time now);
  SessionActions CommitVerdict(core::attest::EvidenceOutcome out,
                               uint64_t runtime_version, uint64_t boot_version,
                               uint64_t pcr_version, absl::Time now);
  // What the record keeps of the held evidence (SessionOptions).
  store::KeptEvidence Kept(const core::attest::EvidenceOutcome& out,
                           uint64_t runtime_version, uint64_t boot_version,
                           uint64_t pcr_version) const;
  // A boot policy is enrolled and no boot PCRs are kept.
  bool NeedBootLog() const;
  bool NewerBootPolicy(absl::Time now);
  SessionActions AskAgain(std::optional<uint64_t> ima_from, absl::Time now);
  SessionActions StreamError(absl::StatusCode code, absl::string_view message,
                             absl::Duration retry_after = absl::ZeroDuration());
  SessionActions End(absl::Status status);
  // Replaces the held IMA bytes, accounted with the SessionEnv; false (and
  // nothing held) when the verifier-wide budget is full.
  bool HoldIma(std::string data);
  void ClearHeldIma();
  bool EarlyPush(absl::Time since, absl::Time now);
  core::attest::IssuedChallenge NewChallenge(absl::Time now);
  v1::Challenge ChallengeMessage(const core::attest::IssuedChallenge& c) const;
  absl::Duration MinInterval() const;
  absl::Duration Lease() const;

  const std::string tenant_;
  const std::string identity_;
  const SessionOptions options_;
  SessionEnv* env_;
  PolicySource* policies_;

  State state_ = State::kAwaitHello;
  std::string agent_id_;
  std::string hello_aik_name_;
  std::string aik_name_;  // The registrar's active AIK at the takeover.
  int64_t epoch_ = 0;
  store::AgentRow row_;
  std::unique_ptr<core::tpm::AikVerifier> aik_;
  std::string aik_public_;  // TPM2B_PUBLIC of aik_, kept with records.
  core::attest::AgentProgress progress_;
  std::optional<core::attest::IssuedChallenge> challenge_;
  bool challenge_by_verdict_ = false;
  bool want_boot_log_ = false;
  // The boot policy version that accepted progress_.boot_pcrs.
  uint64_t kept_boot_version_ = 0;
  uint64_t committing_boot_version_ = 0;
  // The shadow candidate the held evidence was judged against.
  std::optional<LoadedPolicies::Candidate> judged_shadow_;
  std::string held_ima_;
  absl::Time last_verdict_ = absl::InfinitePast();
  absl::Time last_challenge_at_ = absl::InfinitePast();
  int early_pushes_ = 0;
  // The evidence being evaluated or committed.
  std::shared_ptr<const v1::AgentMessage> pending_;
  std::optional<core::attest::EvidenceOutcome> committing_;
  std::string committing_id_;
};

absl::string_view SessionStateName(AttestationSession::State state);

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_ATTESTATION_SESSION_H_
