#include "verifier/session_util.h"

#include <openssl/sha.h>

#include <catch2/catch.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/boot/event_log.h"
#include "core/boot/replay.h"

namespace vouch::verifier::testing {

namespace cima = ::vouch::core::ima;
namespace itest = ::vouch::core::ima::testing;

#if defined(__SANITIZE_ADDRESS__)
// The sanitizer build checks the lock order too (abort on a cycle).
const bool kDeadlockDetection = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kAbort);
  return true;
}();
#endif

SoftAgent::SoftAgent(std::string id) : id_(std::move(id)) {
  for (int i = 0; i < 3; ++i) Measure(absl::StrCat("/usr/bin/tool", i), i);
}

const ::vouch::testing::SoftAik& SoftAgent::aik() {
  static const ::vouch::testing::SoftAik* aik =
      new ::vouch::testing::SoftAik(::vouch::testing::SoftAik::Create());
  return *aik;
}

void SoftAgent::Measure(const std::string& path, int content) {
  records_.push_back(itest::Ng(path, itest::FileDigest(content)));
}

void SoftAgent::Reboot() {
  records_.clear();
  ++reset_count_;
  clock_ = 10;
  Measure("/usr/bin/tool0", 0);
}

v1::AgentMessage SoftAgent::Hello() const {
  v1::AgentMessage m;
  v1::Hello* h = m.mutable_hello();
  h->set_agent_id(id_);
  h->set_aik_name(std::string(AsString(aik().name())));
  h->set_agent_version("test");
  h->mutable_capabilities()->add_pcr_banks(v1::HASH_ALGORITHM_SHA256);
  return m;
}

v1::AgentMessage SoftAgent::Evidence(const v1::Challenge& c, Options o) {
  absl::StatusOr<TPML_PCR_SELECTION> sel =
      core::attest::PcrSelectionFromProto(c.pcr_selection());
  REQUIRE(sel.ok());
  const size_t quoted = o.quoted.value_or(records_.size());
  const itest::Pcrs replay = itest::ReplayPrefixes(records_);
  core::tpm::PcrValues values;
  (void)core::tpm::ForEachSelectedPcr(
      *sel, [&](TPMI_ALG_HASH alg, uint32_t pcr) {
        Bytes v(core::tpm::HashSize(alg), 0);
        if (pcr == cima::kImaPcr && alg == TPM2_ALG_SHA256) {
          v.assign(replay.sha256[quoted].begin(), replay.sha256[quoted].end());
        } else if (alg == TPM2_ALG_SHA256 && pcrs_.count(pcr) != 0) {
          v = pcrs_.at(pcr);
        }
        values[alg][pcr] = v;
        return absl::OkStatus();
      });
  clock_ += 100;
  core::tpm::ClockInfo clock{clock_, reset_count_, 0, true};
  auto [attest, signature] =
      aik().Quote(*sel, values, o.nonce.value_or(c.nonce()), clock);
  v1::AgentMessage m;
  v1::Evidence* ev = m.mutable_evidence();
  ev->set_quote(attest);
  ev->set_signature(signature);
  core::attest::PcrValuesToProto(values, ev->mutable_pcr_values());
  if (c.has_ima_from()) {
    const uint64_t first = o.first.value_or(c.ima_from());
    const uint64_t last = o.last.value_or(records_.size());
    std::vector<cima::ImaRecord> part;
    for (uint64_t i = first; i < last && i < records_.size(); ++i) {
      part.push_back(records_[i]);
    }
    v1::ImaLogChunk* chunk = ev->mutable_ima_entries();
    chunk->set_first_index(first);
    chunk->set_format(v1::IMA_LOG_FORMAT_ASCII);
    chunk->set_data(itest::WriteLog(part, cima::LogFormat::kAscii));
    chunk->set_truncated(o.truncated);
  }
  if (o.boot_log) {
    ev->set_boot_log(*o.boot_log);
  } else if (c.want_boot_log()) {
    ev->set_boot_log(std::string(AsString(boot_log_)));
  }
  return m;
}

void SoftAgent::BootWith(const Bytes& log) {
  absl::StatusOr<core::boot::EventLog> parsed = core::boot::ParseEventLog(log);
  REQUIRE(parsed.ok());
  absl::StatusOr<core::boot::PcrBanks> banks = core::boot::Replay(*parsed);
  REQUIRE(banks.ok());
  boot_log_ = log;
  pcrs_.clear();
  for (uint32_t p = 0; p < 24; ++p) {
    if (p == cima::kImaPcr) continue;
    pcrs_[p] = core::boot::InitialPcrValue(*parsed, p, 32);
  }
  for (const auto& [p, v] : banks->at(core::boot::kAlgSha256)) pcrs_[p] = v;
}

