#include "verifier/notice_hub.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/thread_name.h"
#include "core/agent_state.h"
#include "core/ear/notice.h"

namespace vouch::verifier {
namespace {

bool Failed(int state) {
  return state == v1::ATTESTATION_STATE_FAIL ||
         state == v1::ATTESTATION_STATE_TIMEOUT;
}

// A state change into failure from a state that was not one.
bool IsNewFailure(const v1::WatchEvent& e) {
  return e.has_state_change() && Failed(e.state_change().state()) &&
         !Failed(e.state_change().previous_state());
}

WatchFilter FailuresOf(const std::string& tenant) {
  WatchFilter f;
  f.tenant = tenant;
  f.states = {v1::ATTESTATION_STATE_FAIL, v1::ATTESTATION_STATE_TIMEOUT};
  return f;
}

std::string Caller(const std::string& tenant) {
  return absl::StrCat("notices/", tenant);
}

}  // namespace

NoticeHub::NoticeHub(store::EventStore* events,
                     store::TenantSettingsStore* settings,
                     const ResultIssuer* issuer, NoticeHubOptions options)
    : settings_(settings),
      issuer_(issuer),
      options_(options),
      watch_(events, [&options] {
        WatchHubOptions w;
        w.poll = options.poll;
        w.max_per_caller = 1;
        w.max_queued = options.max_queued;
        w.heartbeat = absl::InfiniteDuration();
        return w;
      }()) {}

NoticeHub::~NoticeHub() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  for (auto& [tenant, sub] : tenants_) watch_.Unsubscribe(sub);
}

void NoticeHub::Add(NoticeSink* sink, const std::string& tenant,
                    const std::string& agent_id) {
  if (issuer_ == nullptr) return;
  absl::MutexLock lock(&mu_);
  sinks_[sink] = Held{tenant, agent_id};
  if (tenants_.count(tenant) == 0) {
    // From the log's end as of the next round.
    absl::StatusOr<std::shared_ptr<WatchSubscriber>> sub = watch_.Subscribe(
        Caller(tenant), FailuresOf(tenant), std::nullopt, nullptr);
    if (sub.ok()) tenants_[tenant] = *std::move(sub);
  }
  if (options_.thread && !started_) {
    started_ = true;
    thread_ = std::thread([this] {
      SetThreadName("vouch-notices");
      Run();
    });
  }
}

void NoticeHub::Remove(NoticeSink* sink) {
  absl::MutexLock lock(&mu_);
  auto it = sinks_.find(sink);
  if (it == sinks_.end()) return;
  const std::string tenant = it->second.tenant;
  sinks_.erase(it);
  for (const auto& [s, held] : sinks_) {
    if (held.tenant == tenant) return;
  }
  // The tenant's last stream here: stop reading its events.
  auto sub = tenants_.find(tenant);
  if (sub != tenants_.end()) {
    watch_.Unsubscribe(sub->second);
    tenants_.erase(sub);
  }
}

void NoticeHub::Run() {
  while (!stop_.HasBeenNotified()) {
    PollOnce(absl::Now());
    stop_.WaitForNotificationWithTimeout(options_.poll);
  }
}

void NoticeHub::PollOnce(absl::Time now) {
  while (watch_.PollOnce()) {  // Full pages: read on.
    if (stop_.HasBeenNotified()) return;
  }
  std::vector<std::string> tenants;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [tenant, sub] : tenants_) tenants.push_back(tenant);
  }
  for (const std::string& tenant : tenants) {
    std::vector<v1::WatchEvent> events = Drain(tenant);
    if (events.empty()) continue;
    std::vector<Outgoing> out = Notices(tenant, events, now);
    absl::MutexLock lock(&mu_);
    for (Outgoing& o : out) {
      // Removed meanwhile: the sink may be gone.
      if (sinks_.count(o.sink) != 0) o.sink->Notice(std::move(o.message));
    }
  }
}

