#include "agent/attest_state_machine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "core/agent_state.h"
#include "core/attest/wire.h"

namespace vouch::agent {
namespace {

using Actions = std::vector<AttestAction>;
using Kind = AttestAction::Kind;

// After our own AgentError the next Challenge is answered this late at most.
constexpr absl::Duration kMaxErrorBackoff = absl::Seconds(60);
// A StreamError's retry_after is at least this.
constexpr absl::Duration kMinRetryAfter = absl::Seconds(1);

using core::attest::FromProto;

AttestAction Make(Kind kind) {
  AttestAction a;
  a.kind = kind;
  return a;
}

AttestAction Wait(absl::Time until) {
  AttestAction a = Make(Kind::kWait);
  a.until = until;
  return a;
}

}  // namespace

absl::string_view AttestStateName(AttestState state) {
  switch (state) {
    case AttestState::kConnect:
      return "Connect";
    case AttestState::kHello:
      return "Hello";
    case AttestState::kWaitChallenge:
      return "WaitChallenge";
    case AttestState::kPush:
      return "Push";
    case AttestState::kWaitVerdict:
      return "WaitVerdict";
    case AttestState::kIdle:
      return "Idle";
    case AttestState::kBackoff:
      return "Backoff";
    case AttestState::kStopped:
      return "Stopped";
  }
  return "?";
}

AttestStateMachine::AttestStateMachine(Options options, uint64_t seed)
    : options_(std::move(options)),
      backoff_(options_.retry_initial, options_.retry_max, seed),
      min_interval_(options_.min_push_interval) {}

bool AttestStateMachine::StreamOpen() const {
  switch (state_) {
    case AttestState::kHello:
    case AttestState::kWaitChallenge:
    case AttestState::kPush:
    case AttestState::kWaitVerdict:
    case AttestState::kIdle:
      return true;
    default:
      return false;
  }
}

Actions AttestStateMachine::Start(absl::Time /*now*/) {
  if (options_.verifiers.empty()) {
    Log(LogLevel::kError, "no verifier to attest to");
    state_ = AttestState::kStopped;
    AttestAction exit = Make(Kind::kExit);
    exit.exit_code = 1;
    return {exit};
  }
  return Connect();
}

Actions AttestStateMachine::Connect() {
  state_ = AttestState::kConnect;
  verifier_index_ = next_verifier_ % options_.verifiers.size();
  ++next_verifier_;
  verifier_ = options_.verifiers[verifier_index_];
  challenge_.reset();
  answered_.reset();
  next_push_ = absl::InfiniteFuture();
  earliest_push_ = absl::InfinitePast();
  reply_deadline_ = absl::InfiniteFuture();
  min_interval_ = options_.min_push_interval;
  sent_until_ = 0;
  error_backoff_ = absl::ZeroDuration();
  had_verdict_ = false;
  Log(LogLevel::kInfo, "opening attestation stream", {{"verifier", verifier_}});
  AttestAction open = Make(Kind::kOpenStream);
  open.verifier = verifier_;
  open.verifier_index = verifier_index_;
  return {open};
}

Actions AttestStateMachine::OnStreamOpened(absl::Time /*now*/) {
  if (state_ != AttestState::kConnect) return {};
  state_ = AttestState::kHello;
  return {Make(Kind::kSendHello)};
}

Actions AttestStateMachine::OnHelloSent(absl::Time now) {
  if (state_ != AttestState::kHello) return {};
  state_ = AttestState::kWaitChallenge;
  return Evaluate(now, /*ima_grew=*/false);
}

Actions AttestStateMachine::OnEvidenceSent(
    absl::Time now, std::optional<uint64_t> ima_sent_until) {
  if (state_ != AttestState::kPush) return {};
  if (ima_sent_until) sent_until_ = *ima_sent_until;
  answered_ = std::move(challenge_);
  challenge_.reset();
  reply_deadline_ = now + options_.reply_timeout;
  state_ = AttestState::kWaitVerdict;
  return {Wait(reply_deadline_)};
}

Actions AttestStateMachine::OnEvidenceFailed(absl::Time now,
                                             const absl::Status& status) {
  if (state_ != AttestState::kPush) return {};
  Log(LogLevel::kWarning, "cannot answer the challenge",
      {{"error", status.message()}});
  AttestAction error = Make(Kind::kSendAgentError);
  error.error_code = static_cast<int32_t>(
      status.ok() ? absl::StatusCode::kUnknown : status.code());
  error.error_message = std::string(status.message().substr(0, 256));
  // Back off before answering the verifier's next Challenge, so a failing
  // TPM is not hammered.
  error_backoff_ = std::min(std::max(absl::Seconds(1), 2 * error_backoff_),
                            kMaxErrorBackoff);
  challenge_.reset();
  answered_.reset();
  reply_deadline_ = now + options_.reply_timeout;
  state_ = AttestState::kWaitVerdict;
  return {error, Wait(reply_deadline_)};
}

Actions AttestStateMachine::OnMessage(absl::Time now,
                                      const v1::VerifierMessage& message) {
  if (!StreamOpen() || state_ == AttestState::kHello ||
      state_ == AttestState::kPush) {
    return {};
  }
  // Any message but a StateNotice or an ActionNotice (which may come at any
  // time) is the verifier's reply.
  if (!message.has_state_notice() && !message.has_action_notice()) {
    reply_deadline_ = absl::InfiniteFuture();
  }
  switch (message.message_case()) {
    case v1::VerifierMessage::kChallenge:
      OnChallenge(now, message.challenge());
      break;
    case v1::VerifierMessage::kVerdict:
      OnVerdict(now, message.verdict());
      break;
    case v1::VerifierMessage::kError:
      OnStreamError(now, message.error());
      break;
    case v1::VerifierMessage::kStateNotice:
      Log(LogLevel::kWarning, "state notice",
          {{"state", std::string(core::AgentStateName(
                         message.state_notice().state()))}});
      break;
    default:
      break;  // A newer verifier's message kind.
  }
  return Evaluate(now, /*ima_grew=*/false);
}

void AttestStateMachine::OnChallenge(absl::Time now,
                                     const v1::Challenge& challenge) {
  challenge_ = challenge;
  answered_.reset();
  // Answer a bare Challenge at once, unless it follows our own AgentError.
  next_push_ = now + error_backoff_;
}

void AttestStateMachine::OnVerdict(absl::Time now, const v1::Verdict& v) {
  had_verdict_ = true;
  error_backoff_ = absl::ZeroDuration();
  std::string first;
  if (v.failures_size() > 0) {
    first = absl::StrCat(v.failures(0).path(), " ", v.failures(0).detail());
  }
  Log(v.state() == v1::ATTESTATION_STATE_PASS ? LogLevel::kInfo
                                              : LogLevel::kWarning,
      "verdict",
      {{"verifier", verifier_},
       {"attestation_id", v.attestation_id()},
       {"state", std::string(core::AgentStateName(v.state()))},
       {"agent_state", std::string(core::AgentStateName(v.agent_state()))},
       {"ima_next_entry",
        v.has_ima_next_entry() ? static_cast<int64_t>(v.ima_next_entry()) : -1},
       {"failures", v.failures_size()},
       {"first_failure", first}});
  challenge_ = v.next_challenge();
  answered_.reset();
  const absl::Duration interval = FromProto(challenge_->interval());
  min_interval_ = std::max(options_.min_push_interval,
                           FromProto(challenge_->min_interval()));
  next_push_ =
      now + (interval > absl::ZeroDuration() ? interval : kDefaultInterval);
  earliest_push_ = now + min_interval_;
}

void AttestStateMachine::OnStreamError(absl::Time now,
                                       const v1::StreamError& e) {
  Log(LogLevel::kWarning, "verifier rejected a message",
      {{"code", e.code()}, {"message", e.message()}});
  next_push_ = now + std::max(FromProto(e.retry_after()), kMinRetryAfter);
  earliest_push_ = next_push_;
  // In reply to Evidence: the answered Challenge stays valid; push it again
  // after retry_after.
  if (!challenge_ && answered_) challenge_ = std::move(answered_);
  answered_.reset();
}

Actions AttestStateMachine::OnStreamEnded(absl::Time now,
                                          const absl::Status& status,
                                          absl::Duration retry_after) {
  if (state_ != AttestState::kConnect && !StreamOpen()) return {};
  return EndStream(now, status, retry_after);
}

Actions AttestStateMachine::EndStream(absl::Time now,
                                      const absl::Status& status,
                                      absl::Duration retry_after) {
  if (had_verdict_) backoff_.Reset();
  had_verdict_ = false;
  // ABORTED: another verifier took the agent over; follow it at once.
  absl::Duration wait = status.code() == absl::StatusCode::kAborted
                            ? absl::ZeroDuration()
                            : backoff_.Next();
  // A refusal's hint (a full verifier): never earlier, and spread out.
  if (retry_after > absl::ZeroDuration()) {
    wait = std::max(wait, backoff_.Spread(retry_after));
  }
  const bool operator_must_act =
      status.code() == absl::StatusCode::kFailedPrecondition ||
      status.code() == absl::StatusCode::kPermissionDenied;
  Log(operator_must_act ? LogLevel::kError : LogLevel::kWarning,
      "attestation stream ended",
      {{"verifier", verifier_},
       {"code", static_cast<int>(status.code())},
       {"message", status.message()},
       {"retry_in", absl::FormatDuration(wait)}});
  if (wait <= absl::ZeroDuration()) return Connect();
  state_ = AttestState::kBackoff;
  backoff_until_ = now + wait;
  return {Wait(backoff_until_)};
}

Actions AttestStateMachine::OnTick(absl::Time now) {
  switch (state_) {
    case AttestState::kBackoff:
      if (now >= backoff_until_) return Connect();
      return {Wait(backoff_until_)};
    case AttestState::kWaitChallenge:
    case AttestState::kWaitVerdict:
    case AttestState::kIdle:
      return Evaluate(now, /*ima_grew=*/false);
    default:
      return {};
  }
}

Actions AttestStateMachine::OnImaGrew(absl::Time now) {
  if (state_ != AttestState::kIdle) return OnTick(now);
  return Evaluate(now, /*ima_grew=*/true);
}

Actions AttestStateMachine::OnStop(int signal) {
  Log(LogLevel::kInfo, "agent stopping", {{"signal", signal}});
  Actions out;
  if (StreamOpen()) out.push_back(Make(Kind::kCloseStream));
  state_ = AttestState::kStopped;
  out.push_back(Make(Kind::kExit));
  return out;
}

bool AttestStateMachine::EarlyPushAllowed(absl::Time now) const {
  return options_.has_ima && challenge_ && challenge_->has_ima_from() &&
         now >= earliest_push_;
}

Actions AttestStateMachine::Evaluate(absl::Time now, bool ima_grew) {
  if (reply_deadline_ != absl::InfiniteFuture()) {
    if (now < reply_deadline_) {
      state_ = AttestState::kWaitVerdict;
      return {Wait(reply_deadline_)};
    }
    // A verifier that took the push and never answered (a frozen process).
    Log(LogLevel::kWarning, "no reply from the verifier; reconnecting",
        {{"verifier", verifier_}});
    Actions out = {Make(Kind::kCloseStream)};
    for (AttestAction& a :
         EndStream(now, absl::DeadlineExceededError("no reply to evidence"))) {
      out.push_back(std::move(a));
    }
    return out;
  }
  if (!challenge_) {
    state_ = AttestState::kWaitChallenge;
    return {Wait(absl::InfiniteFuture())};
  }
  if (now >= next_push_ || (ima_grew && EarlyPushAllowed(now))) return Push();
  state_ = AttestState::kIdle;
  AttestAction wait = Wait(next_push_);
  if (options_.has_ima && challenge_->has_ima_from()) {
    // New IMA entries may be pushed early, from earliest_push on.
    if (now >= earliest_push_) {
      wait.ima_from = sent_until_;
    } else {
      wait.until = std::min(next_push_, earliest_push_);
    }
  }
  return {wait};
}

Actions AttestStateMachine::Push() {
  state_ = AttestState::kPush;
  AttestAction send = Make(Kind::kSendEvidence);
  send.challenge = *challenge_;
  return {send};
}

}  // namespace vouch::agent