void SoftAgent::Extend(uint32_t pcr, const Bytes& digest) {
  Bytes old = pcrs_.count(pcr) != 0 ? pcrs_[pcr] : Bytes(32, 0);
  Bytes in = old;
  in.insert(in.end(), digest.begin(), digest.end());
  Bytes out(SHA256_DIGEST_LENGTH);
  SHA256(in.data(), in.size(), out.data());
  pcrs_[pcr] = out;
}

SessionTest::SessionTest(absl::Duration policy_ttl)
    : store(3, [this] { return now; }),
      policies(&store, policy_ttl, core::ima::PathHashKey{}) {
  options.verifier_id = "v1";
  options.min_interval = absl::Seconds(1);
}

std::string SessionTest::PolicyFor(const SoftAgent& agent) const {
  std::vector<std::pair<std::string, std::vector<std::string>>> digests;
  for (const cima::ImaRecord& r : agent.records()) {
    digests.push_back({r.path, {absl::BytesToHexString(AsString(r.digest))}});
  }
  return itest::PolicyJson(digests);
}

void SessionTest::PutPolicy(const std::string& name, const std::string& json,
                            int kind) {
  store::PolicyRow p;
  p.tenant = "default";
  p.name = name;
  p.kind = kind;
  p.content = json;
  if (store.NewestPolicyVersion("default", name).ok()) {
    REQUIRE(store.UpdatePolicy(p, 0).ok());
  } else {
    REQUIRE(store.AddPolicy(p).ok());
  }
}

void SessionTest::Enroll(SoftAgent& agent, const std::string& policy,
                         const std::string& boot_policy,
                         absl::Duration interval) {
  store.SetRegistration("default", agent.id(),
                        std::string(AsString(SoftAgent::aik().tpm2b_public())),
                        std::string(AsString(SoftAgent::aik().name())));
  if (!policy.empty() && !store.NewestPolicyVersion("default", policy).ok()) {
    PutPolicy(policy, PolicyFor(agent));
  }
  store::Enrollment e;
  e.tenant = "default";
  e.agent_id = agent.id();
  e.runtime_policy = policy;
  e.boot_policy = boot_policy;
  e.interval = interval;
  e.hash_alg = 11;
  absl::StatusOr<store::AgentRow> row = store.Enroll(e);
  INFO(row.status().message());
  REQUIRE(row.ok());
}

std::unique_ptr<AttestationSession> SessionTest::Open(
    const std::string& agent_id, const std::string& tenant) {
  return std::make_unique<AttestationSession>(tenant, agent_id, options, &env,
                                              &policies);
}

Reply SessionTest::Send(AttestationSession& s, const v1::AgentMessage& m) {
  return Run(s, s.OnMessage(std::make_shared<const v1::AgentMessage>(m), now));
}

Reply SessionTest::Run(AttestationSession& s, SessionActions actions) {
  Reply r;
  std::deque<SessionAction> todo(actions.begin(), actions.end());
  auto then = [&](SessionActions more) {
    todo.insert(todo.begin(), more.begin(), more.end());
  };
  while (!todo.empty()) {
    SessionAction a = std::move(todo.front());
    todo.pop_front();
    switch (a.kind) {
      case SessionAction::Kind::kSend:
        r.sent.push_back(a.message);
        break;
      case SessionAction::Kind::kHold:
        r.holds.push_back(a.epoch);
        break;
      case SessionAction::Kind::kTakeOver:
        ++r.takeovers;
        then(s.OnTakenOver(
            store.TakeOver(a.tenant, a.agent_id, options.verifier_id,
                           a.agent_version, a.lease),
            now));
        break;
      case SessionAction::Kind::kLoadPolicies: {
        ++r.policy_loads;
        then(s.OnPoliciesLoaded(LoadPolicies(policies, a, now), now));
        break;
      }
      case SessionAction::Kind::kCommit: {
        ++r.commits;
        r.window_accepted += a.window_accepted;
        std::vector<absl::StatusOr<store::VerdictApplied>> done =
            store.CommitVerdicts({&a.commit});
        REQUIRE(done.size() == 1);
        then(s.OnCommitted(done[0], now));
        break;
      }
      case SessionAction::Kind::kCheckFence:
        then(s.OnFenceChecked(store.Enrolled(a.agent_id), now));
        break;
      case SessionAction::Kind::kReadNext:
        r.read_next = true;
        REQUIRE(todo.empty());
        break;
      case SessionAction::Kind::kEnd:
        r.ended = a.status;
        REQUIRE(todo.empty());
        break;
    }
  }
  // Every chain ends by reading on or ending, never both, never neither.
  REQUIRE(r.read_next != r.ended.has_value());
  return r;
}

std::unique_ptr<AttestationSession> SessionTest::Connect(
    SoftAgent& agent, v1::Challenge* challenge) {
  std::unique_ptr<AttestationSession> s = Open(agent.id());
  Reply r = Send(*s, agent.Hello());
  INFO((r.ended ? r.ended->ToString() : "open"));
  REQUIRE(r.challenge());
  *challenge = r.last().challenge();
  return s;
}

}  // namespace vouch::verifier::testing
