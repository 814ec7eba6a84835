#include "verifier/attestation_service.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "core/agent_id.h"
#include "core/tpm/quote.h"
#include "sdk/names.h"
#include "server/auth.h"
#include "server/proto_time.h"
#include "verifier/evidence_check.h"

namespace vouch::verifier {

namespace {

namespace ctpm = ::vouch::core::tpm;

// Evidence whose IMA chunk is at most this is checked on the reactor thread.
constexpr size_t kInlineImaBytes = 64 << 10;

// Nonces and record ids from OpenSSL's DRBG, drawn 4 KiB at a time per
// thread: each RAND_bytes call costs several microseconds of locking,
// algorithm lookup and a getpid() fork check, more than a verdict's own
// checks. Bytes handed out are wiped from the buffer; the verifier never
// forks, so a child cannot reuse them.
Bytes RandomBytes(size_t n) {
  constexpr size_t kPool = 4096;
  thread_local uint8_t pool[kPool];
  thread_local size_t used = kPool;
  Bytes out(n);
  size_t done = 0;
  while (done < n) {
    if (used == kPool) {
      if (RAND_bytes(pool, static_cast<int>(kPool)) != 1) {
        // Without randomness no nonce can be issued; never fall back to a
        // predictable value.
        Log(LogLevel::kError, "RAND_bytes failed");
        std::abort();
      }
      used = 0;
    }
    const size_t take = std::min(n - done, kPool - used);
    std::memcpy(out.data() + done, pool + used, take);
    OPENSSL_cleanse(pool + used, take);
    used += take;
    done += take;
  }
  return out;
}

std::string EncodeFailures(const std::vector<v1::Failure>& failures,
                           bool truncated) {
  if (failures.empty()) return "";
  v1::Verdict holder;
  for (const v1::Failure& f : failures) *holder.add_failures() = f;
  holder.set_failures_truncated(truncated);
  return holder.SerializeAsString();
}

grpc::Status GrpcError(grpc::StatusCode code, absl::string_view message) {
  return grpc::Status(code, std::string(message));
}

}  // namespace

// One agent's stream. Session fields are touched only by the chain
// read -> executor task -> (commit callback) -> reply, which never runs
// twice at once (busy_); mu_ guards what reactions and that chain share.
class StreamReactor final
    : public grpc::ServerBidiReactor<v1::AgentMessage, v1::VerifierMessage> {
 public:
  StreamReactor(AttestationService* service,
                grpc::CallbackServerContext* context)
      : service_(service), context_(context) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    std::shared_ptr<const v1::AgentMessage> message;
    {
      absl::MutexLock lock(&mu_);
      if (!ok) {
        read_done_ = true;
        if (!finish_) finish_ = grpc::Status::OK;
        MaybeFinishLocked();
        return;
      }
      message = std::make_shared<const v1::AgentMessage>(std::move(in_));
      in_.Clear();
      busy_ = true;
    }
    received_at_ = absl::Now();
    // Small evidence is checked right here: the check is a few tens of
    // microseconds of CPU, less than handing it to another thread, and it
    // never blocks (a policy not in the cache sends it to the executor).
    // Everything else — Hello (database), large IMA chunks, boot logs — runs
    // on the executor.
    if (hello_done_ && message->has_evidence() &&
        message->evidence().boot_log().empty() &&
        message->evidence().ima_entries().data().size() <= kInlineImaBytes) {
      HandleEvidence(message, /*may_block=*/false);
      return;
    }
    Dispatch(message);
  }

  // Runs `message` on the executor; ends the stream when it is full.
  void Dispatch(std::shared_ptr<const v1::AgentMessage> message) {
    if (service_->executor()->Submit([this, message] { Handle(message); })) {
      return;
    }
    absl::MutexLock lock(&mu_);
    busy_ = false;
    if (!finish_) {
      finish_ = GrpcError(grpc::StatusCode::UNAVAILABLE,
                          "verifier overloaded; reconnect with backoff");
    }
    MaybeFinishLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writes_.pop_front();
    if (!ok) {
      writes_.clear();
      if (!finish_) finish_ = grpc::Status::CANCELLED;
    }
    if (!writes_.empty()) {
      StartWrite(&writes_.front());
    } else {
      writing_ = false;
      MaybeFinishLocked();
    }
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    if (!finish_) finish_ = grpc::Status::CANCELLED;
    MaybeFinishLocked();
  }

