// File: verifier/notice_hub.h
// Action notices for the agents whose streams this verifier holds
// (docs/actions.md): each agent is told of its own pass->fail or ->timeout
// and, in a tenant with peer notices on (TenantSettingsStore), of every
// other agent's. Notices are derived from the committed event log through a
// WatchHub (one subscription per tenant with streams here, so every
// verifier of the pool serves its own streams from the shared log, and
// nothing is told before it is committed), signed by the results key with
// the receiving agent as audience, and handed to the stream's NoticeSink.
// Bounded: a tenant subscription that falls `max_queued` events behind is
// restarted from the log's end (those events are dropped, logged); a
// stream gets at most kMaxNoticesPerRound notices per dispatch round (the
// newest) and its sink keeps at most as many unsent (drop-oldest).
// Thread-safe. Lock order: NoticeHub::mu_ before a sink's locks; sinks
// never call back into the hub from Notice.
//
//   NoticeHub notices(&events, &settings, issuer, NoticeHubOptions{});
//   notices.Add(reactor, tenant, agent_id);  // When a stream holds an agent.
//   notices.Remove(reactor);                 // Before the reactor goes.
#ifndef VOUCH_VERIFIER_NOTICE_HUB_H_
#define VOUCH_VERIFIER_NOTICE_HUB_H_

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "store/verifier_store.h"
#include "verifier/result_issuer.h"
#include "verifier/watch_hub.h"
#include "vouch/v1/attestation.pb.h"

namespace vouch::verifier {

// Notices one stream is sent per dispatch round, and keeps unsent.
inline constexpr size_t kMaxNoticesPerRound = 16;

// Where a stream's notices go. Notice must not block.
class NoticeSink {
 public:
  virtual ~NoticeSink() = default;
  virtual void Notice(v1::VerifierMessage message) = 0;
};

struct NoticeHubOptions {
  absl::Duration ttl = absl::Minutes(5);  // A notice's exp - iat.
  // How long a tenant's peer_notices setting is cached.
  absl::Duration settings_ttl = absl::Seconds(5);
  absl::Duration poll = absl::Milliseconds(200);  // Of the event log.
  size_t max_queued = 1000;  // Events of one tenant read, not dispatched.
  // False: no thread; the caller drives PollOnce (tests).
  bool thread = true;
};

class NoticeHub {
 public:
  // `issuer` signs; nullptr turns notices off (Add does nothing).
  NoticeHub(store::EventStore* events, store::TenantSettingsStore* settings,
            const ResultIssuer* issuer, NoticeHubOptions options);
  ~NoticeHub();  // Every sink must be removed by then.
  NoticeHub(const NoticeHub&) = delete;
  NoticeHub& operator=(const NoticeHub&) = delete;

  // `sink` holds `agent_id` of `tenant` (replacing what it held before).
  void Add(NoticeSink* sink, const std::string& tenant,
           const std::string& agent_id);
  // After this returns `sink` is never called again.
  void Remove(NoticeSink* sink);

  // One round: reads the log (blocking; the WatchHub's PollOnce, its
  // poller thread is never started) and dispatches what it found. Called by
  // the hub's thread, started at the first Add; without it (options.thread
  // false) the caller does, from one thread.
  void PollOnce(absl::Time now);

 private:
  struct Held {
    std::string tenant;
    std::string agent_id;
  };
  struct Outgoing {
    NoticeSink* sink;
    v1::VerifierMessage message;
  };
  void Run();
  // The events a tenant's subscription queued; restarts it when it ended.
  std::vector<v1::WatchEvent> Drain(const std::string& tenant);
  bool PeerNotices(const std::string& tenant, absl::Time now);
  // The notices of `events` for the sinks of `tenant`, newest kept.
  std::vector<Outgoing> Notices(const std::string& tenant,
                                const std::vector<v1::WatchEvent>& events,
                                absl::Time now);

  store::TenantSettingsStore* const settings_;
  const ResultIssuer* const issuer_;
  const NoticeHubOptions options_;
  WatchHub watch_;
  absl::Mutex mu_;
  std::map<NoticeSink*, Held> sinks_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<WatchSubscriber>> tenants_
      ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  // Only the dispatch thread (or a test's PollOnce) touches this.
  std::map<std::string, std::pair<bool, absl::Time>> peer_cache_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_NOTICE_HUB_H_
