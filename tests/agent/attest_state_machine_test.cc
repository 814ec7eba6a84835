// AttestStateMachine driven with synthetic time: no stream, no TPM, no
// clock. Each step feeds one event and checks the actions and the state
// (the states of docs/agent.md).
#include "agent/attest_state_machine.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"

namespace vouch::agent {
namespace {

using Actions = std::vector<AttestAction>;
using Kind = AttestAction::Kind;
using State = AttestState;

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

AttestStateMachine::Options TestOptions() {
  AttestStateMachine::Options o;
  o.verifiers = {"v1:7000", "v2:7000", "v3:7000"};
  o.has_ima = true;
  o.retry_initial = absl::Seconds(1);
  o.retry_max = absl::Seconds(8);
  o.min_push_interval = absl::Seconds(1);
  o.reply_timeout = absl::Seconds(30);
  return o;
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  out->set_seconds(absl::IDivDuration(d, absl::Seconds(1), &d));
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
}

v1::Challenge MakeChallenge(
    const std::string& nonce, std::optional<uint64_t> ima_from,
    absl::Duration interval = absl::ZeroDuration(),
    absl::Duration min_interval = absl::ZeroDuration()) {
  v1::Challenge c;
  c.set_nonce(nonce);
  if (ima_from) c.set_ima_from(*ima_from);
  if (interval > absl::ZeroDuration()) {
    SetDuration(interval, c.mutable_interval());
  }
  if (min_interval > absl::ZeroDuration()) {
    SetDuration(min_interval, c.mutable_min_interval());
  }
  return c;
}

v1::VerifierMessage ChallengeMessage(const v1::Challenge& c) {
  v1::VerifierMessage m;
  *m.mutable_challenge() = c;
  return m;
}

v1::VerifierMessage VerdictMessage(const v1::Challenge& next,
                                   const std::string& id = "att-1") {
  v1::VerifierMessage m;
  v1::Verdict* v = m.mutable_verdict();
  v->set_attestation_id(id);
  v->set_state(v1::ATTESTATION_STATE_PASS);
  v->set_agent_state(v1::ATTESTATION_STATE_PASS);
  if (next.has_ima_from()) v->set_ima_next_entry(next.ima_from());
  *v->mutable_next_challenge() = next;
  return m;
}

v1::VerifierMessage StreamErrorMessage(absl::Duration retry_after) {
  v1::VerifierMessage m;
  m.mutable_error()->set_code(8);
  m.mutable_error()->set_message("evidence before min_interval");
  SetDuration(retry_after, m.mutable_error()->mutable_retry_after());
  return m;
}

// The contract of every list: zero or more non-blocking actions, then
// exactly one blocking action. Returns (a copy of) the blocking one.
AttestAction Last(const Actions& actions) {
  REQUIRE(!actions.empty());
  for (size_t i = 0; i + 1 < actions.size(); ++i) {
    CHECK(!actions[i].blocking());
  }
  REQUIRE(actions.back().blocking());
  return actions.back();
}

bool Has(const Actions& actions, Kind kind) {
  for (const AttestAction& a : actions) {
    if (a.kind == kind) return true;
  }
  return false;
}

// Log lines, captured for the lifetime of the object.
class LogCapture {
 public:
  LogCapture() {
    SetLogSinkForTesting([this](absl::string_view line) {
      absl::MutexLock lock(&mu_);
      lines_.emplace_back(line);
    });
  }
  ~LogCapture() { SetLogSinkForTesting(nullptr); }
  // The lines holding every one of `parts`.
  std::vector<std::string> Find(std::initializer_list<std::string> parts) {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> out;
    for (const std::string& line : lines_) {
      bool all = true;
      for (const std::string& p : parts)
        all = all && absl::StrContains(line, p);
      if (all) out.push_back(line);
    }
    return out;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_;
};

// One machine, its clock, and the steps every test repeats.
struct Agent {
  explicit Agent(AttestStateMachine::Options o = TestOptions(),
                 uint64_t seed = 42)
      : m(std::move(o), seed) {}