  void OnDone() override {
    service_->Unregister(this);
    if (epoch_ > 0) {
      store::PgVerifierStore* store = service_->store();
      std::string agent = agent_id_;
      int64_t epoch = epoch_;
      (void)service_->executor()->Submit(
          [store, agent, epoch] { (void)store->Release(agent, epoch); });
    }
    {
      absl::MutexLock lock(&service_->mu_);
      --service_->open_;
    }
    delete this;
  }

  // Tells the agent its new state (a StateNotice), then ends the stream.
  void NoticeAndEnd(v1::AttestationState state, v1::StateChangeCause cause,
                    grpc::Status status) {
    v1::VerifierMessage m;
    m.mutable_state_notice()->set_state(state);
    m.mutable_state_notice()->set_cause(cause);
    server::SetTimestamp(absl::Now(),
                         m.mutable_state_notice()->mutable_changed_at());
    Send(std::move(m));
    End(std::move(status));
  }

  // Ends the stream (from any thread).
  // When this stream's lease was last written to the database (taken, a
  // verdict committed, a renewal); read by the sweeper without the
  // reactor's lock, hence atomic.
  absl::Time lease_written() const {
    return absl::FromUnixMicros(lease_written_us_.load());
  }
  void MarkLeaseWritten(absl::Time t) {
    const int64_t us = absl::ToUnixMicros(t);
    int64_t seen = lease_written_us_.load();
    while (seen < us && !lease_written_us_.compare_exchange_weak(seen, us)) {
    }
  }

  void End(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    if (!finish_) finish_ = std::move(status);
    MaybeFinishLocked();
  }

