// File: agent/attest_state_machine.h
// The agent's side of the Attest stream (docs/agent.md, "Attestation") as a
// pure state machine: no gRPC, no threads, no clock reads and no randomness
// of its own (`now` comes with every event; back-off jitter comes from the
// seed). Verifier messages are untrusted input and are handled, never
// asserted. It logs its decisions through common/logging. Not thread-safe:
// one driver (attest_loop.cc) feeds it events and carries out the actions it
// returns, in order.
//
//   AttestStateMachine machine(options, seed);
//   std::vector<AttestAction> actions = machine.Start(absl::Now());
//   // Run each action; one whose outcome is an event (see AttestAction)
//   // feeds it, e.g. machine.OnMessage(absl::Now(), message), and the
//   // actions it returns replace the rest of the list.
#ifndef VOUCH_AGENT_ATTEST_STATE_MACHINE_H_
#define VOUCH_AGENT_ATTEST_STATE_MACHINE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/registration.h"
#include "vouch/v1/attestation.pb.h"

namespace vouch::agent {

// The states of the diagram in docs/agent.md.
enum class AttestState {
  kConnect,        // Opening a stream to the next verifier of the list.
  kHello,          // Stream open; sending Hello.
  kWaitChallenge,  // Hello sent; no Challenge to answer yet.
  kPush,           // Building and sending Evidence for the Challenge.
  kWaitVerdict,    // Evidence or AgentError sent; waiting for the reply.
  kIdle,           // Holding the next Challenge until it is due.
  kBackoff,        // The stream ended; waiting before the next Connect.
  kStopped,        // A stop was requested; Exit was returned.
};

// "Connect", "Hello", ... as in docs/agent.md.
absl::string_view AttestStateName(AttestState state);

// What the driver does next. Kinds marked "blocking" end every list the
// machine returns (exactly one, last); the others come before it.
struct AttestAction {
  enum class Kind {
    // Blocking. Open an Attest stream to `verifier`. Outcome: OnStreamOpened,
    // or OnStreamEnded when no stream could be opened.
    kOpenStream,
    // Blocking. Write the Hello. Outcome: OnHelloSent, or OnStreamEnded.
    kSendHello,
    // Blocking. Answer `challenge`: quote, then IMA from ima_from, boot log
    // when asked, and write it. Outcome: OnEvidenceSent, OnEvidenceFailed
    // (nothing was written) or OnStreamEnded (the write failed).
    kSendEvidence,
    // Write an AgentError{error_code, error_message}. Outcome: none, or
    // OnStreamEnded when the write fails.
    kSendAgentError,
    // Cancel the stream and drop it; no event follows (its status is not
    // asked for).
    kCloseStream,
    // Blocking. Wait until `until`, feeding OnMessage / OnStreamEnded while a
    // stream is open, OnTick now and then (at least at `until`), OnStop on a
    // stop signal, and OnImaGrew when `ima_from` is set and the IMA log may
    // hold entries from that index.
    kWait,
    // Blocking. Return `exit_code` from the process.
    kExit,
  };

  Kind kind = Kind::kWait;
  std::string verifier;              // kOpenStream
  size_t verifier_index = 0;         // kOpenStream: index in the list.
  v1::Challenge challenge;           // kSendEvidence
  int32_t error_code = 0;            // kSendAgentError (an absl/gRPC code)
  std::string error_message;         // kSendAgentError, <= 256 bytes
  absl::Time until;                  // kWait
  std::optional<uint64_t> ima_from;  // kWait
  int exit_code = 0;                 // kExit

  bool blocking() const {
    return kind != Kind::kSendAgentError && kind != Kind::kCloseStream;
  }
};

class AttestStateMachine {
 public:
  struct Options {
    std::vector<std::string> verifiers;  // Must not be empty.
    bool has_ima = false;                // An IMA log is configured.
    // Back-off between streams: retry_initial doubling to retry_max, each
    // wait uniform in [d/2, d] (see Backoff); none after ABORTED.
    absl::Duration retry_initial = absl::Seconds(1);
    absl::Duration retry_max = absl::Minutes(5);
    // Pushes come no closer than the larger of this and the Challenge's
    // min_interval.
    absl::Duration min_push_interval = absl::Seconds(1);
    // No reply to Evidence or AgentError within this: reconnect.
    absl::Duration reply_timeout = absl::Seconds(30);
  };

  // Interval used when a Verdict's next Challenge has none.
  static constexpr absl::Duration kDefaultInterval = absl::Seconds(60);

