// The attestation session's every path of docs/protocol.md, without gRPC,
// swtpm or PostgreSQL: SoftAik quotes, generated IMA logs, the in-memory
// store twin (which passes the same contract tests as PostgreSQL) and the
// real PolicyCache over it.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "common/file.h"
#include "core/attest/evidence.h"
#include "core/boot/boot_policy.h"
#include "core/tpm/tpm_wire.h"
#include "verifier/session_util.h"

namespace vouch::verifier::testing {
namespace {

using State = AttestationSession::State;

v1::AgentMessage AgentError() {
  v1::AgentMessage m;
  m.mutable_agent_error()->set_code(14);
  m.mutable_agent_error()->set_message("TPM busy");
  return m;
}

bool HasFailure(const v1::Verdict& v, v1::FailureCode code) {
  for (const v1::Failure& f : v.failures()) {
    if (f.code() == code) return true;
  }
  return false;
}

// Enrolls `agent` (policy "web"), connects, and sends the first Evidence,
// which passes.
Reply FirstPass(SessionTest& t, SoftAgent& agent,
                std::unique_ptr<AttestationSession>* s) {
  t.Enroll(agent);
  v1::Challenge c;
  *s = t.Connect(agent, &c);
  Reply r = t.Send(**s, agent.Evidence(c));
  REQUIRE(r.verdict());
  CHECK(r.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
  return r;
}

TEST_CASE("session: Hello, Challenge, Evidence, a committed Verdict",
          "[core][session]") {
  SessionTest t;
  SoftAgent agent("node-1");
  t.Enroll(agent);
  std::unique_ptr<AttestationSession> s = t.Open(agent.id());
  CHECK(s->state() == State::kAwaitHello);
  Reply hello = t.Send(*s, agent.Hello());
  CHECK(hello.takeovers == 1);
  REQUIRE(hello.holds.size() == 1);
  CHECK(hello.holds[0] == 1);
  REQUIRE(hello.challenge());
  const v1::Challenge c = hello.last().challenge();
  CHECK(c.nonce().size() == 32);
  CHECK(c.ima_from() == 0);
  CHECK(!c.want_boot_log());
  REQUIRE(c.pcr_selection().banks_size() == 1);
  CHECK(c.pcr_selection().banks(0).pcr_indices_size() == 1);
  CHECK(c.pcr_selection().banks(0).pcr_indices(0) == 10);
  CHECK(s->state() == State::kReady);

  Reply r = t.Send(*s, agent.Evidence(c));
  CHECK(r.commits == 1);
  REQUIRE(r.verdict());
  const v1::Verdict& v = r.last().verdict();
  INFO(v.DebugString());
  CHECK(v.state() == v1::ATTESTATION_STATE_PASS);
  CHECK(v.agent_state() == v1::ATTESTATION_STATE_PASS);
  CHECK(v.ima_next_entry() == 3);
  CHECK(v.next_challenge().ima_from() == 3);
  CHECK(v.next_challenge().nonce() != c.nonce());
  // Committed before it was sent.
  absl::StatusOr<store::AgentRow> row = t.store.GetAgent("default", "node-1");
  REQUIRE(row.ok());
  CHECK(row->state == v1::ATTESTATION_STATE_PASS);
  CHECK(row->ima_next_entry == 3);
  CHECK(row->last_attestation_id == v.attestation_id());
  CHECK(row->runtime_policy_version == 1);

  // A new measurement, pushed after min_interval: only the new entry.
  agent.Measure("/usr/bin/tool1", 1);
  t.now += absl::Seconds(2);
  Reply r2 = t.Send(*s, agent.Evidence(v.next_challenge()));
  REQUIRE(r2.verdict());
  CHECK(r2.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
  CHECK(r2.last().verdict().ima_next_entry() == 4);
  CHECK(t.store.History("default", "node-1", 10)->size() == 2);
}

TEST_CASE("session: Hello refusals", "[core][session]") {
  SessionTest t;
  SoftAgent agent("node-1");
  SoftAgent stranger("node-9");  // Registered nowhere, enrolled nowhere.
  t.Enroll(agent);
  // Each Hello, from the identity `as`, ends the stream with `code`.
  struct Case {
    const char* name;
    std::string as;
    v1::AgentMessage hello;
    absl::StatusCode code;
    int holds;
  };
  std::vector<Case> cases;
  cases.push_back({"another identity", "node-2", agent.Hello(),
                   absl::StatusCode::kPermissionDenied, 0});
  v1::Challenge none;
  cases.push_back({"evidence first", "node-1", agent.Evidence(none),
                   absl::StatusCode::kInvalidArgument, 0});
  v1::AgentMessage aik = agent.Hello();
  aik.mutable_hello()->set_aik_name(std::string(34, 'x'));
  // It took the agent, then let go.
  cases.push_back({"an AIK that is not the registrar's", "node-1", aik,
                   absl::StatusCode::kFailedPrecondition, 1});
  cases.push_back({"not enrolled", "node-9", stranger.Hello(),
                   absl::StatusCode::kFailedPrecondition, 0});
  v1::AgentMessage bound = agent.Hello();
  bound.mutable_hello()->set_boot_id(std::string(65, 'b'));
  cases.push_back({"a field over its bound", "node-1", bound,
                   absl::StatusCode::kInvalidArgument, 0});
  v1::AgentMessage banks = agent.Hello();
  banks.mutable_hello()->mutable_capabilities()->clear_pcr_banks();
  cases.push_back({"no SHA-256 bank", "node-1", banks,
                   absl::StatusCode::kFailedPrecondition, 0});
  for (const Case& c : cases) {
    INFO(c.name);
    std::unique_ptr<AttestationSession> s = t.Open(c.as);
    Reply r = t.Send(*s, c.hello);
    REQUIRE(r.ended);
    CHECK(r.ended->code() == c.code);
    CHECK(static_cast<int>(r.holds.size()) == c.holds);
    CHECK(s->state() == State::kClosed);
  }
  SECTION("a second Hello") {
    v1::Challenge c;
    std::unique_ptr<AttestationSession> s = t.Connect(agent, &c);
    Reply r = t.Send(*s, agent.Hello());
    REQUIRE(r.ended);
    CHECK(absl::IsInvalidArgument(*r.ended));
  }
  SECTION("too many Hellos") {
    t.env.hellos_allowed_ = 0;
    std::unique_ptr<AttestationSession> s = t.Open("node-1");
    Reply r = t.Send(*s, agent.Hello());
    REQUIRE(r.ended);
    CHECK(absl::IsResourceExhausted(*r.ended));
  }
}

TEST_CASE("session: wrong, expired and replayed nonces", "[core][session]") {
  SessionTest t;
  SoftAgent agent("node-1");
  t.Enroll(agent);
  v1::Challenge c;
  std::unique_ptr<AttestationSession> s = t.Connect(agent, &c);

  SECTION("a quote of another nonce fails, and the failure latches") {
    SoftAgent::Options o;
    o.nonce = std::string(32, 'n');
    Reply r = t.Send(*s, agent.Evidence(c, o));
    REQUIRE(r.verdict());
    CHECK(r.last().verdict().state() == v1::ATTESTATION_STATE_FAIL);
    CHECK(HasFailure(r.last().verdict(), v1::FAILURE_CODE_NONCE_MISMATCH));
    CHECK(r.last().verdict().ima_next_entry() == 0);  // Nothing proven.
    t.now += absl::Seconds(2);
    Reply ok = t.Send(*s, agent.Evidence(r.last().verdict().next_challenge()));
    REQUIRE(ok.verdict());
    CHECK(ok.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
    CHECK(ok.last().verdict().agent_state() == v1::ATTESTATION_STATE_FAIL);
  }
  SECTION("an expired nonce is not evaluated: a fresh Challenge") {
    t.now += absl::Seconds(2 * 10 + 31);
    Reply r = t.Send(*s, agent.Evidence(c));
    CHECK(r.commits == 0);
    REQUIRE(r.challenge());
    CHECK(r.last().challenge().nonce() != c.nonce());
    CHECK(t.store.History("default", "node-1", 10)->empty());
  }
  SECTION("a replayed quote (an earlier nonce) fails") {
    v1::AgentMessage first = agent.Evidence(c);
    Reply r = t.Send(*s, first);
    REQUIRE(r.verdict());
    CHECK(r.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
    t.now += absl::Seconds(2);
    // Replayed whole, its IMA chunk no longer starts where asked.
    Reply whole = t.Send(*s, first);
    REQUIRE(whole.error());
    CHECK(whole.commits == 0);
    // The old quote with a fitting chunk is evaluated, and fails.
    v1::AgentMessage replay =
        agent.Evidence(r.last().verdict().next_challenge());
    replay.mutable_evidence()->set_quote(first.evidence().quote());
    replay.mutable_evidence()->set_signature(first.evidence().signature());
    Reply again = t.Send(*s, replay);
    REQUIRE(again.verdict());
    CHECK(again.last().verdict().state() == v1::ATTESTATION_STATE_FAIL);
    CHECK(HasFailure(again.last().verdict(), v1::FAILURE_CODE_NONCE_MISMATCH));
  }
  SECTION("a quote signed by another key fails") {
    v1::AgentMessage ev = agent.Evidence(c);
    std::string sig = ev.evidence().signature();
    sig[sig.size() - 1] ^= 1;
    ev.mutable_evidence()->set_signature(sig);
    Reply r = t.Send(*s, ev);
    REQUIRE(r.verdict());
    CHECK(HasFailure(r.last().verdict(),
                     v1::FAILURE_CODE_QUOTE_SIGNATURE_INVALID));
  }
  SECTION("an empty message is a StreamError; the stream reads on") {
    v1::AgentMessage empty;
    Reply r = t.Send(*s, empty);
    REQUIRE(r.error());
    CHECK(r.last().error().code() ==
          static_cast<int>(absl::StatusCode::kInvalidArgument));
    CHECK(r.read_next);
  }
}

TEST_CASE("session: IMA gap, overlap, truncated chunk, tampered entry",
          "[core][session]") {
  SessionTest t;
  SoftAgent agent("node-1");
  t.Enroll(agent);
  v1::Challenge c;
  std::unique_ptr<AttestationSession> s = t.Connect(agent, &c);
  Reply first = t.Send(*s, agent.Evidence(c));
  REQUIRE(first.verdict());
  c = first.last().verdict().next_challenge();
  REQUIRE(c.ima_from() == 3);
  agent.Measure("/usr/bin/tool2", 2);
  agent.Measure("/usr/bin/tool1", 1);
  t.now += absl::Seconds(2);

  SECTION("a gap (entries from later than asked) is refused, then fixed") {
    SoftAgent::Options o;
    o.first = 4;
    Reply r = t.Send(*s, agent.Evidence(c, o));
    REQUIRE(r.error());
    CHECK(r.last().error().code() ==
          static_cast<int>(absl::StatusCode::kInvalidArgument));
    CHECK(r.commits == 0);
    Reply ok = t.Send(*s, agent.Evidence(c));  // The challenge stays valid.
    REQUIRE(ok.verdict());
    CHECK(ok.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
    CHECK(ok.last().verdict().ima_next_entry() == 5);
  }
  SECTION("an overlap (entries from earlier than asked) is refused") {
    SoftAgent::Options o;
    o.first = 1;
    Reply r = t.Send(*s, agent.Evidence(c, o));
    REQUIRE(r.error());
    CHECK(r.commits == 0);
  }
  SECTION("a truncated chunk is held and the rest asked for") {
    SoftAgent::Options o;
    o.last = 4;
    o.truncated = true;
    Reply part = t.Send(*s, agent.Evidence(c, o));
    CHECK(part.commits == 0);
    REQUIRE(part.challenge());
    CHECK(part.last().challenge().ima_from() == 4);
    Reply rest = t.Send(*s, agent.Evidence(part.last().challenge()));
    REQUIRE(rest.verdict());
    CHECK(rest.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
    CHECK(rest.last().verdict().ima_next_entry() == 5);
    CHECK(t.store.GetAgent("default", "node-1")->ima_next_entry == 5);
  }
  SECTION("held bytes count against the verifier's budget until proven") {
    SoftAgent::Options o;
    o.last = 4;
    o.truncated = true;
    Reply part = t.Send(*s, agent.Evidence(c, o));
    REQUIRE(part.challenge());
    CHECK(t.env.held_ima_bytes_ > 0);
    Reply rest = t.Send(*s, agent.Evidence(part.last().challenge()));
    REQUIRE(rest.verdict());
    CHECK(t.env.held_ima_bytes_ == 0);
  }
  SECTION("a full budget ends the stream RESOURCE_EXHAUSTED, holding none") {
    t.env.ima_budget_ = 1;
    SoftAgent::Options o;
    o.last = 4;
    o.truncated = true;
    Reply part = t.Send(*s, agent.Evidence(c, o));
    CHECK(part.commits == 0);
    REQUIRE(part.ended);
    CHECK(part.ended->code() == absl::StatusCode::kResourceExhausted);
    CHECK(t.env.held_ima_bytes_ == 0);
    CHECK(t.store.GetAgent("default", "node-1")->ima_next_entry == 3);
  }
  SECTION("a session that ends holding bytes returns them") {
    SoftAgent::Options o;
    o.last = 4;
    o.truncated = true;
    REQUIRE(t.Send(*s, agent.Evidence(c, o)).challenge());
    CHECK(t.env.held_ima_bytes_ > 0);
    s.reset();
    CHECK(t.env.held_ima_bytes_ == 0);
  }
  SECTION("the log may run ahead of the quote: the proven prefix counts") {
    SoftAgent::Options o;
    o.quoted = 4;
    Reply r = t.Send(*s, agent.Evidence(c, o));
    REQUIRE(r.verdict());
    CHECK(r.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
    CHECK(r.last().verdict().ima_next_entry() == 4);
    // The entry past the quote is not counted as received until a later
    // quote proves it (received entries add up to the position).
    store::HistoryQuery q;
    q.tenant = "default";
    q.agent_id = "node-1";
    absl::StatusOr<std::vector<store::HistoryRow>> h = t.store.QueryHistory(q);
    REQUIRE(h.ok());
    REQUIRE(h->size() == 2);
    for (const store::HistoryRow& row : *h) {
      REQUIRE(row.row.ima_next_entry.has_value());
      CHECK(row.row.ima_entries_received ==
            *row.row.ima_next_entry - row.row.ima_from.value_or(0));
    }
  }
  SECTION("a log that is not what PCR 10 says fails") {
    v1::AgentMessage ev = agent.Evidence(c);
    std::string data = ev.evidence().ima_entries().data();
    const size_t at = data.find("tool2");
    REQUIRE(at != std::string::npos);
    data[at + 4] = '9';
    ev.mutable_evidence()->mutable_ima_entries()->set_data(data);
    Reply r = t.Send(*s, ev);
    REQUIRE(r.verdict());
    CHECK(r.last().verdict().state() == v1::ATTESTATION_STATE_FAIL);
    CHECK(r.last().verdict().ima_next_entry() == 3);
  }
  SECTION("a file the policy does not allow fails, naming it") {
    agent.Measure("/tmp/evil", 99);
    Reply r = t.Send(*s, agent.Evidence(c));
    REQUIRE(r.verdict());
    const v1::Verdict& v = r.last().verdict();
    CHECK(v.state() == v1::ATTESTATION_STATE_FAIL);
    REQUIRE(v.failures_size() == 1);
    CHECK(v.failures(0).code() == v1::FAILURE_CODE_IMA_FILE_NOT_IN_POLICY);
    CHECK(v.failures(0).path() == "/tmp/evil");
    CHECK(v.failures(0).ima_entry_index() == 5);
    CHECK(t.store.GetAgent("default", "node-1")->state ==
          v1::ATTESTATION_STATE_FAIL);
  }
}

TEST_CASE("session: a flood is slowed, then cut off", "[core][session]") {
  SessionTest t;
  t.options.max_early_pushes = 3;
  SoftAgent agent("node-1");
  t.Enroll(agent);
  v1::Challenge c;
  std::unique_ptr<AttestationSession> s = t.Connect(agent, &c);
  Reply r = t.Send(*s, agent.Evidence(c));
  REQUIRE(r.verdict());
  c = r.last().verdict().next_challenge();
  for (int i = 0; i < 3; ++i) {
    t.now += absl::Milliseconds(100);
    Reply early = t.Send(*s, agent.Evidence(c));
    REQUIRE(early.error());
    CHECK(early.last().error().code() ==
          static_cast<int>(absl::StatusCode::kResourceExhausted));
    CHECK(early.last().error().has_retry_after());
    CHECK(early.commits == 0);
  }
  t.now += absl::Milliseconds(100);
  Reply cut = t.Send(*s, agent.Evidence(c));
  REQUIRE(cut.ended);
  CHECK(absl::IsResourceExhausted(*cut.ended));
  CHECK(s->state() == State::kClosed);

  SECTION("errors reported too fast are cut off too") {
    std::unique_ptr<AttestationSession> s2 = t.Connect(agent, &c);
    Reply last;
    for (int i = 0; i < 5 && !last.ended; ++i) last = t.Send(*s2, AgentError());
    REQUIRE(last.ended);
    CHECK(absl::IsResourceExhausted(*last.ended));
  }
}

TEST_CASE("session: an AgentError gets a fresh Challenge", "[core][session]") {
  SessionTest t;
  SoftAgent agent("node-1");
  t.Enroll(agent);
  v1::Challenge c;
  std::unique_ptr<AttestationSession> s = t.Connect(agent, &c);
  t.now += absl::Seconds(5);
  Reply r = t.Send(*s, AgentError());
  REQUIRE(r.challenge());
  CHECK(r.last().challenge().nonce() != c.nonce());
  CHECK(r.commits == 0);
}

TEST_CASE("session: takeover by a newer stream ends the old one (ABORTED)",
          "[core][session]") {
  SessionTest t;
  SoftAgent agent("node-1");
  t.Enroll(agent);
  v1::Challenge c1, c2;
  std::unique_ptr<AttestationSession> old = t.Connect(agent, &c1);
  std::unique_ptr<AttestationSession> fresh = t.Connect(agent, &c2);
  CHECK(fresh->epoch() == old->epoch() + 1);
  Reply r = t.Send(*old, agent.Evidence(c1));
  CHECK(r.commits == 1);
  REQUIRE(r.ended);
  CHECK(absl::IsAborted(*r.ended));
  CHECK(r.sent.empty());  // No verdict for a fenced commit.
  CHECK(t.store.History("default", "node-1", 10)->empty());
  Reply ok = t.Send(*fresh, agent.Evidence(c2));
  REQUIRE(ok.verdict());
  CHECK(ok.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
}

TEST_CASE(
    "session: another AIK activated mid-stream: no verdict, the stream ends "
    "(ABORTED), and the Hello with the old AIK is refused",
    "[core][session][registrar]") {
  SessionTest t;
  SoftAgent agent("node-1");
  t.Enroll(agent);
  v1::Challenge c;
  std::unique_ptr<AttestationSession> s = t.Connect(agent, &c);
  // The registrar activates another AIK of the same TPM.
  t.store.SetRegistration("default", "node-1", "other-public", "other-name");
  Reply r = t.Send(*s, agent.Evidence(c));
  CHECK(r.commits == 1);
  REQUIRE(r.ended);
  CHECK(absl::IsAborted(*r.ended));
  CHECK(r.sent.empty());  // No verdict for a fenced commit.
  CHECK(t.store.History("default", "node-1", 10)->empty());
  // The agent reconnects; its Hello names the old AIK.
  std::unique_ptr<AttestationSession> again = t.Open("node-1");
  Reply hello = t.Send(*again, agent.Hello());
  REQUIRE(hello.ended);
  CHECK(absl::IsFailedPrecondition(*hello.ended));
}

TEST_CASE("session: unenrolled mid-stream: a StateNotice, FAILED_PRECONDITION",
          "[core][session]") {
  SessionTest t;
  SoftAgent agent("node-1");
  t.Enroll(agent);
  v1::Challenge c;
  std::unique_ptr<AttestationSession> s = t.Connect(agent, &c);
  REQUIRE(t.store.Unenroll("default", "node-1").ok());
  Reply r = t.Send(*s, agent.Evidence(c));
  REQUIRE(r.ended);
  CHECK(absl::IsFailedPrecondition(*r.ended));
  REQUIRE(r.sent.size() == 1);
  REQUIRE(r.sent[0].has_state_notice());
  CHECK(r.sent[0].state_notice().state() == v1::ATTESTATION_STATE_UNENROLLED);
  CHECK(r.sent[0].state_notice().cause() == v1::STATE_CHANGE_CAUSE_UNENROLLED);
  // The sweeper's view of the same: what Fenced returns.
  SessionActions swept =
      AttestationSession::Fenced("node-1", 1, /*enrolled=*/true, t.now);
  REQUIRE(swept.size() == 1);
  CHECK(absl::IsAborted(swept[0].status));
}

TEST_CASE("session: a reboot asks for both logs from the start",
          "[core][session]") {
  SessionTest t;
  SoftAgent agent("node-1");
  t.Enroll(agent);
  v1::Challenge c;
  std::unique_ptr<AttestationSession> s = t.Connect(agent, &c);
  Reply r = t.Send(*s, agent.Evidence(c));
  REQUIRE(r.verdict());
  c = r.last().verdict().next_challenge();
  agent.Reboot();
  t.now += absl::Seconds(2);
  // The agent answers the old challenge (from entry 3) after its reboot:
  // the quote's higher resetCount, not the agent's word, says so.
  SoftAgent::Options o;
  o.first = 3;
  Reply seen = t.Send(*s, agent.Evidence(c, o));
  CHECK(seen.commits == 0);
  REQUIRE(seen.challenge());
  CHECK(seen.last().challenge().ima_from() == 0);
  Reply ok = t.Send(*s, agent.Evidence(seen.last().challenge()));
  REQUIRE(ok.verdict());
  CHECK(ok.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
  CHECK(ok.last().verdict().ima_next_entry() == 1);
  CHECK(t.store.GetAgent("default", "node-1")->reset_count == 2);
}

TEST_CASE(
    "session: a key from the IMA log's keyring entry verifies "
    "signatures on any verifier of the pool, until a reboot",
    "[core][session]") {
  namespace itest = core::ima::testing;
  SessionTest t;
  SoftAgent agent("node-1");
  EvpPkeyPtr key = itest::NewKey(false);
  const std::string cert = itest::CertDer(key.get());
  REQUIRE(!cert.empty());
  const uint32_t key_id = *core::ima::ImaKeyIdV2(key.get());
  agent.Append(itest::KeyringEntry(".ima", cert));
  // The policy lists the machine's files so far and the key by digest; the
  // signed file below it does not list.
  std::string policy = t.PolicyFor(agent);
  policy.insert(policy.size() - 1,
                absl::StrCat(R"(, "keyrings": {".ima": [")",
                             absl::BytesToHexString(AsString(itest::Hash(
                                 core::ima::HashAlg::kSha256, cert))),
                             "\"]}"));
  t.PutPolicy("web", policy);
  std::unique_ptr<AttestationSession> s;
  Reply first = FirstPass(t, agent, &s);
  CHECK(!t.store.GetAgent("default", "node-1")->ima_learned_keys.empty());

  auto signed_file = [&] {
    return itest::SignedEntry(
        "/opt/app/bin", 50,
        itest::ImaSign(key.get(), itest::FileDigest(50), 4, key_id));
  };
  agent.Append(signed_file());
  t.now += absl::Seconds(2);
  // Another verifier continues the agent from the store.
  v1::Challenge c;
  std::unique_ptr<AttestationSession> other = t.Connect(agent, &c);
  CHECK(c.ima_from() == 4);
  Reply r = t.Send(*other, agent.Evidence(c));
  REQUIRE(r.verdict());
  CHECK(r.last().verdict().state() == v1::ATTESTATION_STATE_PASS);

  // After a reboot the same signed file comes before any keyring entry:
  // the key is forgotten with the old boot's log.
  agent.Reboot();
  agent.Append(signed_file());
  t.now += absl::Seconds(2);
  SoftAgent::Options o;
  o.first = 5;
  Reply seen =
      t.Send(*other, agent.Evidence(r.last().verdict().next_challenge(), o));
  REQUIRE(seen.challenge());
  CHECK(seen.last().challenge().ima_from() == 0);
  Reply after = t.Send(*other, agent.Evidence(seen.last().challenge()));
  REQUIRE(after.verdict());
  CHECK(after.last().verdict().state() == v1::ATTESTATION_STATE_FAIL);
  CHECK(HasFailure(after.last().verdict(),
                   v1::FAILURE_CODE_IMA_FILE_NOT_IN_POLICY));
  CHECK(t.store.GetAgent("default", "node-1")->ima_learned_keys.empty());
}

TEST_CASE("session: a boot policy asks for the boot log and its PCRs",
          "[core][session]") {
  SessionTest t;
  SoftAgent agent("node-1");
  t.PutPolicy("boot", "{}", /*kind=*/2);
  t.Enroll(agent, "web", "boot");
  v1::Challenge c;
  std::unique_ptr<AttestationSession> s = t.Connect(agent, &c);
  CHECK(c.want_boot_log());
  REQUIRE(c.pcr_selection().banks_size() == 1);
  CHECK(c.pcr_selection().banks(0).pcr_indices_size() == 12);  // 0-10, 14
  Reply r = t.Send(*s, agent.Evidence(c));  // No boot log sent.
  REQUIRE(r.verdict());
  CHECK(r.last().verdict().state() == v1::ATTESTATION_STATE_FAIL);
  CHECK(HasFailure(r.last().verdict(), v1::FAILURE_CODE_EVIDENCE_MISSING));
  // Asked again until a boot log of this boot is accepted.
  CHECK(r.last().verdict().next_challenge().want_boot_log());
  CHECK(t.store.GetAgent("default", "node-1")->boot_pcrs.empty());
}

TEST_CASE("session: a policy updated mid-stream applies to the next quote",
          "[core][session]") {
  SessionTest t(/*policy_ttl=*/absl::ZeroDuration());
  SoftAgent agent("node-1");
  std::unique_ptr<AttestationSession> s;
  Reply r = FirstPass(t, agent, &s);
  CHECK(r.policy_loads == 1);
  // Version 2 no longer allows tool1's digest; the next measurement of it
  // fails against version 2.
  t.PutPolicy("web", core::ima::testing::PolicyJson(
                         {{"/usr/bin/tool0",
                           {absl::BytesToHexString(AsString(
                               core::ima::testing::FileDigest(0)))}}}));
  agent.Measure("/usr/bin/tool1", 1);
  t.now += absl::Seconds(2);
  Reply r2 = t.Send(*s, agent.Evidence(r.last().verdict().next_challenge()));
  REQUIRE(r2.verdict());
  CHECK(r2.policy_loads == 1);
  CHECK(r2.last().verdict().state() == v1::ATTESTATION_STATE_FAIL);
  CHECK(t.store.GetAgent("default", "node-1")->runtime_policy_version == 2);
}

TEST_CASE("session: a digest on the policy's reject list fails the agent",
          "[core][session]") {
  SessionTest t(/*policy_ttl=*/absl::ZeroDuration());
  SoftAgent agent("node-1");
  std::unique_ptr<AttestationSession> s;
  Reply r = FirstPass(t, agent, &s);
  // The machine runs a new file. Version 2 allows it by path and digest,
  // and also puts its digest on the reject list: the reject list wins.
  agent.Measure("/usr/bin/nc", 7);
  nlohmann::json policy = nlohmann::json::parse(t.PolicyFor(agent));
  policy["reject"] = {
      {"digests",
       {absl::BytesToHexString(AsString(core::ima::testing::FileDigest(7)))}}};
  t.PutPolicy("web", policy.dump());
  t.now += absl::Seconds(2);
  Reply r2 = t.Send(*s, agent.Evidence(r.last().verdict().next_challenge()));
  REQUIRE(r2.verdict());
  const v1::Verdict& v = r2.last().verdict();
  INFO(v.DebugString());
  CHECK(v.state() == v1::ATTESTATION_STATE_FAIL);
  REQUIRE(v.failures_size() == 1);
  CHECK(v.failures(0).code() == v1::FAILURE_CODE_IMA_REJECTED);
  CHECK(absl::StrContains(v.failures(0).detail(), "reject list"));
  CHECK(t.store.GetAgent("default", "node-1")->state ==
        v1::ATTESTATION_STATE_FAIL);
}

TEST_CASE(
    "session: a shadow version reports would-be failures, and the verdict and "
    "state follow the active version",
    "[core][session]") {
  SessionTest t(/*policy_ttl=*/absl::ZeroDuration());
  SoftAgent agent("node-1");
  SoftAgent other("node-2");
  std::unique_ptr<AttestationSession> s;
  Reply r = FirstPass(t, agent, &s);
  // The shadow (the next version) no longer allows tool1.
  t.PutPolicy("web-next", core::ima::testing::PolicyJson(
                              {{"/usr/bin/tool0",
                                {absl::BytesToHexString(AsString(
                                    core::ima::testing::FileDigest(0)))}}}));
  store::RolloutRow shadow;
  shadow.tenant = "default";
  shadow.policy = "web";
  shadow.kind = store::RolloutKind::kShadow;
  shadow.candidate = "web-next";
  shadow.all_agents = false;
  shadow.agent_ids = {agent.id()};
  REQUIRE(t.store.SetRollout(shadow).ok());
  agent.Measure("/usr/bin/tool1", 1);
  t.now += absl::Seconds(2);
  Reply r2 = t.Send(*s, agent.Evidence(r.last().verdict().next_challenge()));
  REQUIRE(r2.verdict());
  CHECK(r2.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
  CHECK(r2.last().verdict().failures().empty());
  CHECK(t.store.GetAgent("default", agent.id())->state ==
        v1::ATTESTATION_STATE_PASS);
  absl::StatusOr<std::vector<store::ShadowResultRow>> report =
      t.store.ShadowReport("default", "web");
  REQUIRE(report.ok());
  REQUIRE(report->size() == 1);
  const store::ShadowResultRow& row = report->at(0);
  CHECK(row.agent_id == agent.id());
  CHECK(row.candidate == "web-next");
  CHECK(row.candidate_version == 1);
  CHECK(row.rounds == 1);
  CHECK(row.entries_checked == 1);
  CHECK(row.failure_count == 1);
  v1::Verdict listed;
  REQUIRE(listed.ParseFromString(row.failures));
  REQUIRE(listed.failures_size() == 1);
  CHECK(listed.failures(0).code() == v1::FAILURE_CODE_IMA_FILE_NOT_IN_POLICY);
  CHECK(listed.failures(0).path() == "/usr/bin/tool1");

  SECTION("an agent outside the shadow's set is not judged by it") {
    std::unique_ptr<AttestationSession> o;
    FirstPass(t, other, &o);
    report = t.store.ShadowReport("default", "web");
    REQUIRE(report.ok());
    CHECK(report->size() == 1);  // Still only node-1.
  }
  SECTION("a shadow that does not load changes nothing") {
    t.PutPolicy("web-next", "{not json");
    agent.Measure("/usr/bin/tool0", 0);
    t.now += absl::Seconds(2);
    Reply r3 = t.Send(*s, agent.Evidence(r2.last().verdict().next_challenge()));
    REQUIRE(r3.verdict());
    CHECK(r3.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
    CHECK(t.store.ShadowReport("default", "web")->at(0).rounds == 1);
  }
}

TEST_CASE(
    "session: an update window accepts the candidate's files only inside "
    "it",
    "[core][session]") {
  SessionTest t(/*policy_ttl=*/absl::ZeroDuration());
  SoftAgent agent("node-1");
  std::unique_ptr<AttestationSession> s;
  Reply r = FirstPass(t, agent, &s);
  // The upgrade's new binary: only the candidate knows it.
  agent.Measure("/usr/bin/upgraded", 42);
  t.PutPolicy("web-next", t.PolicyFor(agent));
  store::RolloutRow window;
  window.tenant = "default";
  window.policy = "web";
  window.kind = store::RolloutKind::kWindow;
  window.candidate = "web-next";
  window.not_before = t.now;
  window.not_after = t.now + absl::Seconds(5);
  REQUIRE(t.store.SetRollout(window).ok());
  t.now += absl::Seconds(2);
  Reply r2 = t.Send(*s, agent.Evidence(r.last().verdict().next_challenge()));
  REQUIRE(r2.verdict());
  INFO(r2.last().verdict().DebugString());
  CHECK(r2.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
  CHECK(r2.window_accepted == 1);

  // After the window the same kind of file fails again.
  agent.Measure("/usr/bin/upgraded", 42);
  t.PutPolicy("web-next", t.PolicyFor(agent));
  t.now += absl::Seconds(5);
  Reply r3 = t.Send(*s, agent.Evidence(r2.last().verdict().next_challenge()));
  REQUIRE(r3.verdict());
  CHECK(r3.last().verdict().state() == v1::ATTESTATION_STATE_FAIL);
  CHECK(r3.window_accepted == 0);
  REQUIRE(r3.last().verdict().failures_size() == 1);
  CHECK(r3.last().verdict().failures(0).code() ==
        v1::FAILURE_CODE_IMA_FILE_NOT_IN_POLICY);
}

TEST_CASE("session: a policy that does not load fails closed",
          "[core][session]") {
  SessionTest t;
  SoftAgent agent("node-1");
  t.PutPolicy("broken", "{not json");
  t.Enroll(agent, "broken");
  v1::Challenge c;
  std::unique_ptr<AttestationSession> s = t.Connect(agent, &c);
  Reply r = t.Send(*s, agent.Evidence(c));
  REQUIRE(r.verdict());
  CHECK(r.last().verdict().state() == v1::ATTESTATION_STATE_FAIL);
  REQUIRE(r.last().verdict().failures_size() == 1);
  CHECK(r.last().verdict().failures(0).code() ==
        v1::FAILURE_CODE_POLICY_UNAVAILABLE);
  CHECK(r.last().verdict().failures(0).policy().name() == "broken");
  // The replay position is kept, not reset.
  CHECK(t.store.GetAgent("default", "node-1")->ima_next_entry == 0);
}

TEST_CASE(
    "session: a failed commit ends the stream and the retry loses nothing",
    "[core][session]") {
  SessionTest t;
  SoftAgent agent("node-1");
  t.Enroll(agent);
  v1::Challenge c;
  std::unique_ptr<AttestationSession> s = t.Connect(agent, &c);
  t.store.FailCommits(1);
  Reply r = t.Send(*s, agent.Evidence(c));
  CHECK(r.commits == 1);
  REQUIRE(r.ended);
  CHECK(absl::IsUnavailable(*r.ended));
  CHECK(r.sent.empty());  // Nothing acknowledged.
  CHECK(t.store.History("default", "node-1", 10)->empty());
  // The agent reconnects (to any verifier) and continues from what was
  // committed: nothing lost, nothing twice.
  v1::Challenge again;
  std::unique_ptr<AttestationSession> s2 = t.Connect(agent, &again);
  CHECK(again.ima_from() == 0);
  Reply ok = t.Send(*s2, agent.Evidence(again));
  REQUIRE(ok.verdict());
  CHECK(ok.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
  CHECK(t.store.History("default", "node-1", 10)->size() == 1);
  CHECK(t.store.GetAgent("default", "node-1")->ima_next_entry == 3);
}

TEST_CASE("session: the policy cache is used without blocking when warm",
          "[core][session]") {
  SessionTest t;
  SoftAgent agent("node-1");
  t.Enroll(agent);
  v1::Challenge c;
  std::unique_ptr<AttestationSession> s = t.Connect(agent, &c);
  Reply cold = t.Send(*s, agent.Evidence(c));
  CHECK(cold.policy_loads == 1);
  t.now += absl::Seconds(2);
  Reply warm =
      t.Send(*s, agent.Evidence(cold.last().verdict().next_challenge()));
  CHECK(warm.policy_loads == 0);
  REQUIRE(warm.verdict());
  CHECK(t.policies.loads() == 1);
}

// --- Boot freshness ------------------------------------------------------

// A real UEFI event log (tests/data/keylime, no Secure Boot).
Bytes BootLog() {
  absl::StatusOr<std::string> bytes = ReadFileUpTo(
      std::string(VOUCH_TEST_DATA_DIR) + "/keylime/binary_bios_measurements",
      1 << 20);
  REQUIRE(bytes.ok());
  return ToBytes(*bytes);
}

// The reference state learned from `log`; without_kernels: with an empty
// kernels list (the running kernel is no longer allowed).
std::string Learned(const Bytes& log, bool without_kernels = false) {
  absl::StatusOr<core::boot::EventLog> parsed = core::boot::ParseEventLog(log);
  REQUIRE(parsed.ok());
  absl::StatusOr<std::string> json = core::boot::CreateReferenceState(*parsed);
  REQUIRE(json.ok());
  if (!without_kernels) return *json;
  nlohmann::json j = nlohmann::json::parse(*json);
  j["kernels"] = nlohmann::json::array();
  return j.dump();
}

bool HasFailure(const v1::Verdict& v, v1::FailureCode code,
                absl::string_view detail) {
  for (const v1::Failure& f : v.failures()) {
    if (f.code() == code && absl::StrContains(f.detail(), detail)) return true;
  }
  return false;
}

// Enrolls a machine booted with BootLog() with its learned boot policy and
// passes the first attestation (with the boot log).
struct Booted {
  explicit Booted(SessionTest& t) : agent("node-1") {
    agent.BootWith(BootLog());
    t.PutPolicy("boot", Learned(agent.boot_log()), /*kind=*/2);
    t.Enroll(agent, "web", "boot");
    session = t.Connect(agent, &challenge);
    CHECK(challenge.want_boot_log());
    Reply r = t.Send(*session, agent.Evidence(challenge));
    REQUIRE(r.verdict());
    INFO(r.last().DebugString());
    REQUIRE(r.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
    challenge = r.last().verdict().next_challenge();
    t.now += absl::Seconds(2);
  }
  SoftAgent agent;
  std::unique_ptr<AttestationSession> session;
  v1::Challenge challenge;  // The next one.
};

TEST_CASE(
    "session: an accepted boot log keeps the boot PCRs, and a changed one "
    "fails",
    "[core][session]") {
  SessionTest t;
  Booted b(t);
  absl::StatusOr<store::AgentRow> row = t.store.GetAgent("default", "node-1");
  REQUIRE(row.ok());
  CHECK(row->boot_pcrs.size() == 11 * 32);
  CHECK(row->boot_policy_version == 1);
  auto history = t.store.History("default", "node-1", 10);
  REQUIRE(history.ok());
  CHECK(history->front().boot_log_evaluated);
  CHECK(history->front().boot_policy_version == 1);

  // Asked once per boot: the next quote is compared with the kept PCRs.
  CHECK(!b.challenge.want_boot_log());
  SoftAgent::Options unasked;
  unasked.boot_log = "unasked";
  Reply refused = t.Send(*b.session, b.agent.Evidence(b.challenge, unasked));
  REQUIRE(refused.error());
  CHECK(refused.last().error().code() ==
        static_cast<int>(absl::StatusCode::kInvalidArgument));
  Reply r = t.Send(*b.session, b.agent.Evidence(b.challenge));
  REQUIRE(r.verdict());
  CHECK(r.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
  history = t.store.History("default", "node-1", 10);
  CHECK(!history->front().boot_log_evaluated);
  CHECK(history->front().boot_policy_version == 1);

  // Something measured into PCR 9 after boot (tpm2_pcrextend).
  b.agent.Extend(9, Bytes(32, 0x42));
  t.now += absl::Seconds(2);
  Reply changed =
      t.Send(*b.session, b.agent.Evidence(r.last().verdict().next_challenge()));
  REQUIRE(changed.verdict());
  const v1::Verdict& v = changed.last().verdict();
  INFO(v.DebugString());
  CHECK(v.state() == v1::ATTESTATION_STATE_FAIL);
  CHECK(HasFailure(v, v1::FAILURE_CODE_BOOT_PCRS_CHANGED, "PCR 9 "));
  CHECK(v.failures_size() == 1);
}

TEST_CASE("session: the kept boot PCRs reach the next verifier of the pool",
          "[core][session]") {
  SessionTest t;
  Booted b(t);
  // Another verifier takes the agent over: it does not ask for the log,
  // it compares with what the first one kept.
  v1::Challenge c;
  std::unique_ptr<AttestationSession> other = t.Connect(b.agent, &c);
  CHECK(!c.want_boot_log());
  Reply r = t.Send(*other, b.agent.Evidence(c));
  REQUIRE(r.verdict());
  CHECK(r.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
  b.agent.Extend(14, Bytes(32, 0x01));
  t.now += absl::Seconds(2);
  Reply changed =
      t.Send(*other, b.agent.Evidence(r.last().verdict().next_challenge()));
  REQUIRE(changed.verdict());
  CHECK(changed.last().verdict().state() == v1::ATTESTATION_STATE_FAIL);
  CHECK(HasFailure(changed.last().verdict(), v1::FAILURE_CODE_BOOT_PCRS_CHANGED,
                   "PCR 14 "));
}

TEST_CASE("session: a new boot policy version asks for the boot log first",
          "[core][session]") {
  SessionTest t(/*policy_ttl=*/absl::ZeroDuration());
  Booted b(t);
  // Version 2 no longer allows the running kernel.
  t.PutPolicy("boot", Learned(b.agent.boot_log(), /*without_kernels=*/true),
              /*kind=*/2);
  Reply asked = t.Send(*b.session, b.agent.Evidence(b.challenge));
  CHECK(asked.commits == 0);  // Not judged without the log.
  REQUIRE(asked.challenge());
  CHECK(asked.last().challenge().want_boot_log());
  Reply r = t.Send(*b.session, b.agent.Evidence(asked.last().challenge()));
  REQUIRE(r.verdict());
  const v1::Verdict& v = r.last().verdict();
  INFO(v.DebugString());
  CHECK(v.state() == v1::ATTESTATION_STATE_FAIL);
  CHECK(HasFailure(v, v1::FAILURE_CODE_BOOT_COMPONENT_NOT_ALLOWED));
  // A refused log keeps nothing: the next Challenge asks again.
  CHECK(v.next_challenge().want_boot_log());
  absl::StatusOr<store::AgentRow> row = t.store.GetAgent("default", "node-1");
  REQUIRE(row.ok());
  CHECK(row->boot_pcrs.empty());
  CHECK(row->boot_policy_version == 2);
  CHECK(t.store.History("default", "node-1", 1)->front().boot_policy_version ==
        2);
}

TEST_CASE("session: a newer boot policy in the cache rides on the Challenge",
          "[core][session]") {
  SessionTest t(/*policy_ttl=*/absl::Seconds(5));
  Booted b(t);
  t.PutPolicy("boot", Learned(b.agent.boot_log()), /*kind=*/2);
  // Another agent's evidence loaded version 2 into the shared cache.
  t.now += absl::Seconds(6);
  REQUIRE(t.policies.Boot("default", "boot", t.now)->version == 2);
  Reply again = t.Send(*b.session, AgentError());
  REQUIRE(again.challenge());
  CHECK(again.last().challenge().want_boot_log());
  Reply r = t.Send(*b.session, b.agent.Evidence(again.last().challenge()));
  REQUIRE(r.verdict());
  CHECK(r.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
  CHECK(!r.last().verdict().next_challenge().want_boot_log());
  CHECK(t.store.GetAgent("default", "node-1")->boot_policy_version == 2);
}

TEST_CASE("session: a reboot forgets the boot PCRs and asks for the boot log",
          "[core][session]") {
  SessionTest t;
  Booted b(t);
  b.agent.Reboot();
  Reply seen = t.Send(*b.session, b.agent.Evidence(b.challenge));
  CHECK(seen.commits == 0);
  REQUIRE(seen.challenge());
  CHECK(seen.last().challenge().want_boot_log());
  Reply r = t.Send(*b.session, b.agent.Evidence(seen.last().challenge()));
  REQUIRE(r.verdict());
  CHECK(r.last().verdict().state() == v1::ATTESTATION_STATE_PASS);
  CHECK(t.store.History("default", "node-1", 1)->front().boot_log_evaluated);
}

// The boot rules of core::attest::CheckEvidence that the session never
// reaches on its own (it asks for the log whenever none is kept).
TEST_CASE("evidence: boot evaluation that cannot complete is a failure",
          "[core][session]") {
  SoftAgent agent("node-1");
  agent.BootWith(BootLog());
  absl::StatusOr<core::boot::BootPolicy> policy =
      core::boot::BootPolicy::FromJson(Learned(agent.boot_log()));
  REQUIRE(policy.ok());
  absl::StatusOr<std::unique_ptr<core::tpm::AikVerifier>> aik =
      core::tpm::AikVerifier::Create(SoftAgent::aik().tpm2b_public());
  REQUIRE(aik.ok());
  const absl::Time now = absl::FromUnixSeconds(1800000000);
  core::attest::IssuedChallenge ic;
  ic.nonce = Bytes(32, 7);
  ic.expires_at = now + absl::Minutes(1);
  for (uint32_t p : core::attest::kBootPcrs) {
    REQUIRE(core::tpm::SelectPcr(ic.selection, TPM2_ALG_SHA256, p).ok());
  }
  v1::Challenge c;
  c.set_nonce(std::string(AsString(ic.nonce)));
  *c.mutable_pcr_selection() = core::attest::PcrSelectionToProto(ic.selection);
  core::attest::EvidenceInput in;
  in.aik = aik->get();
  in.challenge = &ic;
  in.boot_policy = &*policy;
  auto check = [&](const v1::AgentMessage& m) {
    REQUIRE(core::attest::ValidateEvidence(m.evidence(), ic).ok());
    return core::attest::CheckEvidence(m.evidence(), in, now);
  };
  auto has = [](const core::attest::EvidenceOutcome& out,
                v1::FailureCode code) {
    return std::any_of(out.failures.begin(), out.failures.end(),
                       [&](const v1::Failure& f) { return f.code() == code; });
  };

  // Neither a boot log nor kept boot PCRs: nothing proves the boot.
  core::attest::EvidenceOutcome out = check(agent.Evidence(c));
  CHECK(!out.passed);
  CHECK(has(out, v1::FAILURE_CODE_BOOT_EVALUATION_INCOMPLETE));
  CHECK(!out.boot_pcrs.has_value());

  // Asked for and not sent.
  ic.want_boot_log = true;
  c.set_want_boot_log(true);
  SoftAgent::Options none;
  none.boot_log = "";
  out = check(agent.Evidence(c, none));
  CHECK(!out.passed);
  CHECK(has(out, v1::FAILURE_CODE_EVIDENCE_MISSING));

  // A log that does not parse: nothing kept.
  SoftAgent::Options junk;
  junk.boot_log = "junk";
  out = check(agent.Evidence(c, junk));
  CHECK(!out.passed);
  CHECK(has(out, v1::FAILURE_CODE_BOOT_LOG_MALFORMED));
  REQUIRE(out.boot_pcrs.has_value());
  CHECK(out.boot_pcrs->empty());
  CHECK(out.boot_log_evaluated);

  // The real log: accepted, its quoted boot PCRs kept (and they round-trip
  // through the stored form).
  out = check(agent.Evidence(c));
  const std::string first =
      out.failures.empty() ? "" : out.failures[0].detail();
  INFO(first);
  CHECK(out.passed);
  REQUIRE(out.boot_pcrs.has_value());
  CHECK(out.boot_pcrs->size() == core::attest::kBootPcrCount);
  const std::string stored = core::attest::EncodeBootPcrs(*out.boot_pcrs);
  CHECK(stored.size() == 352);
  auto decoded = core::attest::DecodeBootPcrs(stored);
  REQUIRE(decoded.ok());
  CHECK(*decoded == out.boot_pcrs);
  CHECK(!core::attest::DecodeBootPcrs(stored.substr(1)).ok());
  CHECK(!core::attest::DecodeBootPcrs("")->has_value());

  // Without a log, against kept PCRs: equal passes, different fails.
  ic.want_boot_log = false;
  c.set_want_boot_log(false);
  in.progress.boot_pcrs = out.boot_pcrs;
  CHECK(check(agent.Evidence(c)).passed);
  (*in.progress.boot_pcrs)[0] = Bytes(32, 0);
  out = check(agent.Evidence(c));
  CHECK(!out.passed);
  CHECK(has(out, v1::FAILURE_CODE_BOOT_PCRS_CHANGED));
}

}  // namespace
}  // namespace vouch::verifier::testing