 private:
  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!finish_ || finished_ || writing_ || busy_) return;
    finished_ = true;
    Finish(*finish_);
  }

  void Send(v1::VerifierMessage message) {
    absl::MutexLock lock(&mu_);
    if (finish_) return;
    writes_.push_back(std::move(message));
    if (!writing_) {
      writing_ = true;
      StartWrite(&writes_.front());
    }
  }

  // The end of a handled message: read the next one (or finish).
  void Done(std::optional<grpc::Status> end = std::nullopt) {
    absl::MutexLock lock(&mu_);
    busy_ = false;
    if (end && !finish_) finish_ = std::move(*end);
    if (read_done_ && !finish_) finish_ = grpc::Status::OK;
    if (!finish_) {
      StartRead(&in_);  // OnReadDone takes over.
      return;
    }
    MaybeFinishLocked();
  }

  void StreamErrorReply(grpc::StatusCode code, absl::string_view message,
                        absl::Duration retry_after = absl::ZeroDuration()) {
    v1::VerifierMessage m;
    m.mutable_error()->set_code(static_cast<int32_t>(code));
    m.mutable_error()->set_message(std::string(message.substr(0, 256)));
    if (retry_after > absl::ZeroDuration()) {
      server::SetDuration(retry_after,
                          m.mutable_error()->mutable_retry_after());
    }
    Send(std::move(m));
    Done();
  }

  void Handle(const std::shared_ptr<const v1::AgentMessage>& shared) {
    const v1::AgentMessage& message = *shared;
    switch (message.message_case()) {
      case v1::AgentMessage::kHello:
        if (hello_done_) {
          Done(GrpcError(grpc::StatusCode::INVALID_ARGUMENT,
                         "a second Hello on one stream"));
          return;
        }
        HandleHello(message.hello());
        return;
      case v1::AgentMessage::kEvidence:
        if (!hello_done_) break;
        HandleEvidence(shared, /*may_block=*/true);
        return;
      case v1::AgentMessage::kAgentError:
        if (!hello_done_) break;
        if (absl::Now() - last_challenge_at_ <
            std::min(service_->options().min_interval,
                     row_.enrollment.interval)) {
          if (++early_pushes_ > service_->options().max_early_pushes) {
            Done(GrpcError(grpc::StatusCode::RESOURCE_EXHAUSTED,
                           "errors reported faster than min_interval; cut "
                           "off"));
            return;
          }
        } else {
          early_pushes_ = 0;
        }
        Log(LogLevel::kWarning, "agent reports an error",
            {{"agent_id", agent_id_},
             {"code", message.agent_error().code()},
             {"message", message.agent_error().message().substr(0, 256)}});
        SendChallenge(/*with_verdict=*/false);
        Done();
        return;
      default:
        if (!hello_done_) break;
        StreamErrorReply(grpc::StatusCode::INVALID_ARGUMENT,
                         "empty AgentMessage");
        return;
    }
    Done(GrpcError(grpc::StatusCode::INVALID_ARGUMENT,
                   "the first message must be a Hello"));
  }

  void HandleHello(const v1::Hello& hello) {
    absl::StatusOr<Principal> caller =
        server::CallerPrincipal(*context_->auth_context());
    if (!caller.ok()) {
      Done(server::ToGrpcStatus(caller.status()));
      return;
    }
    std::optional<Grant> agent = caller->Agent();
    if (!agent || agent->name != hello.agent_id()) {
      Done(GrpcError(grpc::StatusCode::PERMISSION_DENIED,
                     "agent_id is not the identity of the client "
                     "certificate"));
      return;
    }
    if (absl::Status s = core::ValidateAgentId(hello.agent_id()); !s.ok()) {
      Done(GrpcError(grpc::StatusCode::INVALID_ARGUMENT, s.message()));
      return;
    }
    if (hello.boot_id().size() > 64 || hello.agent_version().size() > 64 ||
        hello.aik_name().size() < 34 || hello.aik_name().size() > 66 ||
        hello.capabilities().hash_algs_size() > 16 ||
        hello.capabilities().sign_schemes_size() > 16 ||
        hello.capabilities().pcr_banks_size() > 16 ||
        hello.capabilities().ima_formats_size() > 16) {
      Done(GrpcError(grpc::StatusCode::INVALID_ARGUMENT,
                     "Hello: a field is over its bound"));
      return;
    }
    if (!service_->hello_limiter().Allow(hello.agent_id(), absl::Now())) {
      Done(GrpcError(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     "too many Hellos for this agent; back off"));
      return;
    }
    bool sha256_bank = false;
    for (int bank : hello.capabilities().pcr_banks()) {
      sha256_bank = sha256_bank || bank == v1::HASH_ALGORITHM_SHA256;
    }
    if (!sha256_bank) {
      Done(GrpcError(grpc::StatusCode::FAILED_PRECONDITION,
                     "the TPM has no SHA-256 PCR bank"));
      return;
    }
    tenant_ = agent->tenant;
    agent_id_ = hello.agent_id();
    absl::StatusOr<store::Takeover> taken = service_->store()->TakeOver(
        tenant_, agent_id_, service_->options().verifier_id,
        hello.agent_version(), Lease(absl::Seconds(60)));
    if (!taken.ok()) {
      Done(absl::IsUnavailable(taken.status())
               ? GrpcError(grpc::StatusCode::UNAVAILABLE,
                           "database unavailable; reconnect with backoff")
               : server::ToGrpcStatus(taken.status()));
      return;
    }
    epoch_ = taken->agent.epoch;
    MarkLeaseWritten(absl::Now());
    service_->Register(this, agent_id_, epoch_, Lease(absl::Seconds(60)));
    row_ = taken->agent;
    if (taken->aik_name != hello.aik_name()) {
      Done(GrpcError(grpc::StatusCode::FAILED_PRECONDITION,
                     "aik_name is not the registrar's active AIK: register "
                     "again"));
      return;
    }
    absl::StatusOr<std::unique_ptr<ctpm::AikVerifier>> aik =
        ctpm::AikVerifier::Create(AsBytes(taken->aik_public));
    if (!aik.ok()) {
      Done(GrpcError(grpc::StatusCode::FAILED_PRECONDITION,
                     "the registered AIK does not parse: register again"));
      return;
    }
    aik_ = *std::move(aik);
    if (row_.clock_known) {
      progress_.clock = ctpm::ClockInfo{row_.clock, row_.reset_count,
                                        row_.restart_count, true};
    }
    progress_.ima.next_entry_index = row_.ima_next_entry;
    if (row_.pcr10_sha256.size() == 32) {
      std::memcpy(progress_.ima.pcr_sha256.data(), row_.pcr10_sha256.data(),
                  32);
    }
    if (row_.pcr10_sha1.size() == 20) {
      std::memcpy(progress_.ima.pcr_sha1.data(), row_.pcr10_sha1.data(), 20);
    }
    hello_done_ = true;
    Log(LogLevel::kInfo, "agent stream taken",
        {{"agent_id", agent_id_},
         {"epoch", epoch_},
         {"ima_next_entry", row_.ima_next_entry},
         {"state", row_.state}});
    want_boot_log_ = !row_.enrollment.boot_policy.empty();
    SendChallenge(/*with_verdict=*/false);
    Done();
  }

  absl::Duration Lease(absl::Duration floor) const {
    const absl::Duration lease =
        row_.enrollment.interval * service_->options().timeout_intervals;
    return lease > floor ? lease : floor;
  }

  IssuedChallenge NewChallenge() {
    IssuedChallenge c;
    c.nonce = RandomBytes(32);
    c.expires_at =
        absl::Now() + 2 * row_.enrollment.interval + absl::Seconds(30);
    c.hash_alg = TPM2_ALG_SHA256;
    c.selection.count = 1;
    c.selection.pcrSelections[0].hash = TPM2_ALG_SHA256;
    c.selection.pcrSelections[0].sizeofSelect = 3;
    auto select = [&](uint32_t pcr) {
      c.selection.pcrSelections[0].pcrSelect[pcr / 8] |=
          static_cast<uint8_t>(1u << (pcr % 8));
    };
    select(10);
    if (!row_.enrollment.boot_policy.empty()) {
      // The boot policy checks 0-9 and 14 (core::boot UsedPcrs).
      for (uint32_t p = 0; p <= 9; ++p) select(p);
      select(14);
    }
    if (!row_.enrollment.runtime_policy.empty()) {
      c.ima_from = progress_.ima.next_entry_index;
    }
    c.want_boot_log = want_boot_log_;
    return c;
  }

  v1::Challenge ChallengeMessage(const IssuedChallenge& c) const {
    v1::Challenge m;
    m.set_nonce(std::string(AsString(c.nonce)));
    server::SetTimestamp(c.expires_at, m.mutable_expires_at());
    m.set_hash_alg(v1::HASH_ALGORITHM_SHA256);
    m.set_sign_scheme(v1::SIGN_SCHEME_UNSPECIFIED);
    v1::PcrBankSelection* bank = m.mutable_pcr_selection()->add_banks();
    bank->set_hash_alg(v1::HASH_ALGORITHM_SHA256);
    for (uint32_t pcr = 0; pcr < 24; ++pcr) {
      if (c.selection.pcrSelections[0].pcrSelect[pcr / 8] & (1u << (pcr % 8))) {
        bank->add_pcr_indices(pcr);
      }
    }
    if (c.ima_from) m.set_ima_from(*c.ima_from);
    m.set_want_boot_log(c.want_boot_log);
    server::SetDuration(row_.enrollment.interval, m.mutable_interval());
    absl::Duration min = service_->options().min_interval;
    if (min > row_.enrollment.interval) min = row_.enrollment.interval;
    server::SetDuration(min, m.mutable_min_interval());
    return m;
  }

  // Issues a fresh challenge; with_verdict: it rides on a Verdict (the
  // caller sends it) and starts the min_interval clock.
  void SendChallenge(bool with_verdict) {
    challenge_ = NewChallenge();
    last_challenge_at_ = absl::Now();
    challenge_by_verdict_ = with_verdict;
    if (with_verdict) return;
    v1::VerifierMessage m;
    *m.mutable_challenge() = ChallengeMessage(*challenge_);
    Send(std::move(m));
  }

  void HandleEvidence(const std::shared_ptr<const v1::AgentMessage>& message,
                      bool may_block) {
    const v1::Evidence& ev = message->evidence();
    if (!challenge_) {
      StreamErrorReply(grpc::StatusCode::FAILED_PRECONDITION,
                       "no outstanding Challenge");
      return;
    }
    const absl::Time now = absl::Now();
    const absl::Duration min_interval =
        std::min(service_->options().min_interval, row_.enrollment.interval);
    if (challenge_by_verdict_ && now - last_verdict_ < min_interval) {
      if (++early_pushes_ > service_->options().max_early_pushes) {
        Done(GrpcError(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       "evidence sent faster than min_interval; cut off"));
        return;
      }
      StreamErrorReply(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       "evidence before min_interval",
                       min_interval - (now - last_verdict_));
      return;
    }
    early_pushes_ = 0;
    if (absl::Status s = ValidateEvidence(ev, *challenge_); !s.ok()) {
      StreamErrorReply(grpc::StatusCode::INVALID_ARGUMENT, s.message());
      return;
    }
    if (now > challenge_->expires_at) {
      SendChallenge(/*with_verdict=*/false);
      Done();
      return;
    }
    EvidenceInput input;
    input.aik = aik_.get();
    input.challenge = &*challenge_;
    input.progress = progress_;
    input.held_ima = held_ima_;
    Versioned<core::ima::RuntimePolicy> runtime;
    Versioned<core::boot::BootPolicy> boot;
    std::vector<v1::Failure> policy_failures;
    bool redispatch = false;
    auto load = [&](const std::string& name, auto getter, auto& slot) -> bool {
      if (name.empty()) return true;
      auto got = getter(row_.enrollment.tenant, name, may_block);
      if (got.ok()) {
        slot = *std::move(got);
        return true;
      }
      if (!may_block && got.status().message() == PolicyCache::kWouldBlock) {
        redispatch = true;
        return false;
      }
      if (absl::IsUnavailable(got.status())) {
        Done(GrpcError(grpc::StatusCode::UNAVAILABLE,
                       "database unavailable; reconnect with backoff"));
        return false;
      }
      v1::Failure f;
      f.set_code(v1::FAILURE_CODE_POLICY_UNAVAILABLE);
      f.set_detail(std::string(got.status().message()).substr(0, 1024));
      f.mutable_policy()->set_name(name);
      policy_failures.push_back(std::move(f));
      return true;
    };
    PolicyCache* cache = service_->policies();
    if (!load(
            row_.enrollment.runtime_policy,
            [cache](const std::string& t, const std::string& n, bool b) {
              return cache->Runtime(t, n, b);
            },
            runtime) ||
        !load(
            row_.enrollment.boot_policy,
            [cache](const std::string& t, const std::string& n, bool b) {
              return cache->Boot(t, n, b);
            },
            boot)) {
      if (redispatch) Dispatch(message);
      return;
    }
    input.runtime_policy = runtime.policy.get();
    input.boot_policy = boot.policy.get();
    EvidenceOutcome out;
    if (!policy_failures.empty()) {
      out.failures = std::move(policy_failures);
    } else {
      out = CheckEvidence(ev, input);
    }
    if (out.kind == EvidenceOutcome::Kind::kNewBoot) {
      Log(LogLevel::kInfo, "agent rebooted; asking for its logs from the start",
          {{"agent_id", agent_id_}});
      progress_.ima = core::ima::ImaReplayState{};
      held_ima_.clear();
      want_boot_log_ = !row_.enrollment.boot_policy.empty();
      SendChallenge(/*with_verdict=*/false);
      Done();
      return;
    }
    if (out.kind == EvidenceOutcome::Kind::kNeedMore) {
      held_ima_ = std::move(out.held_ima);
      IssuedChallenge next = NewChallenge();
      next.ima_from = out.next_ima_from;
      challenge_ = next;
      challenge_by_verdict_ = false;
      v1::VerifierMessage m;
      *m.mutable_challenge() = ChallengeMessage(next);
      Send(std::move(m));
      Done();
      return;
    }
    const bool has_runtime = !row_.enrollment.runtime_policy.empty();
    store::VerdictCommit c;
    c.tenant = tenant_;
    c.agent_id = agent_id_;
    c.owner = service_->options().verifier_id;
    c.epoch = epoch_;
    c.attestation_id = absl::BytesToHexString(AsString(RandomBytes(16)));
    c.nonce = std::string(AsString(challenge_->nonce));
    c.passed = out.passed;
    c.failures = EncodeFailures(out.failures, out.failures_truncated);
    std::string serialized = ev.SerializeAsString();
    std::string digest(SHA256_DIGEST_LENGTH, '\0');
    SHA256(reinterpret_cast<const uint8_t*>(serialized.data()),
           serialized.size(), reinterpret_cast<uint8_t*>(digest.data()));
    c.evidence_sha256 = std::move(digest);
    c.lease = Lease(absl::Seconds(60));
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
    }
    c.runtime_policy_version = runtime.version;
    auto result = std::make_shared<EvidenceOutcome>(std::move(out));
    const std::string attestation_id = c.attestation_id;
    submitted_at_ = absl::Now();
    service_->committer()->Submit(
        std::move(c), [this, result, attestation_id, has_runtime](
                          absl::StatusOr<store::VerdictApplied> applied) {
          Committed(*result, attestation_id, has_runtime, applied);
        });
  }

  void Committed(const EvidenceOutcome& out, const std::string& attestation_id,
                 bool has_runtime,
                 const absl::StatusOr<store::VerdictApplied>& applied) {
    if (!applied.ok()) {
      Done(GrpcError(grpc::StatusCode::UNAVAILABLE,
                     "database unavailable; the evidence was not recorded; "
                     "reconnect with backoff"));
      return;
    }
    if (applied->fenced) {
      Done(service_->FencedStatus(agent_id_, epoch_, this));
      return;
    }
    MarkLeaseWritten(absl::Now());
    if (out.clock) progress_.clock = out.clock;
    if (has_runtime) progress_.ima = out.ima;
    held_ima_.clear();
    want_boot_log_ = false;
    last_verdict_ = absl::Now();
    if (applied->previous_state != applied->state) {
      Log(LogLevel::kInfo, "agent state changed",
          {{"agent_id", agent_id_},
           {"from", applied->previous_state},
           {"to", applied->state},
           {"attestation_id", attestation_id},
           {"failures", out.failures.size()},
           {"first_failure", out.failures.empty()
                                 ? std::string()
                                 : absl::StrCat(out.failures[0].path(), " ",
                                                out.failures[0].detail())}});
    }
    SendChallenge(/*with_verdict=*/true);
    v1::VerifierMessage m;
    v1::Verdict* v = m.mutable_verdict();
    v->set_attestation_id(attestation_id);
    v->set_state(out.passed ? v1::ATTESTATION_STATE_PASS
                            : v1::ATTESTATION_STATE_FAIL);
    v->set_agent_state(sdk::ParseStateName(applied->state));
    for (const v1::Failure& f : out.failures) *v->add_failures() = f;
    v->set_failures_truncated(out.failures_truncated);
    server::SetTimestamp(last_verdict_, v->mutable_verified_at());
    if (has_runtime) v->set_ima_next_entry(progress_.ima.next_entry_index);
    *v->mutable_next_challenge() = ChallengeMessage(*challenge_);
    const absl::Time sent_at = absl::Now();
    service_->RecordLatency(sent_at - received_at_, sent_at - submitted_at_);
    Send(std::move(m));
    Done();
  }

  AttestationService* service_;
  grpc::CallbackServerContext* context_;

  absl::Mutex mu_;
  v1::AgentMessage in_;
  std::deque<v1::VerifierMessage> writes_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  bool read_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_ ABSL_GUARDED_BY(mu_);

  // Session (see the class comment).
  bool hello_done_ = false;
  std::string tenant_;
  std::string agent_id_;
  int64_t epoch_ = 0;
  store::AgentRow row_;
  std::unique_ptr<ctpm::AikVerifier> aik_;
  AgentProgress progress_;
  std::optional<IssuedChallenge> challenge_;
  bool challenge_by_verdict_ = false;
  bool want_boot_log_ = false;
  std::string held_ima_;
  absl::Time last_verdict_ = absl::InfinitePast();
  absl::Time last_challenge_at_ = absl::InfinitePast();
  std::atomic<int64_t> lease_written_us_{0};
  absl::Time received_at_;
  absl::Time submitted_at_;
  int early_pushes_ = 0;
};

