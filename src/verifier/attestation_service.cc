#include "verifier/attestation_service.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "core/attest/limits.h"
#include "server/auth.h"
#include "verifier/random_pool.h"

namespace vouch::verifier {

namespace {

using Kind = SessionAction::Kind;

// The caller's identity from its client certificate; empty when it is not
// an agent (the session then refuses its Hello).
std::pair<std::string, std::string> AgentIdentity(
    grpc::CallbackServerContext* context) {
  absl::StatusOr<Principal> caller =
      server::CallerPrincipal(*context->auth_context());
  if (!caller.ok()) return {};
  std::optional<Grant> agent = caller->Agent();
  if (!agent) return {};
  return {agent->tenant, agent->name};
}

std::string RetryAfterMs(absl::Duration d) {
  return absl::StrCat(absl::ToInt64Milliseconds(d));
}

// A stream refused before it started (the verifier's stream cap).
class RefusedStream final
    : public grpc::ServerBidiReactor<v1::AgentMessage, v1::VerifierMessage> {
 public:
  explicit RefusedStream(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

// One agent's stream: moves messages between gRPC and its
// AttestationSession and runs the session's actions. The session is
// touched only by the chain read -> OnMessage -> (blocking work or commit)
// -> kReadNext/kEnd, which never runs twice at once (busy_); mu_ guards
// what reactions and that chain share.
class StreamReactor final
    : public grpc::ServerBidiReactor<v1::AgentMessage, v1::VerifierMessage> {
 public:
  StreamReactor(AttestationService* service,
                grpc::CallbackServerContext* context,
                std::pair<std::string, std::string> identity)
      : service_(service),
        context_(context),
        session_(std::move(identity.first), std::move(identity.second),
                 service->options_.session, service, service->policies_) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!first_read_) {
      first_read_ = true;
      service_->FirstMessage(this);
    }
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
    if (AttestationSession::Cheap(*message)) {
      Run(session_.OnMessage(std::move(message), received_at_));
      return;
    }
    Blocking(
        [this, message] { Run(session_.OnMessage(message, absl::Now())); });
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
    const int64_t epoch = session_.epoch();
    if (epoch > 0) {
      store::AgentStore* store = service_->store_;
      std::string agent = session_.agent_id();
      (void)service_->executor_->Submit(
          [store, agent, epoch] { (void)store->Release(agent, epoch); });
    }
    {
      absl::MutexLock lock(&service_->mu_);
      --service_->open_;
    }
    delete this;
  }

  // Sends and ends from outside the session's chain (the lease sweeper,
  // draining, a newer stream): only kSend and kEnd are expected.
  void Apply(const SessionActions& actions) {
    for (const SessionAction& a : actions) {
      if (a.kind == Kind::kSend) Send(a.message);
      if (a.kind == Kind::kEnd) End(server::ToGrpcStatus(a.status));
    }
  }

  void End(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    if (!finish_) finish_ = std::move(status);
    MaybeFinishLocked();
  }

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

 private:
  // Runs what the session asked for, in order. Each list ends the chain
  // (kReadNext, kEnd) or continues it (blocking work, a commit).
  void Run(SessionActions actions) {
    for (SessionAction& a : actions) {
      switch (a.kind) {
        case Kind::kSend:
          if (a.message.has_verdict()) {
            const absl::Time sent_at = absl::Now();
            service_->latency_.Record(sent_at - received_at_,
                                      sent_at - submitted_at_);
            if (VerifierMetrics* m = service_->options_.metrics) {
              m->Verdict(a.message.verdict(), sent_at - received_at_);
            }
          }
          if (a.message.has_verdict()) AttachResult(a.message, absl::Now());
          Send(std::move(a.message));
          break;
        case Kind::kHold:
          MarkLeaseWritten(absl::Now());
          service_->Register(this, a.agent_id, a.epoch, a.lease, a.aik_name);
          break;
        case Kind::kTakeOver:
          Blocking([this, a = std::move(a)] {
            absl::StatusOr<store::Takeover> taken = service_->store_->TakeOver(
                a.tenant, a.agent_id, service_->options_.session.verifier_id,
                a.agent_version, a.lease);
            VerifierMetrics* m = service_->options_.metrics;
            if (m != nullptr && taken.ok()) m->TookOver();
            if (taken.ok()) {
              subject_.tenant = taken->agent.enrollment.tenant;
              subject_.agent_id = taken->agent.enrollment.agent_id;
              subject_.runtime_policy =
                  !taken->agent.enrollment.runtime_policy.empty();
              subject_.boot_policy =
                  !taken->agent.enrollment.boot_policy.empty();
            }
            Run(session_.OnTakenOver(std::move(taken), absl::Now()));
          });
          break;
        case Kind::kLoadPolicies:
          Blocking([this, a = std::move(a)] {
            Run(session_.OnPoliciesLoaded(Load(a), absl::Now()));
          });
          break;
        case Kind::kCommit:
          submitted_at_ = absl::Now();
          ima_checked_ = a.commit.ima_from && a.commit.ima_next_entry &&
                                 *a.commit.ima_next_entry > *a.commit.ima_from
                             ? *a.commit.ima_next_entry - *a.commit.ima_from
                             : 0;
          service_->committer_->Submit(
              std::move(a.commit),
              [this](absl::StatusOr<store::VerdictApplied> applied) {
                const absl::Time now = absl::Now();
                if (applied.ok() && !applied->fenced) MarkLeaseWritten(now);
                RecordCommit(applied);
                Run(session_.OnCommitted(std::move(applied), now));
              });
          break;
        case Kind::kCheckFence:
          Blocking([this, agent = std::move(a.agent_id)] {
            Run(session_.OnFenceChecked(service_->store_->Enrolled(agent),
                                        absl::Now()));
          });
          break;
        case Kind::kReadNext:
          Done(std::nullopt);
          break;
        case Kind::kEnd:
          Done(server::ToGrpcStatus(a.status));
          break;
      }
    }
  }

  // Signs the agent's result after this committed verdict into the message
  // (docs/results.md); a signing failure only leaves the token out.
  void AttachResult(v1::VerifierMessage& message, absl::Time now) {
    const ResultIssuer* issuer = service_->options_.results;
    if (issuer == nullptr || subject_.agent_id.empty()) return;
    v1::Verdict* verdict = message.mutable_verdict();
    ResultIssuer::Subject subject = subject_;
    subject.state = verdict->agent_state();
    for (const v1::Failure& f : verdict->failures()) {
      subject.failure_codes.push_back(f.code());
    }
    subject.verdict_at =
        absl::FromUnixSeconds(verdict->verified_at().seconds());
    subject.attestation_id = verdict->attestation_id();
    absl::StatusOr<ResultIssuer::Issued> issued =
        issuer->Issue(subject, "", now);
    if (!issued.ok()) {
      Log(LogLevel::kWarning, "attestation result not signed",
          {{"agent_id", subject.agent_id},
           {"error", issued.status().message()}});
      return;
    }
    verdict->set_ear_token(std::move(issued->token));
  }

  void RecordCommit(const absl::StatusOr<store::VerdictApplied>& applied) {
    VerifierMetrics* m = service_->options_.metrics;
    if (m == nullptr || !applied.ok()) return;
    if (applied->fenced) {
      m->Fenced();
    } else if (ima_checked_ > 0) {
      m->ImaEntriesChecked(ima_checked_);
    }
  }

  LoadedPolicies Load(const SessionAction& a) {
    LoadedPolicies loaded;
    PolicyCache* cache = service_->policies_;
    const absl::Time now = absl::Now();
    if (!a.runtime_policy.empty()) {
      loaded.runtime = cache->Runtime(a.tenant, a.runtime_policy, now);
    }
    if (!a.boot_policy.empty()) {
      loaded.boot = cache->Boot(a.tenant, a.boot_policy, now);
    }
    if (!a.pcr_policy.empty()) {
      loaded.pcr = cache->Pcr(a.tenant, a.pcr_policy, now);
    }
    return loaded;
  }

  // Runs `work` (which continues the chain) on the executor; ends the
  // stream when it is full.
  template <typename Work>
  void Blocking(Work work) {
    if (service_->executor_->Submit(std::move(work))) return;
    if (VerifierMetrics* m = service_->options_.metrics) {
      m->common().Refused(server::Refusal::kOverloaded);
    }
    Done(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "verifier overloaded; reconnect with backoff"));
  }

  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!finish_ || finished_ || writing_ || busy_) return;
    finished_ = true;
    if (finish_->error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      context_->AddTrailingMetadata(
          core::attest::kRetryAfterMetadata,
          RetryAfterMs(service_->options_.busy_retry_after));
    }
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

