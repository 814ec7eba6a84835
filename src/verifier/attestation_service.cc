#include "verifier/attestation_service.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "core/attest/limits.h"
#include "server/auth.h"
#include "verifier/random_pool.h"
#include "verifier/stream_reactor.h"

namespace vouch::verifier {

namespace {

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

// A stream refused before it started (the verifier's stream cap).
class RefusedStream final
    : public grpc::ServerBidiReactor<v1::AgentMessage, v1::VerifierMessage> {
 public:
  explicit RefusedStream(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

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
      hello_limiter_(options_.admission.hello_per_minute),
      admission_(options_.admission.max_streams),
      ima_budget_(options_.admission.max_held_ima_bytes),
      new_streams_(options_.admission.new_streams_per_second,
                   options_.admission.new_streams_burst),
      deadline_thread_([this] { EnforceHelloDeadline(); }) {}

AttestationService::~AttestationService() {
  stop_.Notify();
  deadline_thread_.join();
}

grpc::ServerBidiReactor<v1::AgentMessage, v1::VerifierMessage>*
AttestationService::Attest(grpc::CallbackServerContext* context) {
  if (const absl::Time now = absl::Now(); !TakeStreamToken(now)) {
    return RefuseByRate(context, now);
  }
  if (StreamReactor* reactor = Admit(context)) return reactor;
  context->AddTrailingMetadata(
      core::attest::kRetryAfterMetadata,
      RetryAfterValue(options_.admission.busy_retry_after));
  return new RefusedStream(
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                   "verifier at its stream limit; retry later"));
}

StreamReactor* AttestationService::Admit(grpc::CallbackServerContext* context) {
  StreamReactor* reactor = admission_.Open(
      absl::Now() + options_.admission.hello_deadline,
      [&] { return new StreamReactor(this, context, AgentIdentity(context)); });
  if (reactor == nullptr && options_.metrics != nullptr) {
    options_.metrics->common().Refused(server::Refusal::kStreamCap);
  }
  return reactor;
}

bool AttestationService::TakeStreamToken(absl::Time now) {
  absl::MutexLock lock(&rate_mu_);
  return new_streams_.Take(now);
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
  absl::Duration wait;
  {
    absl::MutexLock lock(&rate_mu_);
    wait = new_streams_.RetryAfter(now);
  }
  const AdmissionOptions& a = options_.admission;
  const absl::Duration hint =
      wait + absl::Seconds(static_cast<double>(a.new_streams_burst) /
                           a.new_streams_per_second);
  context->AddTrailingMetadata(core::attest::kRetryAfterMetadata,
                               RetryAfterValue(hint));
  return new RefusedStream(
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                   "verifier admitting new streams at its rate limit; retry "
                   "later"));
}

void AttestationService::FirstMessage(StreamReactor* reactor) {
  admission_.HelloReceived(reactor);
}

void AttestationService::EnforceHelloDeadline() {
  const absl::Duration period =
      HelloCheckPeriod(options_.admission.hello_deadline);
  while (!stop_.WaitForNotificationWithTimeout(period)) {
    admission_.ExpireHellos(absl::Now(), [this](StreamReactor* reactor) {
      if (options_.metrics != nullptr) {
        options_.metrics->common().Refused(server::Refusal::kHelloDeadline);
      }
      reactor->End(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                "no Hello in time"));
    });
  }
}

bool AttestationService::HoldImaBytes(int64_t delta) {
  if (ima_budget_.Hold(delta)) return true;
  if (options_.metrics != nullptr) {
    options_.metrics->common().Refused(server::Refusal::kImaBudget);
  }
  return false;
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
  auto held = streams_.find(reactor);
  if (held != streams_.end() && held->second.agent_id != agent_id) {
    ForgetNewest(reactor, held->second.agent_id);
  }
  // One lookup, not a scan of every stream: each Hello of a reconnect storm
  // would otherwise cost time in proportion to the streams already open.
  auto [newest, fresh] = newest_.try_emplace(agent_id, reactor);
  if (!fresh && newest->second != reactor) {
    // The streams it had superseded were ended then.
    newest->second->End(grpc::Status(grpc::StatusCode::ABORTED,
                                     "the agent opened a newer stream"));
    newest->second = reactor;
  }
  streams_[reactor] = Held{agent_id, epoch, lease, aik_name};
}

void AttestationService::ForgetNewest(StreamReactor* reactor,
                                      const std::string& agent_id) {
  auto newest = newest_.find(agent_id);
  if (newest != newest_.end() && newest->second == reactor) {
    newest_.erase(newest);
  }
}

void AttestationService::Unregister(StreamReactor* reactor) {
  {
    absl::MutexLock lock(&mu_);
    auto held = streams_.find(reactor);
    if (held != streams_.end()) {
      ForgetNewest(reactor, held->second.agent_id);
      streams_.erase(held);
    }
  }
  admission_.Closed(reactor);
}

size_t AttestationService::streams() const { return admission_.open(); }

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
