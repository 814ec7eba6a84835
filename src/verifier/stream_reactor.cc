#include "verifier/stream_reactor.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "common/logging.h"
#include "core/attest/limits.h"
#include "server/auth.h"
#include "verifier/admission.h"

namespace vouch::verifier {

using Kind = SessionAction::Kind;

StreamReactor::StreamReactor(AttestationService* service,
                             grpc::CallbackServerContext* context,
                             std::pair<std::string, std::string> identity)
    : service_(service),
      context_(context),
      session_(std::move(identity.first), std::move(identity.second),
               service->options_.session, service, service->policies_) {
  StartRead(&in_);
}

template <typename Work>
void StreamReactor::Blocking(Work work) {
  if (service_->executor_->Submit(std::move(work))) return;
  if (VerifierMetrics* m = service_->options_.metrics) {
    m->common().Refused(server::Refusal::kOverloaded);
  }
  Done(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                    "verifier overloaded; reconnect with backoff"));
}

void StreamReactor::OnReadDone(bool ok) {
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
  Blocking([this, message] { Run(session_.OnMessage(message, absl::Now())); });
}

void StreamReactor::OnWriteDone(bool ok) {
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

void StreamReactor::OnCancel() {
  absl::MutexLock lock(&mu_);
  if (!finish_) finish_ = grpc::Status::CANCELLED;
  MaybeFinishLocked();
}

void StreamReactor::OnDone() {
  if (NoticeHub* n = service_->options_.notices) n->Remove(this);
  service_->Unregister(this);
  const int64_t epoch = session_.epoch();
  if (epoch > 0) {
    store::AgentStore* store = service_->store_;
    std::string agent = session_.agent_id();
    (void)service_->executor_->Submit(
        [store, agent, epoch] { (void)store->Release(agent, epoch); });
  }
  delete this;
}

void StreamReactor::Apply(const SessionActions& actions) {
  for (const SessionAction& a : actions) {
    if (a.kind == Kind::kSend) Send(a.message);
    if (a.kind == Kind::kEnd) End(server::ToGrpcStatus(a.status));
  }
}

void StreamReactor::End(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  if (!finish_) finish_ = std::move(status);
  MaybeFinishLocked();
}

void StreamReactor::MarkLeaseWritten(absl::Time t) {
  const int64_t us = absl::ToUnixMicros(t);
  int64_t seen = lease_written_us_.load();
  while (seen < us && !lease_written_us_.compare_exchange_weak(seen, us)) {
  }
}

void StreamReactor::Run(SessionActions actions) {
  for (SessionAction& a : actions) {
    switch (a.kind) {
      case Kind::kSend:
        if (a.message.has_verdict()) RecordVerdict(a.message);
        Send(std::move(a.message));
        break;
      case Kind::kHold:
        MarkLeaseWritten(absl::Now());
        service_->Register(this, a.agent_id, a.epoch, a.lease, a.aik_name);
        if (NoticeHub* n = service_->options_.notices) {
          n->Add(this, subject_.tenant, a.agent_id);
        }
        break;
      case Kind::kTakeOver:
        Blocking([this, a = std::move(a)] { TakeOver(a); });
        break;
      case Kind::kLoadPolicies:
        Blocking([this, a = std::move(a)] {
          const absl::Time now = absl::Now();
          Run(session_.OnPoliciesLoaded(
              LoadPolicies(*service_->policies_, a, now), now));
        });
        break;
      case Kind::kCommit:
        Commit(std::move(a));
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

void StreamReactor::TakeOver(const SessionAction& a) {
  absl::StatusOr<store::Takeover> taken = service_->store_->TakeOver(
      a.tenant, a.agent_id, service_->options_.session.verifier_id,
      a.agent_version, a.lease);
  VerifierMetrics* m = service_->options_.metrics;
  if (m != nullptr && taken.ok()) m->TookOver();
  if (taken.ok()) {
    subject_.tenant = taken->agent.enrollment.tenant;
    subject_.agent_id = taken->agent.enrollment.agent_id;
    subject_.runtime_policy = !taken->agent.enrollment.runtime_policy.empty();
    subject_.boot_policy = !taken->agent.enrollment.boot_policy.empty();
  }
  Run(session_.OnTakenOver(std::move(taken), absl::Now()));
}

void StreamReactor::Commit(SessionAction a) {
  submitted_at_ = absl::Now();
  ima_checked_ = a.commit.ima_from && a.commit.ima_next_entry &&
                         *a.commit.ima_next_entry > *a.commit.ima_from
                     ? *a.commit.ima_next_entry - *a.commit.ima_from
                     : 0;
  window_accepted_ = a.window_accepted;
  shadow_would_fail_ = a.commit.shadow ? a.commit.shadow->failure_count : 0;
  service_->committer_->Submit(
      std::move(a.commit),
      [this](absl::StatusOr<store::VerdictApplied> applied) {
        const absl::Time now = absl::Now();
        if (applied.ok() && !applied->fenced) MarkLeaseWritten(now);
        RecordCommit(applied);
        Run(session_.OnCommitted(std::move(applied), now));
      });
}

void StreamReactor::RecordVerdict(v1::VerifierMessage& message) {
  const absl::Time sent_at = absl::Now();
  service_->latency_.Record(sent_at - received_at_, sent_at - submitted_at_);
  if (VerifierMetrics* m = service_->options_.metrics) {
    m->Verdict(message.verdict(), sent_at - received_at_);
  }
  AttachResult(message, absl::Now());
}

void StreamReactor::AttachResult(v1::VerifierMessage& message, absl::Time now) {
  const ResultIssuer* issuer = service_->options_.results;
  if (issuer == nullptr || subject_.agent_id.empty()) return;
  v1::Verdict* verdict = message.mutable_verdict();
  ResultIssuer::Subject subject = subject_;
  subject.state = verdict->agent_state();
  for (const v1::Failure& f : verdict->failures()) {
    subject.failure_codes.push_back(f.code());
  }
  subject.verdict_at = absl::FromUnixSeconds(verdict->verified_at().seconds());
  subject.attestation_id = verdict->attestation_id();
  absl::StatusOr<ResultIssuer::Issued> issued = issuer->Issue(subject, "", now);
  if (!issued.ok()) {
    Log(LogLevel::kWarning, "attestation result not signed",
        {{"agent_id", subject.agent_id}, {"error", issued.status().message()}});
    return;
  }
  verdict->set_ear_token(std::move(issued->token));
}

void StreamReactor::RecordCommit(
    const absl::StatusOr<store::VerdictApplied>& applied) {
  VerifierMetrics* m = service_->options_.metrics;
  if (m == nullptr || !applied.ok()) return;
  if (applied->fenced) {
    m->Fenced();
    return;
  }
  if (ima_checked_ > 0) m->ImaEntriesChecked(ima_checked_);
  if (window_accepted_ > 0) m->WindowAccepted(window_accepted_);
  if (shadow_would_fail_ > 0) m->ShadowWouldFail(shadow_would_fail_);
}

void StreamReactor::MaybeFinishLocked() {
  if (!finish_ || finished_ || writing_ || busy_) return;
  finished_ = true;
  if (finish_->error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
    context_->AddTrailingMetadata(
        core::attest::kRetryAfterMetadata,
        RetryAfterValue(service_->options_.admission.busy_retry_after));
  }
  Finish(*finish_);
}

void StreamReactor::Send(v1::VerifierMessage message) {
  absl::MutexLock lock(&mu_);
  if (finish_) return;
  writes_.push_back(std::move(message));
  if (!writing_) {
    writing_ = true;
    StartWrite(&writes_.front());
  }
}

void StreamReactor::Notice(v1::VerifierMessage message) {
  absl::MutexLock lock(&mu_);
  if (finish_) return;
  // writes_.front() is in flight while writing_; the rest are unsent. The
  // in-flight message must stay where it is (erasing from the middle of a
  // deque may move it), so a full set of unsent notices shifts by
  // assignment: the oldest drops out, the new one takes the last slot.
  std::vector<v1::VerifierMessage*> unsent;
  for (auto it = writes_.begin() + (writing_ ? 1 : 0); it != writes_.end();
       ++it) {
    if (it->has_action_notice()) unsent.push_back(&*it);
  }
  if (unsent.size() >= kMaxNoticesPerRound) {
    for (size_t i = 0; i + 1 < unsent.size(); ++i) {
      *unsent[i] = std::move(*unsent[i + 1]);
    }
    *unsent.back() = std::move(message);
    return;
  }
  writes_.push_back(std::move(message));
  if (!writing_) {
    writing_ = true;
    StartWrite(&writes_.front());
  }
}

void StreamReactor::Done(std::optional<grpc::Status> end) {
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

}  // namespace vouch::verifier
