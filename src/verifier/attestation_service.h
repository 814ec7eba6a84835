// File: verifier/attestation_service.h
// The agent-facing Attestation service (attestation.proto) on gRPC's
// callback API: one reactor per stream, one write in flight, nothing
// blocking inside a reaction. Each stream's protocol is an
// AttestationSession (attestation_session.h); its reactor only moves
// messages between the stream and the session and runs the actions the
// session returns — blocking ones (takeover, policy loads, the fence
// check, large evidence) on the bounded Executor, verdicts through the
// GroupCommitter, which acknowledges nothing before it is committed. The
// reactor reads the next message only after the session answered the
// last one, so an agent has at most one message buffered in the verifier.
// Thread-safe.
//
// Admission control (admission.h): a Hello deadline, one live stream per
// agent, a cap on streams and a verifier-wide budget of held IMA bytes.
//
// Lock order: AttestationService::mu_ and the StreamAdmission lock, each
// before StreamReactor::mu_ (Register, RenewLeases, Drain and the Hello
// deadline thread end streams while holding one of them); the two are never
// held together. The LatencyRecorder's, GroupCommitter's, Executor's and
// PolicyCache's locks are leaves. Nothing blocking runs under any of them.
//
//   AttestationService svc(&store, &executor, &committer, &cache, options);
//   builder.RegisterService(&svc);
//   ... periodically: svc.RenewLeases(period);
#ifndef VOUCH_VERIFIER_ATTESTATION_SERVICE_H_
#define VOUCH_VERIFIER_ATTESTATION_SERVICE_H_

#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/rate_limiter.h"
#include "store/verifier_store.h"
#include "verifier/admission.h"
#include "verifier/attestation_session.h"
#include "verifier/executor.h"
#include "verifier/group_commit.h"
#include "verifier/latency_recorder.h"
#include "verifier/notice_hub.h"
#include "verifier/policy_cache.h"
#include "verifier/result_issuer.h"
#include "verifier/verifier_metrics.h"
#include "vouch/v1/attestation.grpc.pb.h"

namespace vouch::verifier {

// What one AttestationService is configured with.
struct AttestationOptions {
  SessionOptions session;
  AdmissionOptions admission;
  VerifierMetrics* metrics = nullptr;  // nullptr: metrics off.
  // Signs the EAR token each Verdict carries; nullptr: no tokens.
  const ResultIssuer* results = nullptr;
  // Sends the agents' action notices (notice_hub.h); nullptr: none.
  NoticeHub* notices = nullptr;
};

class StreamReactor;

class AttestationService final : public v1::Attestation::CallbackService,
                                 public SessionEnv {
 public:
  AttestationService(store::AgentStore* store, Executor* executor,
                     GroupCommitter* committer, PolicyCache* policies,
                     AttestationOptions options);
  ~AttestationService() override;

  grpc::ServerBidiReactor<v1::AgentMessage, v1::VerifierMessage>* Attest(
      grpc::CallbackServerContext* context) override;

  // In one statement, checks that every stream this verifier holds still
  // has its epoch, and renews the leases last written (taken, or a verdict
  // committed) more than a third of a lease ago; streams with verdicts
  // flowing need no renewal, as each verdict commit writes the lease, and
  // the check of the others only reads. A stream whose epoch was taken over
  // is ended with ABORTED (the fence); an unenrolled agent is told so and
  // its stream ended with FAILED_PRECONDITION. `every` is how often it is
  // called: a longer gap since the last call means this process was stalled
  // (SIGSTOP, a frozen VM), so every lease is checked.
  // Blocking (database): call from a maintenance thread.
  void RenewLeases(absl::Duration every);
  // Ends every stream with UNAVAILABLE (draining before shutdown).
  void Drain();
  // Streams open now.
  size_t streams() const;

  // Evidence-read-to-Verdict-sent times since the last call (then reset).
  LatencyRecorder::Stats TakeLatencyStats() { return latency_.Take(); }

  // SessionEnv.
  Bytes Random(size_t n) override;
  bool AllowHello(const std::string& agent_id, absl::Time now) override;
  bool HoldImaBytes(int64_t delta) override;
  // Unproven IMA bytes held by all sessions now.
  int64_t held_ima_bytes() const { return ima_budget_.held(); }

 private:
  friend class StreamReactor;
  struct Held {
    std::string agent_id;
    int64_t epoch = 0;
    absl::Duration lease;  // The reactor records when it last wrote it.
    std::string aik_name;  // Lease checks require it to be still active.
  };
  // A new stream, or nullptr with its refusal counted when at the cap.
  StreamReactor* Admit(grpc::CallbackServerContext* context);
  // A stream took agent_id at epoch with aik_name; an older stream of the
  // same agent on this verifier is ended with ABORTED.
  void Register(StreamReactor* reactor, const std::string& agent_id,
                int64_t epoch, absl::Duration lease,
                const std::string& aik_name);
  // The stream is done: forgotten, its slot free.
  void Unregister(StreamReactor* reactor);
  // newest_ forgets agent_id when reactor is its newest stream.
  void ForgetNewest(StreamReactor* reactor, const std::string& agent_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The stream read its first message: its Hello deadline is off.
  void FirstMessage(StreamReactor* reactor);
  // A new stream over the admission rate: refused with RESOURCE_EXHAUSTED.
  grpc::ServerBidiReactor<v1::AgentMessage, v1::VerifierMessage>* RefuseByRate(
      grpc::CallbackServerContext* context, absl::Time now);
  // Takes one token of the new-stream rate; false when there is none.
  bool TakeStreamToken(absl::Time now);
  // Until stop_: closes the streams past their Hello deadline.
  void EnforceHelloDeadline();

  store::AgentStore* store_;
  Executor* executor_;
  GroupCommitter* committer_;
  PolicyCache* policies_;
  const AttestationOptions options_;
  server::RateLimiter hello_limiter_;
  mutable absl::Mutex mu_;
  std::map<StreamReactor*, Held> streams_ ABSL_GUARDED_BY(mu_);
  // Each agent's newest stream in streams_ (the older ones were ended).
  absl::flat_hash_map<std::string, StreamReactor*> newest_ ABSL_GUARDED_BY(mu_);
  // The stream cap and the streams awaiting their Hello.
  StreamAdmission<StreamReactor> admission_;
  ImaBudget ima_budget_;
  // The admission rate of new streams. A leaf lock: nothing else is taken
  // while it is held.
  absl::Mutex rate_mu_;
  server::TokenBucket new_streams_ ABSL_GUARDED_BY(rate_mu_);
  absl::Notification stop_;
  std::thread deadline_thread_;
  absl::Time last_renewal_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  LatencyRecorder latency_;
};

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_ATTESTATION_SERVICE_H_