AttestationService::AttestationService(store::PgVerifierStore* store,
                                       Executor* executor,
                                       GroupCommitter* committer,
                                       PolicyCache* policies,
                                       AttestationOptions options)
    : store_(store),
      executor_(executor),
      committer_(committer),
      policies_(policies),
      options_(std::move(options)),
      hello_limiter_(options_.hello_per_minute) {}

AttestationService::~AttestationService() = default;

grpc::ServerBidiReactor<v1::AgentMessage, v1::VerifierMessage>*
AttestationService::Attest(grpc::CallbackServerContext* context) {
  {
    absl::MutexLock lock(&mu_);
    ++open_;
  }
  return new StreamReactor(this, context);
}

void AttestationService::Register(StreamReactor* reactor,
                                  const std::string& agent_id, int64_t epoch,
                                  absl::Duration lease) {
  absl::MutexLock lock(&mu_);
  for (auto& [other, held] : streams_) {
    if (other != reactor && held.agent_id == agent_id) {
      other->End(grpc::Status(grpc::StatusCode::ABORTED,
                              "the agent opened a newer stream"));
    }
  }
  streams_[reactor] = Held{agent_id, epoch, lease};
}

void AttestationService::Unregister(StreamReactor* reactor) {
  absl::MutexLock lock(&mu_);
  streams_.erase(reactor);
}