  // The end of the chain: read the next message (or finish).
  void Done(std::optional<grpc::Status> end) {
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
  uint64_t ima_checked_ = 0;  // IMA entries the pending commit accepts.
};

AttestationService::AttestationService(store::AgentStore* store,
                                       Executor* executor,
                                       GroupCommitter* committer,
                                       PolicyCache* policies,
                                       AttestationOptions options)
    : store_(store),
      executor_(executor),
      committer_(committer),
      policies_(policies),
      options_(std::move(options)),
      hello_limiter_(options_.hello_per_minute),
      new_streams_(options_.new_streams_per_second, options_.new_streams_burst),
      deadline_thread_([this] { EnforceHelloDeadline(); }) {}

AttestationService::~AttestationService() {
  stop_.Notify();
  deadline_thread_.join();
}

grpc::ServerBidiReactor<v1::AgentMessage, v1::VerifierMessage>*
AttestationService::Attest(grpc::CallbackServerContext* context) {
  absl::MutexLock lock(&mu_);
  if (open_ >= options_.max_streams) {
    if (options_.metrics != nullptr) {
      options_.metrics->common().Refused(server::Refusal::kStreamCap);
    }
    context->AddTrailingMetadata(core::attest::kRetryAfterMetadata,
                                 RetryAfterMs(options_.busy_retry_after));
    return new RefusedStream(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     "verifier at its stream limit; retry later"));
  }
  if (const absl::Time now = absl::Now(); !new_streams_.Take(now)) {
    return RefuseByRate(context, now);
  }
  ++open_;
  auto* reactor = new StreamReactor(this, context, AgentIdentity(context));
  awaiting_hello_[reactor] = absl::Now() + options_.hello_deadline;
  return reactor;
}