  // Start (or a back-off's end) to WaitChallenge on verifier `index`.
  void Connect(const Actions& open, size_t index) {
    const AttestAction& a = Last(open);
    REQUIRE(a.kind == Kind::kOpenStream);
    CHECK(a.verifier_index == index);
    CHECK(a.verifier == TestOptions().verifiers[index]);
    CHECK(m.state() == State::kConnect);
    REQUIRE(Last(m.OnStreamOpened(now)).kind == Kind::kSendHello);
    CHECK(m.state() == State::kHello);
    const AttestAction& w = Last(m.OnHelloSent(now));
    REQUIRE(w.kind == Kind::kWait);
    CHECK(w.until == absl::InfiniteFuture());
    CHECK(m.state() == State::kWaitChallenge);
  }
  void Start() { Connect(m.Start(now), 0); }

  // Feeds `message`; expects a push of `nonce` at once. Returns the
  // challenge pushed.
  v1::Challenge ExpectPush(const Actions& actions, const std::string& nonce) {
    const AttestAction& a = Last(actions);
    REQUIRE(a.kind == Kind::kSendEvidence);
    CHECK(a.challenge.nonce() == nonce);
    CHECK(m.state() == State::kPush);
    return a.challenge;
  }
  // Evidence written at `now`; expects to wait for the reply.
  void Sent(std::optional<uint64_t> ima_sent_until) {
    const AttestAction& w = Last(m.OnEvidenceSent(now, ima_sent_until));
    REQUIRE(w.kind == Kind::kWait);
    CHECK(w.until == now + absl::Seconds(30));
    CHECK(m.state() == State::kWaitVerdict);
  }
  // Hello -> Challenge -> push -> Verdict: Idle with `next`.
  void ToIdle(const v1::Challenge& next) {
    Start();
    ExpectPush(m.OnMessage(now, ChallengeMessage(MakeChallenge("n0", 0))),
               "n0");
    now += absl::Milliseconds(300);
    Sent(next.has_ima_from() ? std::optional<uint64_t>(next.ima_from())
                             : std::nullopt);
    now += absl::Milliseconds(200);
    Last(m.OnMessage(now, VerdictMessage(next)));
    REQUIRE(m.state() == State::kIdle);
  }