size_t AttestationService::streams() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

void AttestationService::RenewLeases(absl::Duration every) {
  std::vector<std::pair<StreamReactor*, Held>> held;
  std::vector<store::PgVerifierStore::LeaseRenewal> renewals;
  const absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    const bool stalled = now - last_renewal_ > 2 * every;
    last_renewal_ = now;
    for (const auto& [reactor, h] : streams_) {
      held.emplace_back(reactor, h);
      renewals.push_back(
          {h.agent_id, h.epoch, h.lease,
           stalled || now - reactor->lease_written() > h.lease / 3});
    }
  }
  if (held.empty()) return;
  absl::StatusOr<std::vector<bool>> owned = store_->RenewLeases(renewals);
  if (!owned.ok()) return;  // Database down: the commits fail too.
  for (size_t i = 0; i < held.size(); ++i) {
    const auto& [reactor, h] = held[i];
    if ((*owned)[i]) {
      if (!renewals[i].renew) continue;
      absl::MutexLock lock(&mu_);  // The reactor lives while registered.
      auto it = streams_.find(reactor);
      if (it != streams_.end() && it->second.epoch == h.epoch) {
        reactor->MarkLeaseWritten(now);
      }
      continue;
    }
    grpc::Status status = FencedStatus(h.agent_id, h.epoch, nullptr);
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(reactor);
    if (it == streams_.end() || it->second.epoch != h.epoch) continue;
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      reactor->NoticeAndEnd(v1::ATTESTATION_STATE_UNENROLLED,
                            v1::STATE_CHANGE_CAUSE_UNENROLLED, status);
    } else {
      reactor->End(status);
    }
  }
}

