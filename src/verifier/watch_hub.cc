#include "verifier/watch_hub.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/thread_name.h"
#include "core/attest/wire.h"
#include "server/auth.h"
#include "server/proto_time.h"

namespace vouch::verifier {

std::string EventToken(const store::EventPosition& p) {
  if (p.incarnation.empty()) return absl::StrCat("w1:", p.xid, ":", p.seq);
  return absl::StrCat("w2:", p.incarnation, ":", p.xid, ":", p.seq);
}

namespace {

v1::StateChangeCause CauseOf(const std::string& c) {
  if (c == "verdict") return v1::STATE_CHANGE_CAUSE_VERDICT;
  if (c == "timeout") return v1::STATE_CHANGE_CAUSE_TIMEOUT;
  if (c == "enrolled") return v1::STATE_CHANGE_CAUSE_ENROLLED;
  if (c == "unenrolled") return v1::STATE_CHANGE_CAUSE_UNENROLLED;
  return v1::STATE_CHANGE_CAUSE_UNSPECIFIED;
}

v1::WatchEvent Heartbeat(const store::EventPosition& at) {
  v1::WatchEvent e;
  e.set_resume_token(EventToken(at));
  server::SetTimestamp(absl::Now(), e.mutable_event_time());
  e.mutable_heartbeat();
  return e;
}

// A state change, an attestation record or a shadow judgement as the Watch
// event of `tenant`.
v1::WatchEvent ToEvent(const std::string& tenant, const store::EventRow& r) {
  v1::WatchEvent e;
  e.set_resume_token(EventToken(r.position));
  e.set_agent_id(r.agent_id);
  e.set_event_id(absl::StrCat(r.position.xid, "-", r.position.seq));
  server::SetTimestamp(r.at, e.mutable_event_time());
  const v1::Verdict holder = core::attest::DecodeFailures(r.failures);
  if (r.shadow) {
    v1::ShadowFailure* f = e.mutable_shadow_failure();
    f->set_policy(r.policy);
    f->set_candidate(r.candidate);
    f->set_candidate_version(r.candidate_version);
    f->set_failure_count(r.shadow_failure_count);
    *f->mutable_failures() = holder.failures();
    f->set_failures_truncated(holder.failures_truncated());
    return e;
  }
  if (r.verdict) {
    v1::AttestationRecord* v = e.mutable_verdict();
    v->set_attestation_id(r.attestation_id);
    v->set_tenant(tenant);
    v->set_agent_id(r.agent_id);
    v->set_state(r.state);
    *v->mutable_failures() = holder.failures();
    v->set_failures_truncated(holder.failures_truncated());
    server::SetTimestamp(r.at, v->mutable_verified_at());
    v->set_verifier(r.verifier);
    return e;
  }
  v1::StateChange* c = e.mutable_state_change();
  c->set_previous_state(r.previous_state);
  c->set_state(r.state);
  c->set_cause(CauseOf(r.cause));
  c->set_attestation_id(r.attestation_id);
  if (r.state == v1::ATTESTATION_STATE_FAIL) {
    *c->mutable_failures() = holder.failures();
  }
  return e;
}

// What a remote caller is told when a read fails: OUT_OF_RANGE and other
// answers as they are, a database failure without its detail.
grpc::Status ReadFailed(const absl::Status& status) {
  if (absl::IsUnavailable(status) || absl::IsInternal(status)) {
    Log(LogLevel::kWarning, "watch read failed", {{"error", status.message()}});
    return server::ToGrpcStatus(
        absl::Status(status.code(), absl::IsUnavailable(status)
                                        ? "verifier database unavailable; "
                                          "resume with the last token"
                                        : "internal error"));
  }
  return server::ToGrpcStatus(status);
}

// The gRPC side of one Watch stream: writes what its subscriber queued, one
// write in flight; deleted in OnDone after leaving the hub.
class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchEvent>,
                           public WatchWaker {
 public:
  explicit WatchReactor(WatchHub* hub) : hub_(hub) {}

  // The poller may wake the reactor before this: nothing is missed, as
  // Attach writes whatever is queued.
  void Attach(std::shared_ptr<WatchSubscriber> subscriber) {
    absl::MutexLock lock(&mu_);
    subscriber_ = std::move(subscriber);
    WriteNextLocked();
  }

  void Wake() override {
    absl::MutexLock lock(&mu_);
    WriteNextLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      finished_ = true;  // The peer went away: OnDone follows.
      Finish(grpc::Status::OK);
      return;
    }
    WriteNextLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    WriteNextLocked();
  }