grpc::ServerBidiReactor<v1::AgentMessage, v1::VerifierMessage>*
AttestationService::RefuseByRate(grpc::CallbackServerContext* context,
                                 absl::Time now) {
  if (options_.metrics != nullptr) {
    options_.metrics->common().Refused(server::Refusal::kStreamRate);
  }
  // The hint spreads the refused over the time the bucket needs to admit
  // them all: the backlog beyond this token at the configured rate (at
  // least the wait for the next token); agents add their own jitter.
  const absl::Duration hint =
      new_streams_.RetryAfter(now) +
      absl::Seconds(static_cast<double>(options_.new_streams_burst) /
                    options_.new_streams_per_second);
  context->AddTrailingMetadata(core::attest::kRetryAfterMetadata,
                               RetryAfterMs(hint));
  return new RefusedStream(
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                   "verifier admitting new streams at its rate limit; retry "
                   "later"));
}

void AttestationService::FirstMessage(StreamReactor* reactor) {
  absl::MutexLock lock(&mu_);
  awaiting_hello_.erase(reactor);
}

void AttestationService::EnforceHelloDeadline() {
  const absl::Duration period = std::clamp(
      options_.hello_deadline / 4, absl::Milliseconds(10), absl::Seconds(1));
  while (!stop_.WaitForNotificationWithTimeout(period)) {
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    for (auto it = awaiting_hello_.begin(); it != awaiting_hello_.end();) {
      if (it->second > now) {
        ++it;
        continue;
      }
      if (options_.metrics != nullptr) {
        options_.metrics->common().Refused(server::Refusal::kHelloDeadline);
      }
      it->first->End(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                  "no Hello in time"));
      it = awaiting_hello_.erase(it);
    }
  }
}