grpc::Status AttestationService::FencedStatus(const std::string& agent_id,
                                              int64_t epoch,
                                              StreamReactor* reactor) {
  // Zero rows: another verifier took the agent over, or it was unenrolled.
  absl::StatusOr<bool> enrolled = store_->Enrolled(agent_id);
  if (enrolled.ok() && !*enrolled) {
    Log(LogLevel::kInfo, "agent unenrolled; closing its stream",
        {{"agent_id", agent_id}});
    grpc::Status status(grpc::StatusCode::FAILED_PRECONDITION,
                        "the agent was unenrolled");
    if (reactor != nullptr) {
      reactor->NoticeAndEnd(v1::ATTESTATION_STATE_UNENROLLED,
                            v1::STATE_CHANGE_CAUSE_UNENROLLED, status);
    }
    return status;
  }
  Log(LogLevel::kWarning,
      "ownership lost: another verifier took the agent over; closing the "
      "stream",
      {{"agent_id", agent_id}, {"epoch", epoch}});
  return grpc::Status(grpc::StatusCode::ABORTED,
                      "another verifier took this agent over; reconnect");
}

void AttestationService::RecordLatency(absl::Duration total,
                                       absl::Duration commit) {
  absl::MutexLock lock(&stats_mu_);
  if (latencies_.size() < (size_t{1} << 20)) {
    latencies_.push_back(total);
    commit_latencies_.push_back(commit);
  }
}

AttestationService::LatencyStats AttestationService::TakeLatencyStats() {
  std::vector<absl::Duration> v, c;
  {
    absl::MutexLock lock(&stats_mu_);
    v.swap(latencies_);
    c.swap(commit_latencies_);
  }
  LatencyStats out;
  out.verdicts = v.size();
  if (v.empty()) return out;
  auto at = [](std::vector<absl::Duration>& d, size_t per_100) {
    std::sort(d.begin(), d.end());
    return d[std::min(d.size() - 1, d.size() * per_100 / 100)];
  };
  out.p50 = at(v, 50);
  out.p99 = at(v, 99);
  out.max = v.back();
  out.commit_p50 = at(c, 50);
  out.commit_p99 = at(c, 99);
  return out;
}

void AttestationService::Drain() {
  absl::MutexLock lock(&mu_);
  for (auto& [reactor, held] : streams_) {
    reactor->End(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "verifier draining; reconnect"));
  }
}

}  // namespace vouch::verifier