  void OnDone() override {
    std::shared_ptr<WatchSubscriber> s;
    {
      absl::MutexLock lock(&mu_);
      s = subscriber_;
    }
    hub_->Unsubscribe(s);
    delete this;
  }

 private:
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || subscriber_ == nullptr) return;
    if (cancelled_) {
      finished_ = true;
      Finish(grpc::Status::CANCELLED);
      return;
    }
    grpc::Status end;
    switch (subscriber_->Pop(&out_, &end)) {
      case WatchSubscriber::Next::kEvent:
        writing_ = true;
        StartWrite(&out_);
        return;
      case WatchSubscriber::Next::kEmpty:
        return;
      case WatchSubscriber::Next::kEnd:
        finished_ = true;
        Finish(end);
        return;
    }
  }

  WatchHub* const hub_;
  absl::Mutex mu_;
  std::shared_ptr<WatchSubscriber> subscriber_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  v1::WatchEvent out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// A Watch refused before it started.
class RefusedWatch final : public grpc::ServerWriteReactor<v1::WatchEvent> {
 public:
  explicit RefusedWatch(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

bool WatchFilter::Matches(const store::EventRow& row) const {
  if (row.verdict && !verdicts) return false;
  if (row.shadow && !shadows) return false;
  if (!agent_ids.empty() && std::find(agent_ids.begin(), agent_ids.end(),
                                      row.agent_id) == agent_ids.end()) {
    return false;
  }
  return row.shadow || states.empty() ||
         std::find(states.begin(), states.end(), row.state) != states.end();
}

WatchSubscriber::Next WatchSubscriber::Pop(v1::WatchEvent* out,
                                           grpc::Status* end) {
  absl::MutexLock lock(&mu_);
  if (end_) {
    *end = *end_;
    return Next::kEnd;
  }
  if (queue_.empty()) return Next::kEmpty;
  *out = std::move(queue_.front());
  queue_.pop_front();
  return Next::kEvent;
}

bool WatchSubscriber::Push(v1::WatchEvent e) {
  absl::MutexLock lock(&mu_);
  if (end_) return false;
  if (queue_.size() >= max_queued_) {
    queue_.clear();
    end_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "Watch reader too slow: events queued beyond the "
                        "verifier's bound; resume with the last token");
    return false;
  }
  queue_.push_back(std::move(e));
  return true;
}

void WatchSubscriber::End(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  if (!end_) end_ = std::move(status);
  queue_.clear();
}

bool WatchSubscriber::ended() {
  absl::MutexLock lock(&mu_);
  return end_.has_value();
}

void WatchSubscriber::Notify() {
  absl::MutexLock lock(&waker_mu_);
  if (waker_ != nullptr) waker_->Wake();
}

void WatchSubscriber::Detach() {
  absl::MutexLock lock(&waker_mu_);
  waker_ = nullptr;
}

WatchHub::WatchHub(store::EventStore* events, WatchHubOptions options)
    : events_(events), options_(options) {}

WatchHub::~WatchHub() {
  stop_.Notify();
  if (poller_.joinable()) poller_.join();
}

absl::StatusOr<std::shared_ptr<WatchSubscriber>> WatchHub::Subscribe(
    const std::string& caller, WatchFilter filter,
    std::optional<store::EventPosition> from, WatchWaker* waker) {
  absl::MutexLock lock(&mu_);
  int& open = per_caller_[caller];
  if (open >= options_.max_per_caller) {
    if (open == 0) per_caller_.erase(caller);
    if (options_.metrics != nullptr) {
      options_.metrics->Refused(server::Refusal::kWatchCap);
    }
    return absl::ResourceExhaustedError(
        "too many Watch streams for this caller; close one or retry later");
  }
  ++open;
  auto subscriber = std::shared_ptr<WatchSubscriber>(new WatchSubscriber(
      caller, std::move(filter), std::move(from), options_.max_queued, waker));
  subscribers_.push_back(subscriber);
  return subscriber;
}

void WatchHub::Unsubscribe(const std::shared_ptr<WatchSubscriber>& s) {
  if (s == nullptr) return;
  s->Detach();
  absl::MutexLock lock(&mu_);
  auto it = std::find(subscribers_.begin(), subscribers_.end(), s);
  if (it == subscribers_.end()) return;
  subscribers_.erase(it);
  if (--per_caller_[s->caller_] <= 0) per_caller_.erase(s->caller_);
}

size_t WatchHub::subscribers() const {
  absl::MutexLock lock(&mu_);
  return subscribers_.size();
}

grpc::ServerWriteReactor<v1::WatchEvent>* WatchHub::Open(
    const std::string& caller, WatchFilter filter,
    std::optional<store::EventPosition> from) {
  auto* reactor = new WatchReactor(this);
  absl::StatusOr<std::shared_ptr<WatchSubscriber>> s =
      Subscribe(caller, std::move(filter), std::move(from), reactor);
  if (!s.ok()) {
    delete reactor;
    return Refuse(server::ToGrpcStatus(s.status()));
  }
  reactor->Attach(*s);
  StartPoller();
  return reactor;
}

grpc::ServerWriteReactor<v1::WatchEvent>* WatchHub::Refuse(
    grpc::Status status) {
  return new RefusedWatch(std::move(status));
}

void WatchHub::StartPoller() {
  absl::MutexLock lock(&mu_);
  if (poller_started_) return;
  poller_started_ = true;
  poller_ = std::thread([this] {
    SetThreadName("vouch-watch");
    Run();
  });
}

void WatchHub::Run() {
  while (!stop_.HasBeenNotified()) {
    if (PollOnce()) continue;  // A full page: read on at once.
    stop_.WaitForNotificationWithTimeout(options_.poll);
  }
}

bool WatchHub::PollOnce() {
  std::vector<std::shared_ptr<WatchSubscriber>> all;
  {
    absl::MutexLock lock(&mu_);
    all = subscribers_;
  }
  const absl::Time now = absl::Now();
  // Start new subscribers: from now (the event horizon) or their token; a
  // heartbeat first, carrying the position.
  for (const auto& s : all) {
    if (s->started_ || s->ended()) continue;
    if (!s->position_) {
      absl::StatusOr<store::EventPosition> horizon = events_->EventHorizon();
      if (!horizon.ok()) {
        s->End(ReadFailed(horizon.status()));
        s->Notify();
        continue;
      }
      s->position_ = *horizon;
    }
    s->started_ = true;
    s->last_sent_ = now;
    (void)s->Push(Heartbeat(*s->position_));
    s->Notify();
  }
  // Group by (tenant, position): one read per group.
  using Key = std::tuple<std::string, std::string, uint64_t, int64_t>;
  std::map<Key, std::vector<std::shared_ptr<WatchSubscriber>>> groups;
  for (const auto& s : all) {
    if (!s->started_ || s->ended()) continue;
    const store::EventPosition& p = *s->position_;
    groups[Key{s->filter_.tenant, p.incarnation, p.xid, p.seq}].push_back(s);
  }
  bool more = false;
  for (const auto& [key, group] : groups) ReadGroup(group, &more);
  // Heartbeats for the quiet.
  for (const auto& s : all) {
    if (!s->started_ || s->ended()) continue;
    if (absl::Now() - s->last_sent_ < options_.heartbeat) continue;
    s->last_sent_ = absl::Now();
    (void)s->Push(Heartbeat(*s->position_));
    s->Notify();
  }
  return more;
}

void WatchHub::ReadGroup(
    const std::vector<std::shared_ptr<WatchSubscriber>>& group, bool* more) {
  const std::string& tenant = group.front()->filter_.tenant;
  absl::StatusOr<std::vector<store::EventRow>> rows =
      events_->EventsAfter(tenant, *group.front()->position_, {}, {},
                           /*verdicts=*/true, options_.page);
  if (!rows.ok()) {
    const grpc::Status end = ReadFailed(rows.status());
    for (const auto& s : group) {
      s->End(end);
      s->Notify();
    }
    return;
  }
  if (rows->empty()) return;
  if (static_cast<int>(rows->size()) >= options_.page) *more = true;
  const absl::Time now = absl::Now();
  for (const auto& s : group) {
    for (const store::EventRow& r : *rows) {
      if (!s->filter_.Matches(r)) continue;
      if (!s->Push(ToEvent(tenant, r))) break;  // Ended: too slow.
      s->last_sent_ = now;
    }
    s->position_ = rows->back().position;
    s->Notify();
  }
}

}  // namespace vouch::verifier