  // `seed` drives the back-off jitter and nothing else.
  AttestStateMachine(Options options, uint64_t seed);

  // The first action: open a stream to the first verifier of the list (or
  // exit 1 when the list is empty).
  std::vector<AttestAction> Start(absl::Time now);

  // Each On* returns the next actions. An event that cannot come in the
  // current state (e.g. OnHelloSent while idle) changes nothing and returns
  // an empty list.

  // Outcomes of the blocking actions.
  std::vector<AttestAction> OnStreamOpened(absl::Time now);
  std::vector<AttestAction> OnHelloSent(absl::Time now);
  // `ima_sent_until`: the entry index after the last IMA entry sent, when
  // the Evidence carried an IMA chunk.
  std::vector<AttestAction> OnEvidenceSent(
      absl::Time now, std::optional<uint64_t> ima_sent_until);
  // The Evidence could not be built (TPM failure, unreadable IMA log).
  std::vector<AttestAction> OnEvidenceFailed(absl::Time now,
                                             const absl::Status& status);

  // While waiting.
  std::vector<AttestAction> OnMessage(absl::Time now,
                                      const v1::VerifierMessage& message);
  // The stream ended with `status` (a gRPC status as absl::Status; the codes
  // are the same numbers), or could not be opened. `retry_after`: the
  // verifier's hint with a refusal (core::attest::kRetryAfterMetadata); the
  // agent waits at least that, jittered.
  std::vector<AttestAction> OnStreamEnded(
      absl::Time now, const absl::Status& status,
      absl::Duration retry_after = absl::ZeroDuration());
  std::vector<AttestAction> OnTick(absl::Time now);
  // The IMA log may hold entries from the `ima_from` of the last Wait.
  std::vector<AttestAction> OnImaGrew(absl::Time now);
  // SIGINT/SIGTERM (`signal`), in any state: close the stream and exit 0.
  std::vector<AttestAction> OnStop(int signal);

  AttestState state() const { return state_; }
  // The Challenge held for the next push, if any.
  const std::optional<v1::Challenge>& challenge() const { return challenge_; }
  const std::string& verifier() const { return verifier_; }
  absl::Duration min_interval() const { return min_interval_; }
  absl::Time next_push() const { return next_push_; }
  absl::Time earliest_push() const { return earliest_push_; }
  absl::Time reply_deadline() const { return reply_deadline_; }
  absl::Duration error_backoff() const { return error_backoff_; }
  uint64_t ima_sent_until() const { return sent_until_; }

 private:
  bool StreamOpen() const;
  std::vector<AttestAction> Connect();
  // Closes nothing itself: the caller closes the stream if it is open.
  std::vector<AttestAction> EndStream(
      absl::Time now, const absl::Status& status,
      absl::Duration retry_after = absl::ZeroDuration());
  // After a message or a tick with the stream open: push, wait, or give up
  // on a reply.
  std::vector<AttestAction> Evaluate(absl::Time now, bool ima_grew);
  std::vector<AttestAction> Push();
  void OnChallenge(absl::Time now, const v1::Challenge& challenge);
  void OnVerdict(absl::Time now, const v1::Verdict& verdict);
  void OnStreamError(absl::Time now, const v1::StreamError& error);
  bool EarlyPushAllowed(absl::Time now) const;

  const Options options_;
  Backoff backoff_;
  AttestState state_ = AttestState::kConnect;
  size_t next_verifier_ = 0;
  size_t verifier_index_ = 0;
  std::string verifier_;
  absl::Time backoff_until_ = absl::InfinitePast();

  // One stream's state; reset by Connect.
  std::optional<v1::Challenge> challenge_;
  // The Challenge last answered, while its reply is awaited: a StreamError
  // in reply leaves it valid (attestation.proto), so it is pushed again.
  std::optional<v1::Challenge> answered_;
  absl::Time next_push_ = absl::InfiniteFuture();
  absl::Time earliest_push_ = absl::InfinitePast();
  absl::Time reply_deadline_ = absl::InfiniteFuture();
  absl::Duration min_interval_;
  uint64_t sent_until_ = 0;  // Entry index after the last IMA entry sent.
  // Delay before answering a Challenge after our own AgentError: 1 s
  // doubling to 60 s, cleared by a Verdict.
  absl::Duration error_backoff_ = absl::ZeroDuration();
  bool had_verdict_ = false;
};

}  // namespace vouch::agent

#endif  // VOUCH_AGENT_ATTEST_STATE_MACHINE_H_