  AttestStateMachine m;
  absl::Time now = kT0;
};

TEST_CASE(
    "attest machine: Hello, Challenge, push, Verdict, idle until the "
    "interval, push again",
    "[agent]") {
  LogCapture logs;
  Agent a;
  a.Start();
  a.ExpectPush(a.m.OnMessage(a.now, ChallengeMessage(MakeChallenge("n1", 0))),
               "n1");
  a.now += absl::Seconds(1);
  a.Sent(3);
  CHECK(a.m.ima_sent_until() == 3);
  CHECK(!a.m.challenge());  // Answered.

  a.now += absl::Milliseconds(500);
  const absl::Time verdict_at = a.now;
  const AttestAction& w = Last(a.m.OnMessage(
      a.now, VerdictMessage(
                 MakeChallenge("n2", 3, absl::Seconds(10), absl::Seconds(2)),
                 "att-42")));
  CHECK(a.m.state() == State::kIdle);
  CHECK(a.m.min_interval() == absl::Seconds(2));
  CHECK(a.m.next_push() == verdict_at + absl::Seconds(10));
  // Nothing may go before min_interval: the first wait ends there, without
  // watching the IMA log.
  REQUIRE(w.kind == Kind::kWait);
  CHECK(w.until == verdict_at + absl::Seconds(2));
  CHECK(!w.ima_from);
  CHECK(logs.Find({"msg=verdict", "attestation_id=att-42", "state=pass",
                   "verifier=v1:7000"})
            .size() == 1);

  a.now = verdict_at + absl::Seconds(2);
  const AttestAction& w2 = Last(a.m.OnTick(a.now));
  REQUIRE(w2.kind == Kind::kWait);
  CHECK(w2.until == verdict_at + absl::Seconds(10));
  CHECK(w2.ima_from == std::optional<uint64_t>(3));

  a.now = verdict_at + absl::Seconds(10) - absl::Nanoseconds(1);
  CHECK(Last(a.m.OnTick(a.now)).kind == Kind::kWait);
  CHECK(a.m.state() == State::kIdle);
  a.now += absl::Nanoseconds(1);
  a.ExpectPush(a.m.OnTick(a.now), "n2");
  a.Sent(3);
}

TEST_CASE("attest machine: a Verdict without interval waits 60 s", "[agent]") {
  Agent a;
  a.ToIdle(MakeChallenge("n1", std::nullopt));
  CHECK(a.m.next_push() == a.now + AttestStateMachine::kDefaultInterval);
  CHECK(a.m.min_interval() == absl::Seconds(1));
  // No ima_from in the challenge: no early push, nothing to watch.
  const AttestAction& w = Last(a.m.OnImaGrew(a.now + absl::Seconds(5)));
  CHECK(w.kind == Kind::kWait);
  CHECK(!w.ima_from);
  CHECK(w.until == a.now + absl::Seconds(60));
}

TEST_CASE(
    "attest machine: new IMA entries are pushed early, not before "
    "min_interval",
    "[agent]") {
  SECTION("the challenge's min_interval when larger") {
    Agent a;
    a.ToIdle(MakeChallenge("n1", 5, absl::Seconds(60), absl::Seconds(5)));
    const absl::Time verdict_at = a.now;
    CHECK(a.m.earliest_push() == verdict_at + absl::Seconds(5));
    const AttestAction& w =
        Last(a.m.OnImaGrew(verdict_at + absl::Milliseconds(4999)));
    CHECK(w.kind == Kind::kWait);
    CHECK(a.m.state() == State::kIdle);
    a.ExpectPush(a.m.OnImaGrew(verdict_at + absl::Seconds(5)), "n1");
  }
  SECTION("the configured min_push_interval when larger") {
    AttestStateMachine::Options o = TestOptions();
    o.min_push_interval = absl::Seconds(3);
    Agent a(o);
    a.ToIdle(MakeChallenge("n1", 5, absl::Seconds(60), absl::Seconds(1)));
    CHECK(a.m.min_interval() == absl::Seconds(3));
    CHECK(Last(a.m.OnImaGrew(a.now + absl::Seconds(2))).kind == Kind::kWait);
    a.ExpectPush(a.m.OnImaGrew(a.now + absl::Seconds(3)), "n1");
  }
  SECTION("the IMA watch starts from the entry after the last one sent") {
    Agent a;
    a.ToIdle(MakeChallenge("n1", 5, absl::Seconds(60)));
    const AttestAction& w = Last(a.m.OnTick(a.now + absl::Seconds(1)));
    CHECK(w.ima_from == std::optional<uint64_t>(5));
  }
  SECTION("not without an IMA log") {
    AttestStateMachine::Options o = TestOptions();
    o.has_ima = false;
    Agent a(o);
    a.ToIdle(MakeChallenge("n1", 5, absl::Seconds(60)));
    const AttestAction& w = Last(a.m.OnImaGrew(a.now + absl::Seconds(30)));
    CHECK(w.kind == Kind::kWait);
    CHECK(!w.ima_from);
  }
}

TEST_CASE("attest machine: a bare Challenge is answered at once", "[agent]") {
  Agent a;
  a.Start();
  a.ExpectPush(a.m.OnMessage(a.now, ChallengeMessage(MakeChallenge("n1", 9))),
               "n1");
  a.Sent(12);
  // Instead of a Verdict: more IMA wanted, a reboot seen (ima_from 0), or an
  // expired nonce. Answered in the same step.
  a.now += absl::Milliseconds(100);
  v1::Challenge pushed = a.ExpectPush(
      a.m.OnMessage(a.now, ChallengeMessage(MakeChallenge("n2", 0))), "n2");
  CHECK(pushed.ima_from() == 0);
  a.Sent(4);
  // Also while idle: it replaces the held Challenge.
  a.now += absl::Milliseconds(100);
  Last(a.m.OnMessage(
      a.now, VerdictMessage(MakeChallenge("n3", 4, absl::Seconds(60)))));
  REQUIRE(a.m.state() == State::kIdle);
  a.ExpectPush(a.m.OnMessage(a.now, ChallengeMessage(MakeChallenge("n4", 4))),
               "n4");
}

TEST_CASE(
    "attest machine: no reply within reply_timeout: back off, then the "
    "next verifier",
    "[agent]") {
  LogCapture logs;
  Agent a;
  a.Start();
  a.ExpectPush(a.m.OnMessage(a.now, ChallengeMessage(MakeChallenge("n1", 0))),
               "n1");
  a.Sent(0);
  const absl::Time sent_at = a.now;
  CHECK(Last(a.m.OnTick(sent_at + absl::Seconds(29))).kind == Kind::kWait);
  CHECK(a.m.state() == State::kWaitVerdict);
  a.now = sent_at + absl::Seconds(30);
  const Actions actions = a.m.OnTick(a.now);
  REQUIRE(actions.size() == 2);
  CHECK(actions[0].kind == Kind::kCloseStream);
  const AttestAction& w = Last(actions);
  REQUIRE(w.kind == Kind::kWait);
  CHECK(a.m.state() == State::kBackoff);
  CHECK(w.until >= a.now + absl::Milliseconds(500));
  CHECK(w.until <= a.now + absl::Seconds(1));
  CHECK(logs.Find({"no reply from the verifier", "verifier=v1:7000"}).size() ==
        1);
  CHECK(logs.Find({"attestation stream ended", "code=4", "level=warning"})
            .size() == 1);
  CHECK(Last(a.m.OnTick(w.until - absl::Nanoseconds(1))).kind == Kind::kWait);
  a.now = w.until;
  a.Connect(a.m.OnTick(a.now), 1);
}

TEST_CASE(
    "attest machine: a refusal's retry hint is honoured, spread out, and "
    "does not stop the next verifier being tried",
    "[agent]") {
  Agent a;
  a.Start();
  const absl::Status full =
      absl::ResourceExhaustedError("verifier at its stream limit");
  std::vector<absl::Duration> waits;
  for (int i = 0; i < 5; ++i) {
    const AttestAction& w =
        Last(a.m.OnStreamEnded(a.now, full, absl::Seconds(30)));
    REQUIRE(w.kind == Kind::kWait);
    CHECK(a.m.state() == State::kBackoff);
    const absl::Duration wait = w.until - a.now;
    INFO("attempt " << i << ": " << absl::FormatDuration(wait));
    CHECK(wait >= absl::Seconds(30));
    CHECK(wait < absl::Seconds(45));
    waits.push_back(wait);
    a.now = w.until;
    a.Connect(a.m.OnTick(a.now), static_cast<size_t>(i + 1) % 3);
  }
  CHECK(std::adjacent_find(waits.begin(), waits.end()) == waits.end());
  SECTION("without a hint the usual back-off applies") {
    const AttestAction& w = Last(a.m.OnStreamEnded(a.now, full));
    REQUIRE(w.kind == Kind::kWait);
    CHECK(w.until - a.now <= absl::Seconds(8));
  }
}

TEST_CASE(
    "attest machine: stream ended UNAVAILABLE: jittered back-off "
    "doubling to retry_max, each time the next verifier",
    "[agent]") {
  std::vector<absl::Duration> waits;
  Agent a;
  a.Start();
  size_t index = 0;
  for (int i = 0; i < 7; ++i) {
    const AttestAction& w = Last(
        a.m.OnStreamEnded(a.now, absl::UnavailableError("verifier draining")));
    REQUIRE(w.kind == Kind::kWait);
    CHECK(a.m.state() == State::kBackoff);
    const absl::Duration d =
        std::min(absl::Seconds(1) * (1 << i), absl::Seconds(8));
    const absl::Duration wait = w.until - a.now;
    INFO("attempt " << i << ": " << absl::FormatDuration(wait));
    CHECK(wait >= d / 2);
    CHECK(wait <= d);
    waits.push_back(wait);
    a.now = w.until;
    index = (index + 1) % 3;
    a.Connect(a.m.OnTick(a.now), index);
  }
  SECTION("the jitter comes from the seed alone") {
    Agent same;
    Agent other(TestOptions(), 7);
    same.Start();
    other.Start();
    const absl::Status down = absl::UnavailableError("down");
    size_t next = 0;
    bool differs = false;
    for (const absl::Duration& expected : waits) {
      next = (next + 1) % 3;
      const AttestAction w = Last(same.m.OnStreamEnded(same.now, down));
      CHECK(w.until - same.now == expected);
      same.now = w.until;
      same.Connect(same.m.OnTick(same.now), next);
      const AttestAction o = Last(other.m.OnStreamEnded(other.now, down));
      differs = differs || (o.until - other.now != expected);
      other.now = o.until;
      other.Connect(other.m.OnTick(other.now), next);
    }
    CHECK(differs);
  }
  SECTION("a stream that had a Verdict starts the back-off over") {
    a.ExpectPush(a.m.OnMessage(a.now, ChallengeMessage(MakeChallenge("n1", 0))),
                 "n1");
    a.Sent(0);
    Last(a.m.OnMessage(a.now, VerdictMessage(MakeChallenge("n2", 0))));
    const AttestAction& w =
        Last(a.m.OnStreamEnded(a.now, absl::UnavailableError("gone")));
    CHECK(w.until - a.now <= absl::Seconds(1));
  }
}

TEST_CASE("attest machine: ABORTED reconnects at once to the next verifier",
          "[agent]") {
  LogCapture logs;
  Agent a;
  a.ToIdle(MakeChallenge("n1", 0, absl::Seconds(10)));
  a.Connect(a.m.OnStreamEnded(a.now, absl::AbortedError("taken over")), 1);
  CHECK(
      logs.Find({"attestation stream ended", "code=10", "retry_in=0"}).size() ==
      1);
  // The stream's state starts over.
  CHECK(!a.m.challenge());
  CHECK(a.m.ima_sent_until() == 0);
  // ABORTED does not count as a failed attempt.
  Agent b;
  b.Start();
  for (size_t i = 1; i <= 4; ++i) {
    b.Connect(b.m.OnStreamEnded(b.now, absl::AbortedError("taken")), i % 3);
  }
  const AttestAction w =
      Last(b.m.OnStreamEnded(b.now, absl::UnavailableError("down")));
  CHECK(w.until - b.now <= absl::Seconds(1));
}

TEST_CASE(
    "attest machine: FAILED_PRECONDITION and PERMISSION_DENIED back off "
    "and are logged as errors",
    "[agent]") {
  for (const absl::Status& status :
       {absl::FailedPreconditionError("agent not enrolled"),
        absl::PermissionDeniedError("wrong identity")}) {
    LogCapture logs;
    Agent a;
    a.Start();
    const AttestAction& w = Last(a.m.OnStreamEnded(a.now, status));
    REQUIRE(w.kind == Kind::kWait);
    CHECK(w.until > a.now);
    CHECK(a.m.state() == State::kBackoff);
    CHECK(logs.Find({"attestation stream ended", "level=error",
                     absl::StrCat("code=", static_cast<int>(status.code()))})
              .size() == 1);
  }
  // Others are warnings.
  LogCapture logs;
  Agent a;
  a.Start();
  Last(a.m.OnStreamEnded(a.now, absl::UnavailableError("down")));
  CHECK(logs.Find({"attestation stream ended", "level=warning", "code=14"})
            .size() == 1);
}

TEST_CASE("attest machine: a stream that cannot be opened backs off",
          "[agent]") {
  Agent a;
  REQUIRE(Last(a.m.Start(a.now)).kind == Kind::kOpenStream);
  const AttestAction& w =
      Last(a.m.OnStreamEnded(a.now, absl::InvalidArgumentError("bad CA file")));
  CHECK(w.kind == Kind::kWait);
  CHECK(a.m.state() == State::kBackoff);
  a.Connect(a.m.OnTick(w.until), 1);
}

TEST_CASE(
    "attest machine: a TPM failure sends an AgentError, then backs off "
    "before answering",
    "[agent]") {
  LogCapture logs;
  Agent a;
  a.Start();
  v1::Challenge c = MakeChallenge("n1", 0);
  a.ExpectPush(a.m.OnMessage(a.now, ChallengeMessage(c)), "n1");
  absl::Duration expected = absl::Seconds(1);
  for (int i = 0; i < 8; ++i) {
    const Actions actions =
        a.m.OnEvidenceFailed(a.now, absl::UnavailableError("TPM busy"));
    REQUIRE(actions.size() == 2);
    CHECK(actions[0].kind == Kind::kSendAgentError);
    CHECK(actions[0].error_code == 14);
    CHECK(actions[0].error_message == "TPM busy");
    const AttestAction& w = Last(actions);
    CHECK(w.kind == Kind::kWait);
    CHECK(w.until == a.now + absl::Seconds(30));
    CHECK(a.m.state() == State::kWaitVerdict);
    CHECK(a.m.error_backoff() == expected);
    // The verifier answers with a fresh Challenge: held, not answered yet.
    a.now += absl::Milliseconds(50);
    const absl::Time got = a.now;
    const AttestAction& held = Last(a.m.OnMessage(
        a.now, ChallengeMessage(MakeChallenge(absl::StrCat("r", i), 0))));
    CHECK(held.kind == Kind::kWait);
    CHECK(a.m.state() == State::kIdle);
    CHECK(held.until == got + expected);
    CHECK(Last(a.m.OnTick(got + expected - absl::Milliseconds(1))).kind ==
          Kind::kWait);
    a.now = got + expected;
    a.ExpectPush(a.m.OnTick(a.now), absl::StrCat("r", i));
    expected = std::min(expected * 2, absl::Seconds(60));
  }
  CHECK(a.m.error_backoff() == absl::Seconds(60));
  CHECK(logs.Find({"cannot answer the challenge", "TPM busy"}).size() == 8);
  // A Verdict clears it: the next bare Challenge is answered at once.
  a.Sent(0);
  Last(a.m.OnMessage(a.now, VerdictMessage(MakeChallenge("n2", 0))));
  CHECK(a.m.error_backoff() == absl::ZeroDuration());
  a.ExpectPush(a.m.OnMessage(a.now, ChallengeMessage(MakeChallenge("n3", 0))),
               "n3");
}

TEST_CASE("attest machine: a long AgentError message is cut to 256 bytes",
          "[agent]") {
  Agent a;
  a.Start();
  a.ExpectPush(a.m.OnMessage(a.now, ChallengeMessage(MakeChallenge("n1", 0))),
               "n1");
  const Actions actions =
      a.m.OnEvidenceFailed(a.now, absl::InternalError(std::string(1000, 'x')));
  REQUIRE(actions[0].kind == Kind::kSendAgentError);
  CHECK(actions[0].error_message.size() == 256);
  CHECK(actions[0].error_code == 13);
}

TEST_CASE(
    "attest machine: a StreamError delays the next push by retry_after, "
    "at least 1 s",
    "[agent]") {
  Agent a;
  a.ToIdle(MakeChallenge("n1", 0, absl::Seconds(60)));
  const AttestAction& w =
      Last(a.m.OnMessage(a.now, StreamErrorMessage(absl::Seconds(5))));
  CHECK(w.until == a.now + absl::Seconds(5));
  CHECK(a.m.earliest_push() == a.now + absl::Seconds(5));
  CHECK(Last(a.m.OnImaGrew(a.now + absl::Seconds(4))).kind == Kind::kWait);
  a.ExpectPush(a.m.OnTick(a.now + absl::Seconds(5)), "n1");
  a.Sent(0);
  Last(a.m.OnMessage(
      a.now, VerdictMessage(MakeChallenge("n2", 0, absl::Seconds(60)))));
  Last(a.m.OnMessage(a.now, StreamErrorMessage(absl::Milliseconds(10))));
  CHECK(a.m.next_push() == a.now + absl::Seconds(1));
}

TEST_CASE(
    "attest machine: a StreamError in reply to Evidence pushes the same "
    "Challenge again after retry_after",
    "[agent]") {
  // attestation.proto: after a StreamError the outstanding Challenge stays
  // valid, so the agent answers it again once retry_after has passed.
  Agent a;
  a.Start();
  a.ExpectPush(a.m.OnMessage(a.now, ChallengeMessage(MakeChallenge("n1", 0))),
               "n1");
  a.Sent(0);
  const AttestAction& w =
      Last(a.m.OnMessage(a.now, StreamErrorMessage(absl::Seconds(2))));
  CHECK(w.kind == Kind::kWait);
  CHECK(w.until == a.now + absl::Seconds(2));
  CHECK(Last(a.m.OnTick(a.now + absl::Seconds(1))).kind == Kind::kWait);
  a.ExpectPush(a.m.OnTick(a.now + absl::Seconds(2)), "n1");
}

TEST_CASE(
    "attest machine: a StateNotice is not a reply: the reply timeout still "
    "runs",
    "[agent]") {
  Agent a;
  a.Start();
  a.ExpectPush(a.m.OnMessage(a.now, ChallengeMessage(MakeChallenge("n1", 0))),
               "n1");
  a.Sent(0);
  v1::VerifierMessage notice;
  notice.mutable_state_notice()->set_state(v1::ATTESTATION_STATE_FAIL);
  const AttestAction& w = Last(a.m.OnMessage(a.now, notice));
  CHECK(w.kind == Kind::kWait);
  CHECK(w.until != absl::InfiniteFuture());
  CHECK(a.m.state() == State::kWaitVerdict);
}

TEST_CASE("attest machine: a StateNotice is logged and changes nothing else",
          "[agent]") {
  LogCapture logs;
  Agent a;
  a.ToIdle(MakeChallenge("n1", 0, absl::Seconds(10)));
  const absl::Time next = a.m.next_push();
  v1::VerifierMessage notice;
  notice.mutable_state_notice()->set_state(v1::ATTESTATION_STATE_UNENROLLED);
  const AttestAction& w = Last(a.m.OnMessage(a.now, notice));
  CHECK(w.kind == Kind::kWait);
  CHECK(a.m.state() == State::kIdle);
  CHECK(a.m.next_push() == next);
  REQUIRE(a.m.challenge());
  CHECK(a.m.challenge()->nonce() == "n1");
  CHECK(logs.Find({"msg=\"state notice\"", "state=unenrolled", "level=warning"})
            .size() == 1);
  // A message kind this agent does not know is ignored the same way.
  CHECK(Last(a.m.OnMessage(a.now, v1::VerifierMessage())).kind == Kind::kWait);
  CHECK(a.m.state() == State::kIdle);
}

TEST_CASE("attest machine: a stop request exits from every state", "[agent]") {
  struct Case {
    State state;
    bool stream_open;
  };
  for (const Case& c : std::vector<Case>{{State::kConnect, false},
                                         {State::kHello, true},
                                         {State::kWaitChallenge, true},
                                         {State::kPush, true},
                                         {State::kWaitVerdict, true},
                                         {State::kIdle, true},
                                         {State::kBackoff, false}}) {
    LogCapture logs;
    Agent a;
    Last(a.m.Start(a.now));
    if (c.state != State::kConnect) Last(a.m.OnStreamOpened(a.now));
    if (c.state == State::kBackoff) {
      Last(a.m.OnStreamEnded(a.now, absl::UnavailableError("down")));
    } else if (c.state != State::kConnect && c.state != State::kHello) {
      Last(a.m.OnHelloSent(a.now));
      if (c.state != State::kWaitChallenge) {
        Last(a.m.OnMessage(a.now, ChallengeMessage(MakeChallenge("n", 0))));
      }
      if (c.state == State::kWaitVerdict || c.state == State::kIdle) {
        Last(a.m.OnEvidenceSent(a.now, 0));
      }
      if (c.state == State::kIdle) {
        Last(a.m.OnMessage(a.now, VerdictMessage(MakeChallenge("n", 0))));
      }
    }
    REQUIRE(a.m.state() == c.state);
    INFO(AttestStateName(c.state));
    const Actions actions = a.m.OnStop(15);
    CHECK(Last(actions).kind == Kind::kExit);
    CHECK(Last(actions).exit_code == 0);
    CHECK(Has(actions, Kind::kCloseStream) == c.stream_open);
    CHECK(a.m.state() == State::kStopped);
    CHECK(logs.Find({"agent stopping", "signal=15"}).size() == 1);
  }
}

TEST_CASE("attest machine: events out of order are ignored", "[agent]") {
  Agent a;
  a.ToIdle(MakeChallenge("n1", 0, absl::Seconds(10)));
  CHECK(a.m.OnHelloSent(a.now).empty());
  CHECK(a.m.OnStreamOpened(a.now).empty());
  CHECK(a.m.OnEvidenceSent(a.now, 99).empty());
  CHECK(a.m.OnEvidenceFailed(a.now, absl::InternalError("x")).empty());
  CHECK(a.m.state() == State::kIdle);
  CHECK(a.m.ima_sent_until() == 0);
  // A verifier message while the agent is pushing cannot come from the
  // driver; it is not taken.
  a.ExpectPush(a.m.OnTick(a.now + absl::Seconds(10)), "n1");
  CHECK(a.m.OnMessage(a.now, ChallengeMessage(MakeChallenge("x", 0))).empty());
  CHECK(a.m.state() == State::kPush);
}

TEST_CASE("attest machine: no verifier configured exits", "[agent]") {
  AttestStateMachine::Options o = TestOptions();
  o.verifiers.clear();
  AttestStateMachine m(o, 1);
  const Actions actions = m.Start(kT0);
  CHECK(Last(actions).kind == Kind::kExit);
  CHECK(Last(actions).exit_code != 0);
}

TEST_CASE("attest machine: state names match docs/agent.md", "[agent]") {
  CHECK(AttestStateName(State::kConnect) == "Connect");
  CHECK(AttestStateName(State::kWaitChallenge) == "WaitChallenge");
  CHECK(AttestStateName(State::kWaitVerdict) == "WaitVerdict");
  CHECK(AttestStateName(State::kBackoff) == "Backoff");
}

}  // namespace
}  // namespace vouch::agent