std::vector<v1::WatchEvent> NoticeHub::Drain(const std::string& tenant) {
  std::vector<v1::WatchEvent> events;
  absl::MutexLock lock(&mu_);
  auto it = tenants_.find(tenant);
  if (it == tenants_.end()) return events;
  v1::WatchEvent e;
  grpc::Status end;
  while (true) {
    WatchSubscriber::Next next = it->second->Pop(&e, &end);
    if (next == WatchSubscriber::Next::kEmpty) break;
    if (next == WatchSubscriber::Next::kEvent) {
      if (IsNewFailure(e)) events.push_back(std::move(e));
      continue;
    }
    // Ended (fell behind, or the log could not be read): start again from
    // the log's end; what was queued is dropped.
    Log(LogLevel::kWarning, "action notices restarted from the log's end",
        {{"tenant", tenant}, {"reason", end.error_message()}});
    watch_.Unsubscribe(it->second);
    tenants_.erase(it);
    absl::StatusOr<std::shared_ptr<WatchSubscriber>> sub = watch_.Subscribe(
        Caller(tenant), FailuresOf(tenant), std::nullopt, nullptr);
    if (sub.ok()) tenants_[tenant] = *std::move(sub);
    break;
  }
  return events;
}

bool NoticeHub::PeerNotices(const std::string& tenant, absl::Time now) {
  auto it = peer_cache_.find(tenant);
  if (it != peer_cache_.end() &&
      now - it->second.second < options_.settings_ttl) {
    return it->second.first;
  }
  absl::StatusOr<store::TenantSettings> s =
      settings_->GetTenantSettings(tenant);
  if (!s.ok()) {
    Log(LogLevel::kWarning, "tenant settings unreadable; peer notices off",
        {{"tenant", tenant}, {"error", s.status().message()}});
    return false;  // Not cached: asked again next round.
  }
  peer_cache_[tenant] = {s->peer_notices, now};
  return s->peer_notices;
}

std::vector<NoticeHub::Outgoing> NoticeHub::Notices(
    const std::string& tenant, const std::vector<v1::WatchEvent>& events,
    absl::Time now) {
  std::vector<std::pair<NoticeSink*, std::string>> receivers;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [sink, held] : sinks_) {
      if (held.tenant == tenant) receivers.emplace_back(sink, held.agent_id);
    }
  }
  const bool peers = PeerNotices(tenant, now);
  std::vector<Outgoing> out;
  for (const auto& [sink, agent_id] : receivers) {
    // The newest kMaxNoticesPerRound events that concern this agent.
    std::vector<const v1::WatchEvent*> mine;
    for (auto e = events.rbegin();
         e != events.rend() && mine.size() < kMaxNoticesPerRound; ++e) {
      if (peers || e->agent_id() == agent_id) mine.push_back(&*e);
    }
    for (auto e = mine.rbegin(); e != mine.rend(); ++e) {
      const v1::WatchEvent& ev = **e;
      core::ear::Notice n;
      n.event_id = ev.event_id();
      n.kind = ev.agent_id() == agent_id ? core::ear::NoticeKind::kOwnFailure
                                         : core::ear::NoticeKind::kPeerFailure;
      n.subject = ev.agent_id();
      n.audience = agent_id;
      n.tenant = tenant;
      n.state = std::string(core::AgentStateName(ev.state_change().state()));
      n.previous_state =
          std::string(core::AgentStateName(ev.state_change().previous_state()));
      n.changed_at = absl::FromUnixSeconds(ev.event_time().seconds());
      n.issued_at = now;
      n.expires_at = now + options_.ttl;
      absl::StatusOr<std::string> token = issuer_->SignNotice(n);
      if (!token.ok()) {
        Log(LogLevel::kWarning, "action notice not signed",
            {{"agent_id", agent_id}, {"error", token.status().message()}});
        continue;
      }
      Outgoing o{sink, {}};
      o.message.mutable_action_notice()->set_token(*std::move(token));
      out.push_back(std::move(o));
    }
  }
  return out;
}

}  // namespace vouch::verifier
