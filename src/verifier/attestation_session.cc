#include "verifier/attestation_session.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/bytes.h"
#include "common/logging.h"
#include "core/attest/hello.h"
#include "core/attest/limits.h"
#include "core/attest/wire.h"
#include "core/tpm/tpm_wire.h"

namespace vouch::verifier {
namespace {

namespace attest = ::vouch::core::attest;
namespace ctpm = ::vouch::core::tpm;
using Kind = SessionAction::Kind;

SessionAction Make(Kind kind) {
  SessionAction a;
  a.kind = kind;
  return a;
}

SessionAction Send(v1::VerifierMessage message) {
  SessionAction a = Make(Kind::kSend);
  a.message = std::move(message);
  return a;
}

// The actions in order, moved in: `return {a, b};` would copy each (a
// braced list's elements are const), and a commit or a verdict is large.
template <typename... A>
SessionActions Actions(A&&... a) {
  SessionActions out;
  out.reserve(sizeof...(a));
  (out.push_back(std::forward<A>(a)), ...);
  return out;
}

SessionAction EndWith(absl::Status status) {
  SessionAction a = Make(Kind::kEnd);
  a.status = std::move(status);
  return a;
}

}  // namespace

absl::string_view SessionStateName(AttestationSession::State state) {
  using S = AttestationSession::State;
  switch (state) {
    case S::kAwaitHello:
      return "await_hello";
    case S::kTakingOver:
      return "taking_over";
    case S::kReady:
      return "ready";
    case S::kLoadingPolicies:
      return "loading_policies";
    case S::kCommitting:
      return "committing";
    case S::kCheckingFence:
      return "checking_fence";
    case S::kClosed:
      return "closed";
  }
  return "unknown";
}

AttestationSession::AttestationSession(std::string tenant, std::string agent,
                                       const SessionOptions& options,
                                       SessionEnv* env, PolicySource* policies)
    : tenant_(std::move(tenant)),
      identity_(std::move(agent)),
      options_(options),
      env_(env),
      policies_(policies) {}

AttestationSession::~AttestationSession() { ClearHeldIma(); }

bool AttestationSession::HoldIma(std::string data) {
  const int64_t delta = static_cast<int64_t>(data.size()) -
                        static_cast<int64_t>(held_ima_.size());
  if (delta > 0 && !env_->HoldImaBytes(delta)) {
    ClearHeldIma();
    return false;
  }
  if (delta < 0) (void)env_->HoldImaBytes(delta);
  held_ima_ = std::move(data);
  return true;
}

void AttestationSession::ClearHeldIma() {
  if (held_ima_.empty()) return;
  (void)env_->HoldImaBytes(-static_cast<int64_t>(held_ima_.size()));
  std::string().swap(held_ima_);  // The memory goes too, not only the size.
}

bool AttestationSession::Cheap(const v1::AgentMessage& message) {
  // Small evidence is checked where it was read: a few tens of microseconds
  // of CPU, less than handing it to another thread. Nothing else the
  // session does blocks or costs much (it asks for blocking work).
  constexpr size_t kInlineImaBytes = 64 << 10;
  if (!message.has_evidence()) return true;
  return message.evidence().boot_log().empty() &&
         message.evidence().ima_entries().data().size() <= kInlineImaBytes;
}

SessionActions AttestationSession::End(absl::Status status) {
  state_ = State::kClosed;
  ClearHeldIma();
  pending_.reset();
  committing_.reset();
  return Actions(EndWith(std::move(status)));
}

SessionActions AttestationSession::StreamError(absl::StatusCode code,
                                               absl::string_view message,
                                               absl::Duration retry_after) {
  v1::VerifierMessage m;
  m.mutable_error()->set_code(static_cast<int32_t>(code));
  m.mutable_error()->set_message(
      std::string(message.substr(0, attest::kMaxErrorMessageBytes)));
  if (retry_after > absl::ZeroDuration()) {
    attest::SetDuration(retry_after, m.mutable_error()->mutable_retry_after());
  }
  return Actions(Send(std::move(m)), Make(Kind::kReadNext));
}

SessionActions AttestationSession::OnMessage(
    std::shared_ptr<const v1::AgentMessage> message, absl::Time now) {
  const bool hello_done = state_ != State::kAwaitHello;
  if (state_ != State::kAwaitHello && state_ != State::kReady) {
    // The shell reads one message at a time; anything else is a bug.
    return End(absl::InternalError("message out of turn"));
  }
  switch (message->message_case()) {
    case v1::AgentMessage::kHello:
      if (hello_done) {
        return End(absl::InvalidArgumentError("a second Hello on one stream"));
      }
      return OnHello(message->hello(), now);
    case v1::AgentMessage::kEvidence:
      if (!hello_done) break;
      return OnEvidence(std::move(message), now);
    case v1::AgentMessage::kAgentError:
      if (!hello_done) break;
      return OnAgentError(message->agent_error(), now);
    default:
      if (!hello_done) break;
      return StreamError(absl::StatusCode::kInvalidArgument,
                         "empty AgentMessage");
  }
  return End(absl::InvalidArgumentError("the first message must be a Hello"));
}

SessionActions AttestationSession::OnHello(const v1::Hello& hello,
                                           absl::Time now) {
  if (absl::Status s = attest::ValidateHello(hello, identity_); !s.ok()) {
    return End(std::move(s));
  }
  if (!env_->AllowHello(hello.agent_id(), now)) {
    return End(absl::ResourceExhaustedError(
        "too many Hellos for this agent; back off"));
  }
  agent_id_ = hello.agent_id();
  state_ = State::kTakingOver;
  SessionAction a = Make(Kind::kTakeOver);
  a.tenant = tenant_;
  a.agent_id = agent_id_;
  a.agent_version = hello.agent_version();
  a.lease = options_.min_lease;
  hello_aik_name_ = hello.aik_name();
  return Actions(std::move(a));
}

SessionActions AttestationSession::OnTakenOver(
    absl::StatusOr<store::Takeover> taken, absl::Time now) {
  if (!taken.ok()) {
    return End(absl::IsUnavailable(taken.status())
                   ? absl::UnavailableError(
                         "database unavailable; reconnect with backoff")
                   : taken.status());
  }
  epoch_ = taken->agent.epoch;
  aik_name_ = taken->aik_name;
  row_ = std::move(taken->agent);
  SessionActions out;
  SessionAction hold = Make(Kind::kHold);
  hold.agent_id = agent_id_;
  hold.epoch = epoch_;
  hold.aik_name = aik_name_;
  hold.lease = Lease();
  out.push_back(std::move(hold));
  if (taken->aik_name != hello_aik_name_) {
    out.push_back(EndWith(absl::FailedPreconditionError(
        "aik_name is not the registrar's active AIK: register again")));
    state_ = State::kClosed;
    return out;
  }
  absl::StatusOr<std::unique_ptr<ctpm::AikVerifier>> aik =
      ctpm::AikVerifier::Create(AsBytes(taken->aik_public));
  if (!aik.ok()) {
    out.push_back(EndWith(absl::FailedPreconditionError(
        "the registered AIK does not parse: register again")));
    state_ = State::kClosed;
    return out;
  }
  aik_ = *std::move(aik);
  aik_public_ = taken->aik_public;
  if (row_.clock_known) {
    progress_.clock =
        ctpm::ClockInfo{row_.clock, row_.reset_count, row_.restart_count, true};
  }
  progress_.ima.next_entry_index = row_.ima_next_entry;
  if (row_.pcr10_sha256.size() == 32) {
    std::memcpy(progress_.ima.pcr_sha256.data(), row_.pcr10_sha256.data(), 32);
  }
  if (row_.pcr10_sha1.size() == 20) {
    std::memcpy(progress_.ima.pcr_sha1.data(), row_.pcr10_sha1.data(), 20);
  }
  absl::StatusOr<std::vector<core::ima::LearnedKey>> learned =
      core::ima::DecodeLearnedKeys(row_.ima_learned_keys);
  if (learned.ok()) {
    progress_.ima.learned_keys = *std::move(learned);
  } else {
    // Not trusted: signatures by keys the log taught verify no more, so a
    // signed file the policy does not list fails (never passes).
    Log(LogLevel::kWarning,
        "stored learned IMA keys do not decode; ignoring them",
        {{"agent_id", agent_id_}, {"error", learned.status().message()}});
  }
  absl::StatusOr<std::optional<ctpm::PcrBank>> kept =
      attest::DecodeBootPcrs(row_.boot_pcrs);
  if (!kept.ok()) {
    // Not trusted: the boot log is asked for again.
    Log(LogLevel::kWarning, "stored boot PCRs do not decode; ignoring them",
        {{"agent_id", agent_id_}, {"error", kept.status().message()}});
  }
  progress_.boot_pcrs = kept.ok() ? *std::move(kept) : std::nullopt;
  kept_boot_version_ = row_.boot_policy_version;
  Log(LogLevel::kInfo, "agent stream taken",
      {{"agent_id", agent_id_},
       {"epoch", epoch_},
       {"ima_next_entry", row_.ima_next_entry},
       {"state", core::AgentStateName(row_.state)}});
  want_boot_log_ = NeedBootLog();
  state_ = State::kReady;
  for (SessionAction& a : AskAgain(std::nullopt, now)) {
    out.push_back(std::move(a));
  }
  return out;
}

absl::Duration AttestationSession::MinInterval() const {
  return std::min(options_.min_interval, row_.enrollment.interval);
}

absl::Duration AttestationSession::Lease() const {
  const absl::Duration lease =
      row_.enrollment.interval * options_.timeout_intervals;
  return std::max(lease, options_.min_lease);
}

core::attest::IssuedChallenge AttestationSession::NewChallenge(absl::Time now) {
  attest::IssuedChallenge c;
  c.nonce = env_->Random(attest::kNonceBytes);
  c.expires_at = now + 2 * row_.enrollment.interval + absl::Seconds(30);
  c.hash_alg = TPM2_ALG_SHA256;
  (void)ctpm::SelectPcr(c.selection, TPM2_ALG_SHA256, 10);
  if (!row_.enrollment.boot_policy.empty()) {
    // The boot policy checks 0-9 and 14 (core::boot UsedPcrs).
    for (uint32_t p = 0; p <= 9; ++p) {
      (void)ctpm::SelectPcr(c.selection, TPM2_ALG_SHA256, p);
    }
    (void)ctpm::SelectPcr(c.selection, TPM2_ALG_SHA256, 14);
  }
  if (!row_.enrollment.pcr_policy.empty()) {
    // Every PCR of the bank, so that any version of the PCR policy finds
    // its PCRs quoted; other banks as far as the loaded policy names them.
    for (uint32_t p = 0; p <= 23; ++p) {
      (void)ctpm::SelectPcr(c.selection, TPM2_ALG_SHA256, p);
    }
    auto hit = policies_->TryPcr(row_.enrollment.tenant,
                                 row_.enrollment.pcr_policy, now);
    if (hit && hit->policy != nullptr) {
      for (const auto& [bank, pcrs] : hit->policy->Selection(TPM2_ALG_SHA256)) {
        for (uint32_t p : pcrs) (void)ctpm::SelectPcr(c.selection, bank, p);
      }
    }
  }
  if (!row_.enrollment.runtime_policy.empty()) {
    c.ima_from = progress_.ima.next_entry_index;
  }
  c.want_boot_log = want_boot_log_ || NewerBootPolicy(now);
  return c;
}

bool AttestationSession::NeedBootLog() const {
  return !row_.enrollment.boot_policy.empty() && !progress_.boot_pcrs;
}

// Whether the boot policy has a version other than the one that accepted
// the kept boot PCRs, as far as the policy source knows without waiting
// (Evaluate catches what this misses).
bool AttestationSession::NewerBootPolicy(absl::Time now) {
  if (row_.enrollment.boot_policy.empty() || !progress_.boot_pcrs) {
    return false;
  }
  auto hit = policies_->TryBoot(row_.enrollment.tenant,
                                row_.enrollment.boot_policy, now);
  return hit && hit->version != kept_boot_version_;
}

v1::Challenge AttestationSession::ChallengeMessage(
    const core::attest::IssuedChallenge& c) const {
  v1::Challenge m;
  m.set_nonce(std::string(AsString(c.nonce)));
  attest::SetTimestamp(c.expires_at, m.mutable_expires_at());
  m.set_hash_alg(v1::HASH_ALGORITHM_SHA256);
  m.set_sign_scheme(v1::SIGN_SCHEME_UNSPECIFIED);
  *m.mutable_pcr_selection() = attest::PcrSelectionToProto(c.selection);
  if (c.ima_from) m.set_ima_from(*c.ima_from);
  m.set_want_boot_log(c.want_boot_log);
  attest::SetDuration(row_.enrollment.interval, m.mutable_interval());
  attest::SetDuration(MinInterval(), m.mutable_min_interval());
  return m;
}

// A bare Challenge (not riding on a Verdict): after the takeover, an
// expired nonce, an unasked reboot, a truncated IMA chunk, an AgentError.
// `ima_from` overrides where the IMA log is asked from.
SessionActions AttestationSession::AskAgain(std::optional<uint64_t> ima_from,
                                            absl::Time now) {
  challenge_ = NewChallenge(now);
  if (ima_from) challenge_->ima_from = ima_from;
  last_challenge_at_ = now;
  challenge_by_verdict_ = false;
  state_ = State::kReady;
  v1::VerifierMessage m;
  *m.mutable_challenge() = ChallengeMessage(*challenge_);
  return Actions(Send(std::move(m)), Make(Kind::kReadNext));
}

// Counts a push that came before min_interval; true when the agent has
// done so too often and is cut off.
bool AttestationSession::EarlyPush(absl::Time since, absl::Time now) {
  if (now - since >= MinInterval()) {
    early_pushes_ = 0;
    return false;
  }
  return ++early_pushes_ > options_.max_early_pushes;
}

SessionActions AttestationSession::OnAgentError(const v1::AgentError& error,
                                                absl::Time now) {
  if (EarlyPush(last_challenge_at_, now)) {
    return End(absl::ResourceExhaustedError(
        "errors reported faster than min_interval; cut off"));
  }
  Log(LogLevel::kWarning, "agent reports an error",
      {{"agent_id", agent_id_},
       {"code", error.code()},
       {"message", error.message().substr(0, attest::kMaxErrorMessageBytes)}});
  return AskAgain(std::nullopt, now);
}

SessionActions AttestationSession::OnEvidence(
    std::shared_ptr<const v1::AgentMessage> message, absl::Time now) {
  if (!challenge_) {
    return StreamError(absl::StatusCode::kFailedPrecondition,
                       "no outstanding Challenge");
  }
  if (challenge_by_verdict_) {
    const absl::Duration wait = MinInterval() - (now - last_verdict_);
    if (EarlyPush(last_verdict_, now)) {
      return End(absl::ResourceExhaustedError(
          "evidence sent faster than min_interval; cut off"));
    }
    if (wait > absl::ZeroDuration()) {
      return StreamError(absl::StatusCode::kResourceExhausted,
                         "evidence before min_interval", wait);
    }
  } else {
    early_pushes_ = 0;
  }
  if (absl::Status s =
          attest::ValidateEvidence(message->evidence(), *challenge_);
      !s.ok()) {
    return StreamError(absl::StatusCode::kInvalidArgument, s.message());
  }
  pending_ = std::move(message);
  LoadedPolicies loaded;
  bool miss = false;
  const store::Enrollment& e = row_.enrollment;
  if (!e.runtime_policy.empty()) {
    auto hit = policies_->TryRuntime(e.tenant, e.runtime_policy, now);
    if (hit) loaded.runtime = *std::move(hit);
    miss = miss || !hit || !TryRollouts(loaded, now);
  }
  if (!e.boot_policy.empty()) {
    auto hit = policies_->TryBoot(e.tenant, e.boot_policy, now);
    if (hit) loaded.boot = *std::move(hit);
    miss = miss || !hit;
  }
  if (!e.pcr_policy.empty()) {
    auto hit = policies_->TryPcr(e.tenant, e.pcr_policy, now);
    if (hit) loaded.pcr = *std::move(hit);
    miss = miss || !hit;
  }
  if (miss) {
    state_ = State::kLoadingPolicies;
    SessionAction a = Make(Kind::kLoadPolicies);
    a.tenant = e.tenant;
    a.agent_id = agent_id_;
    a.runtime_policy = e.runtime_policy;
    a.boot_policy = e.boot_policy;
    a.pcr_policy = e.pcr_policy;
    return Actions(std::move(a));
  }
  return Evaluate(loaded, now);
}

bool AttestationSession::TryRollouts(LoadedPolicies& loaded, absl::Time now) {
  const store::Enrollment& e = row_.enrollment;
  std::optional<Rollouts> rollouts =
      policies_->TryRollouts(e.tenant, e.runtime_policy, now);
  if (!rollouts) return false;
  for (const store::RolloutRow& r : **rollouts) {
    if (!r.Applies(agent_id_, now)) continue;
    auto hit = policies_->TryRuntime(e.tenant, r.candidate, now);
    if (!hit) return false;
    loaded.Slot(r.kind) =
        LoadedPolicies::Candidate{r.candidate, *std::move(hit)};
  }
  return true;
}

LoadedPolicies LoadPolicies(PolicyCache& cache, const SessionAction& a,
                            absl::Time now) {
  LoadedPolicies loaded;
  if (!a.runtime_policy.empty()) {
    loaded.runtime = cache.Runtime(a.tenant, a.runtime_policy, now);
  }
  if (!a.boot_policy.empty()) {
    loaded.boot = cache.Boot(a.tenant, a.boot_policy, now);
  }
  if (!a.pcr_policy.empty()) {
    loaded.pcr = cache.Pcr(a.tenant, a.pcr_policy, now);
  }
  if (a.runtime_policy.empty() || !loaded.runtime.ok()) return loaded;
  absl::StatusOr<Rollouts> rollouts =
      cache.RolloutsOf(a.tenant, a.runtime_policy, now);
  if (!rollouts.ok()) {
    // Only an outage ends the stream; a roll-out never fails a verdict.
    if (absl::IsUnavailable(rollouts.status())) {
      loaded.runtime = rollouts.status();
    }
    return loaded;
  }
  for (const store::RolloutRow& r : **rollouts) {
    if (!r.Applies(a.agent_id, now)) continue;
    auto candidate = cache.Runtime(a.tenant, r.candidate, now);
    if (!candidate.ok()) {
      if (absl::IsUnavailable(candidate.status())) {
        loaded.runtime = candidate.status();
        return loaded;
      }
      Log(LogLevel::kWarning, "roll-out candidate does not load; ignored",
          {{"policy", a.runtime_policy},
           {"kind", store::RolloutKindName(r.kind)},
           {"candidate", r.candidate},
           {"error", candidate.status().message()}});
      continue;
    }
    loaded.Slot(r.kind) =
        LoadedPolicies::Candidate{r.candidate, *std::move(candidate)};
  }
  return loaded;
}

SessionActions AttestationSession::OnPoliciesLoaded(LoadedPolicies loaded,
                                                    absl::Time now) {
  if (state_ != State::kLoadingPolicies || pending_ == nullptr) {
    return End(absl::InternalError("policies loaded out of turn"));
  }
  return Evaluate(loaded, now);
}

// The held evidence against its policies; a policy that cannot be had is
// a failing verdict (POLICY_UNAVAILABLE), never a pass; a database outage
// ends the stream without a verdict.
SessionActions AttestationSession::Evaluate(const LoadedPolicies& policies,
                                            absl::Time now) {
  std::vector<v1::Failure> policy_failures;
  auto check = [&](const absl::Status& s, const std::string& name) {
    if (s.ok()) return true;
    if (absl::IsUnavailable(s)) return false;
    v1::Failure f;
    f.set_code(v1::FAILURE_CODE_POLICY_UNAVAILABLE);
    f.set_detail(
        std::string(s.message()).substr(0, attest::kMaxFailureDetailBytes));
    f.mutable_policy()->set_name(name);
    policy_failures.push_back(std::move(f));
    return true;
  };
  if (!check(policies.runtime.status(), row_.enrollment.runtime_policy) ||
      !check(policies.boot.status(), row_.enrollment.boot_policy) ||
      !check(policies.pcr.status(), row_.enrollment.pcr_policy)) {
    return End(
        absl::UnavailableError("database unavailable; reconnect with backoff"));
  }
  if (policy_failures.empty() && policies.boot->policy != nullptr &&
      progress_.boot_pcrs && policies.boot->version != kept_boot_version_ &&
      pending_->evidence().boot_log().empty()) {
    // The boot PCRs were accepted under another boot policy version: the
    // new one judges the boot log before anything passes again.
    Log(LogLevel::kInfo, "boot policy changed; asking for the boot log",
        {{"agent_id", agent_id_},
         {"from_version", kept_boot_version_},
         {"to_version", policies.boot->version}});
    pending_.reset();
    ClearHeldIma();
    progress_.boot_pcrs.reset();
    want_boot_log_ = true;
    return AskAgain(std::nullopt, now);
  }
  attest::EvidenceOutcome out;
  uint64_t runtime_version = 0;
  uint64_t boot_version = 0;
  uint64_t pcr_version = 0;
  if (!policy_failures.empty()) {
    out.ima = progress_.ima;
    out.failures = std::move(policy_failures);
  } else {
    attest::EvidenceInput input;
    input.aik = aik_.get();
    input.challenge = &*challenge_;
    input.progress = progress_;
    input.held_ima = held_ima_;
    input.runtime_policy = policies.runtime->policy.get();
    input.boot_policy = policies.boot->policy.get();
    input.pcr_policy = policies.pcr->policy.get();
    judged_shadow_.reset();
    if (policies.window) {
      input.window_policy = policies.window->policy.policy.get();
    }
    if (policies.shadow) {
      input.shadow_policy = policies.shadow->policy.policy.get();
      judged_shadow_ = *policies.shadow;
    }
    runtime_version = policies.runtime->version;
    boot_version = policies.boot->version;
    pcr_version = policies.pcr->version;
    out = attest::CheckEvidence(pending_->evidence(), input, now);
  }
  switch (out.kind) {
    case attest::EvidenceOutcome::Kind::kVerdict:
      return CommitVerdict(std::move(out), runtime_version, boot_version,
                           pcr_version, now);
    case attest::EvidenceOutcome::Kind::kExpired:
      pending_.reset();
      return AskAgain(std::nullopt, now);
    case attest::EvidenceOutcome::Kind::kNewBoot:
      Log(LogLevel::kInfo, "agent rebooted; asking for its logs from the start",
          {{"agent_id", agent_id_}});
      pending_.reset();
      progress_.ima = core::ima::ImaReplayState{};
      ClearHeldIma();
      progress_.boot_pcrs.reset();  // Of the previous boot.
      want_boot_log_ = NeedBootLog();
      return AskAgain(std::nullopt, now);
    case attest::EvidenceOutcome::Kind::kNeedMore:
      pending_.reset();
      if (!HoldIma(std::move(out.held_ima))) {
        // Refused, not failed: the agent comes back later and sends the
        // entries again from its committed offset.
        return End(absl::ResourceExhaustedError(
            "the verifier holds its most unproven IMA data; reconnect "
            "later"));
      }
      return AskAgain(out.next_ima_from, now);
  }
  return End(absl::InternalError("unknown evidence outcome"));
}

store::KeptEvidence AttestationSession::Kept(
    const core::attest::EvidenceOutcome& out, uint64_t runtime_version,
    uint64_t boot_version, uint64_t pcr_version) const {
  const v1::Evidence& ev = pending_->evidence();
  store::KeptEvidence k;
  v1::Evidence quote;
  quote.set_quote(ev.quote());
  quote.set_signature(ev.signature());
  *quote.mutable_pcr_values() = ev.pcr_values();
  k.quote = quote.SerializeAsString();
  k.aik_public = aik_public_;
  const store::Enrollment& e = row_.enrollment;
  if (!e.runtime_policy.empty() && out.ima_bytes_accepted > 0) {
    // The accepted entries: a prefix of the held entries and the chunk.
    const std::string& chunk = ev.ima_entries().data();
    k.ima_first = progress_.ima.next_entry_index;
    k.ima_format = ev.ima_entries().format();
    k.ima_template_hash_alg = ev.ima_entries().template_hash_alg();
    // The first ima_bytes_accepted bytes of held + chunk, copied once.
    const size_t n = out.ima_bytes_accepted;
    const size_t from_held = std::min<size_t>(n, held_ima_.size());
    k.ima_data.reserve(std::min<size_t>(n, held_ima_.size() + chunk.size()));
    k.ima_data.append(held_ima_, 0, from_held);
    k.ima_data.append(chunk, 0, n - from_held);
  }
  if (!ev.boot_log().empty()) {
    k.boot_log = ev.boot_log();
    k.boot_log_sha256 = Sha256(ev.boot_log());
  }
  k.runtime_policy = e.runtime_policy;
  k.runtime_policy_version = runtime_version;
  k.boot_policy = e.boot_policy;
  k.boot_policy_version = boot_version;
  k.pcr_policy = e.pcr_policy;
  k.pcr_policy_version = pcr_version;
  return k;
}

SessionActions AttestationSession::CommitVerdict(
    core::attest::EvidenceOutcome out, uint64_t runtime_version,
    uint64_t boot_version, uint64_t pcr_version, absl::Time /*now*/) {
  const bool has_runtime = !row_.enrollment.runtime_policy.empty();
  SessionAction a = Make(Kind::kCommit);
  store::VerdictCommit& c = a.commit;
  c.tenant = tenant_;
  c.agent_id = agent_id_;
  c.owner = options_.verifier_id;
  c.epoch = epoch_;
  c.aik_name = aik_name_;
  c.attestation_id = absl::BytesToHexString(AsString(env_->Random(16)));
  c.nonce = std::string(AsString(challenge_->nonce));
  c.passed = out.passed;
  c.failures = attest::EncodeFailures(out.failures, out.failures_truncated);
  c.evidence_sha256 = Sha256(pending_->evidence().SerializeAsString());
  c.lease = Lease();
  if (out.clock) {
    c.reset_count = out.clock->reset_count;
    c.restart_count = out.clock->restart_count;
    c.clock = out.clock->clock;
  }
  if (has_runtime) {
    c.ima_from = challenge_->ima_from;
    c.ima_next_entry = out.ima.next_entry_index;
    c.ima_entries_received = out.ima_entries_received;
    c.pcr10_sha1 = std::string(AsString(out.ima.pcr_sha1));
    c.pcr10_sha256 = std::string(AsString(out.ima.pcr_sha256));
    c.ima_learned_keys = core::ima::EncodeLearnedKeys(out.ima.learned_keys);
  }
  c.runtime_policy_version = runtime_version;
  c.boot_policy_version = boot_version;
  c.boot_log_evaluated = out.boot_log_evaluated;
  if (out.boot_pcrs) c.boot_pcrs = attest::EncodeBootPcrs(*out.boot_pcrs);
  if (options_.keep_evidence) {
    c.kept = Kept(out, runtime_version, boot_version, pcr_version);
  }
  if (out.shadow_checked && judged_shadow_) {
    store::ShadowCommit& sh = c.shadow.emplace();
    sh.policy = row_.enrollment.runtime_policy;
    sh.candidate = judged_shadow_->name;
    sh.candidate_version = judged_shadow_->policy.version;
    sh.entries_checked = out.ima_entries_received;
    sh.failure_count = out.shadow_failure_count;
    if (!out.shadow_failures.empty()) {
      sh.failures = attest::EncodeFailures(
          out.shadow_failures,
          out.shadow_failure_count > out.shadow_failures.size());
    }
  }
  a.window_accepted = out.ima_window_accepted;
  if (out.ima_window_accepted > 0) {
    Log(LogLevel::kInfo, "update window accepted entries",
        {{"agent_id", agent_id_},
         {"policy", row_.enrollment.runtime_policy},
         {"entries", out.ima_window_accepted}});
  }
  committing_boot_version_ = boot_version;
  committing_id_ = c.attestation_id;
  committing_ = std::move(out);
  pending_.reset();
  state_ = State::kCommitting;
  return Actions(std::move(a));
}

SessionActions AttestationSession::OnCommitted(
    absl::StatusOr<store::VerdictApplied> applied, absl::Time now) {
  if (state_ != State::kCommitting || !committing_) {
    return End(absl::InternalError("commit result out of turn"));
  }
  if (!applied.ok()) {
    return End(absl::UnavailableError(
        "database unavailable; the evidence was not recorded; reconnect "
        "with backoff"));
  }
  if (applied->fenced) {
    state_ = State::kCheckingFence;
    committing_.reset();
    SessionAction a = Make(Kind::kCheckFence);
    a.agent_id = agent_id_;
    a.epoch = epoch_;
    return Actions(std::move(a));
  }
  const attest::EvidenceOutcome out = *std::move(committing_);
  committing_.reset();
  const bool has_runtime = !row_.enrollment.runtime_policy.empty();
  if (out.clock) progress_.clock = out.clock;
  if (has_runtime) progress_.ima = out.ima;
  ClearHeldIma();
  if (out.boot_pcrs) {
    progress_.boot_pcrs = out.boot_pcrs->empty()
                              ? std::nullopt
                              : std::optional<ctpm::PcrBank>(*out.boot_pcrs);
    kept_boot_version_ = committing_boot_version_;
  }
  want_boot_log_ = NeedBootLog();
  last_verdict_ = now;
  if (applied->previous_state != applied->state) {
    Log(LogLevel::kInfo, "agent state changed",
        {{"agent_id", agent_id_},
         {"from", core::AgentStateName(applied->previous_state)},
         {"to", core::AgentStateName(applied->state)},
         {"attestation_id", committing_id_},
         {"failures", out.failures.size()},
         {"first_failure", out.failures.empty()
                               ? std::string()
                               : absl::StrCat(out.failures[0].path(), " ",
                                              out.failures[0].detail())}});
  }
  challenge_ = NewChallenge(now);
  last_challenge_at_ = now;
  challenge_by_verdict_ = true;
  state_ = State::kReady;
  v1::VerifierMessage m;
  v1::Verdict* v = m.mutable_verdict();
  v->set_attestation_id(committing_id_);
  v->set_state(out.passed ? v1::ATTESTATION_STATE_PASS
                          : v1::ATTESTATION_STATE_FAIL);
  v->set_agent_state(applied->state);
  for (const v1::Failure& f : out.failures) *v->add_failures() = f;
  v->set_failures_truncated(out.failures_truncated);
  attest::SetTimestamp(now, v->mutable_verified_at());
  if (has_runtime) v->set_ima_next_entry(progress_.ima.next_entry_index);
  *v->mutable_next_challenge() = ChallengeMessage(*challenge_);
  return Actions(Send(std::move(m)), Make(Kind::kReadNext));
}

SessionActions AttestationSession::OnFenceChecked(absl::StatusOr<bool> enrolled,
                                                  absl::Time now) {
  if (state_ != State::kCheckingFence) {
    return End(absl::InternalError("fence check out of turn"));
  }
  state_ = State::kClosed;
  return Fenced(agent_id_, epoch_, enrolled, now);
}

SessionActions AttestationSession::Fenced(const std::string& agent_id,
                                          int64_t epoch,
                                          const absl::StatusOr<bool>& enrolled,
                                          absl::Time now) {
  // A failed check is read as a takeover: the agent reconnects and learns
  // the rest from its next Hello.
  if (!enrolled.ok() || *enrolled) {
    Log(LogLevel::kWarning,
        "ownership lost: another verifier took the agent over; closing the "
        "stream",
        {{"agent_id", agent_id}, {"epoch", epoch}});
    return Actions(EndWith(absl::AbortedError(
        "another verifier took this agent over; reconnect")));
  }
  Log(LogLevel::kInfo, "agent unenrolled; closing its stream",
      {{"agent_id", agent_id}});
  v1::VerifierMessage m;
  v1::StateNotice* n = m.mutable_state_notice();
  n->set_state(v1::ATTESTATION_STATE_UNENROLLED);
  n->set_cause(v1::STATE_CHANGE_CAUSE_UNENROLLED);
  attest::SetTimestamp(now, n->mutable_changed_at());
  return Actions(
      Send(std::move(m)),
      EndWith(absl::FailedPreconditionError("the agent was unenrolled")));
}

}  // namespace vouch::verifier