bool AttestationService::HoldImaBytes(int64_t delta) {
  if (delta <= 0) {
    held_ima_bytes_.fetch_add(delta);
    return true;
  }
  int64_t held = held_ima_bytes_.load();
  do {
    if (held + delta > options_.max_held_ima_bytes) {
      if (options_.metrics != nullptr) {
        options_.metrics->common().Refused(server::Refusal::kImaBudget);
      }
      return false;
    }
  } while (!held_ima_bytes_.compare_exchange_weak(held, held + delta));
  return true;
}

Bytes AttestationService::Random(size_t n) { return RandomBytes(n); }

bool AttestationService::AllowHello(const std::string& agent_id,
                                    absl::Time now) {
  if (hello_limiter_.Allow(agent_id, now)) return true;
  if (options_.metrics != nullptr) {
    options_.metrics->common().Refused(server::Refusal::kHelloRate);
  }
  return false;
}

void AttestationService::Register(StreamReactor* reactor,
                                  const std::string& agent_id, int64_t epoch,
                                  absl::Duration lease,
                                  const std::string& aik_name) {
  absl::MutexLock lock(&mu_);
  for (auto& [other, held] : streams_) {
    if (other != reactor && held.agent_id == agent_id) {
      other->End(grpc::Status(grpc::StatusCode::ABORTED,
                              "the agent opened a newer stream"));
    }
  }
  streams_[reactor] = Held{agent_id, epoch, lease, aik_name};
}

void AttestationService::Unregister(StreamReactor* reactor) {
  absl::MutexLock lock(&mu_);
  streams_.erase(reactor);
  awaiting_hello_.erase(reactor);
}

size_t AttestationService::streams() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

void AttestationService::RenewLeases(absl::Duration every) {
  std::vector<std::pair<StreamReactor*, Held>> held;
  std::vector<store::LeaseRenewal> renewals;
  const absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    const bool stalled = now - last_renewal_ > 2 * every;
    last_renewal_ = now;
    for (const auto& [reactor, h] : streams_) {
      held.emplace_back(reactor, h);
      renewals.push_back(
          {h.agent_id, h.epoch, h.lease,
           stalled || now - reactor->lease_written() > h.lease / 3,
           h.aik_name});
    }
  }
  if (held.empty()) return;
  absl::StatusOr<std::vector<bool>> owned = store_->RenewLeases(renewals);
  if (!owned.ok()) return;  // Database down: the commits fail too.
  for (size_t i = 0; i < held.size(); ++i) {
    const auto& [reactor, h] = held[i];
    std::optional<SessionActions> fenced;
    if (!(*owned)[i]) {
      // Zero rows: another verifier took the agent over, it was
      // unenrolled, or the registration's AIK changed.
      fenced = AttestationSession::Fenced(
          h.agent_id, h.epoch, store_->Enrolled(h.agent_id), absl::Now());
    }
    absl::MutexLock lock(&mu_);  // The reactor lives while registered.
    auto it = streams_.find(reactor);
    if (it == streams_.end() || it->second.epoch != h.epoch) continue;
    if (fenced) {
      if (options_.metrics != nullptr) options_.metrics->Fenced();
      reactor->Apply(*fenced);
    } else if (renewals[i].renew) {
      reactor->MarkLeaseWritten(now);
    }
  }
}

void AttestationService::Drain() {
  absl::MutexLock lock(&mu_);
  for (auto& [reactor, held] : streams_) {
    reactor->End(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "verifier draining; reconnect"));
  }
}

}  // namespace vouch::verifier
