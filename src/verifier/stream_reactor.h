// File: verifier/stream_reactor.h
// One agent's Attest stream (attestation_service.h): moves messages between
// gRPC and the stream's AttestationSession and runs the actions the session
// returns — blocking ones on the service's Executor, verdicts through its
// GroupCommitter. The session is touched only by the chain read ->
// OnMessage -> (blocking work or commit) -> kReadNext/kEnd, which never runs
// twice at once (busy_); mu_ guards what reactions and that chain share.
// Created by AttestationService::Attest only; deletes itself in OnDone.
//
// Lock order: AttestationService::mu_ and the service's StreamAdmission
// lock before StreamReactor::mu_ (they end streams while held).
#ifndef VOUCH_VERIFIER_STREAM_REACTOR_H_
#define VOUCH_VERIFIER_STREAM_REACTOR_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "verifier/attestation_service.h"
#include "verifier/attestation_session.h"
#include "verifier/notice_hub.h"
#include "verifier/result_issuer.h"
#include "vouch/v1/attestation.grpc.pb.h"

namespace vouch::verifier {

class StreamReactor final
    : public grpc::ServerBidiReactor<v1::AgentMessage, v1::VerifierMessage>,
      public NoticeSink {
 public:
  // `identity`: the caller's (tenant, agent) from its client certificate,
  // empty when it is not an agent (the session then refuses its Hello).
  StreamReactor(AttestationService* service,
                grpc::CallbackServerContext* context,
                std::pair<std::string, std::string> identity);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // Sends and ends from outside the session's chain (the lease sweeper,
  // draining, a newer stream): only kSend and kEnd are expected.
  void Apply(const SessionActions& actions);
  void End(grpc::Status status);
  // An action notice for the agent (NoticeSink): queued behind the writes
  // in flight; with kMaxNoticesPerRound notices unsent the oldest unsent
  // one is dropped.
  void Notice(v1::VerifierMessage message) override;

  // When this stream's lease was last written to the database (taken, a
  // verdict committed, a renewal); read by the sweeper without the
  // reactor's lock, hence atomic.
  absl::Time lease_written() const {
    return absl::FromUnixMicros(lease_written_us_.load());
  }
  void MarkLeaseWritten(absl::Time t);

 private:
  // Runs what the session asked for, in order. Each list ends the chain
  // (kReadNext, kEnd) or continues it (blocking work, a commit).
  void Run(SessionActions actions);
  // The steps of Run that leave the reaction: on the executor (TakeOver)
  // or the group committer (Commit).
  void TakeOver(const SessionAction& a);
  void Commit(SessionAction a);
  // A Verdict about to be sent: latency, metrics, the signed result.
  void RecordVerdict(v1::VerifierMessage& message);
  // Signs the agent's result after this committed verdict into the message
  // (docs/results.md); a signing failure only leaves the token out.
  void AttachResult(v1::VerifierMessage& message, absl::Time now);
  void RecordCommit(const absl::StatusOr<store::VerdictApplied>& applied);

  // Runs `work` (which continues the chain) on the executor; ends the
  // stream when it is full.
  template <typename Work>
  void Blocking(Work work);

  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Send(v1::VerifierMessage message);
  // The end of the chain: read the next message (or finish).
  void Done(std::optional<grpc::Status> end);

  AttestationService* service_;
  grpc::CallbackServerContext* context_;
  AttestationSession session_;
  bool first_read_ = false;  // Only OnReadDone touches it.

  absl::Mutex mu_;
  v1::AgentMessage in_;
  std::deque<v1::VerifierMessage> writes_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  bool read_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_ ABSL_GUARDED_BY(mu_);

  std::atomic<int64_t> lease_written_us_{0};
  absl::Time received_at_;
  // The agent as taken over (tenant, enrolled policies), for its tokens;
  // written and read only by the session's chain.
  ResultIssuer::Subject subject_;
  absl::Time submitted_at_;
  uint64_t ima_checked_ = 0;        // IMA entries the pending commit accepts.
  uint64_t window_accepted_ = 0;    // Of them, accepted by an update window.
  uint64_t shadow_would_fail_ = 0;  // A shadow's would-be failures.
};

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_STREAM_REACTOR_H_
