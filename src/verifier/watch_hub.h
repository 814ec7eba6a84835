// File: verifier/watch_hub.h
// The Watch streams of one verifier without a thread per stream: one poller
// reads the event log once per poll for all streams at the same position of
// the same tenant (normally one read per tenant), filters in memory and
// queues each stream's events; the stream's gRPC reactor writes them, one
// write in flight. A stream's queue is bounded: a reader that falls
// `max_queued` events behind is closed with RESOURCE_EXHAUSTED (it resumes
// from its last token, losing nothing). One caller holds at most
// `max_per_caller` streams. Positions past the retention end the stream with
// OUT_OF_RANGE, as EventStore::EventsAfter says. Thread-safe; the poller's
// database reads never run in a gRPC reaction.
//
//   WatchHub hub(&store, options);  // Starts its poller at the first Open.
//   return hub.Open(ctx, caller, filter, resume_position);  // In Watch().
#ifndef VOUCH_VERIFIER_WATCH_HUB_H_
#define VOUCH_VERIFIER_WATCH_HUB_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/metrics.h"
#include "store/verifier_store.h"
#include "vouch/v1/admin.grpc.pb.h"

namespace vouch::verifier {

// Resume tokens: "w2:<incarnation>:<xid>:<seq>" (the database incarnation
// the position belongs to); "w1:<xid>:<seq>" without one.
std::string EventToken(const store::EventPosition& p);

// What one Watch stream asked for (validated by the caller).
struct WatchFilter {
  std::string tenant;
  std::vector<std::string> agent_ids;    // Empty: all agents.
  std::vector<core::AgentState> states;  // Empty: all states.
  bool verdicts = false;                 // Attestation records too.
  bool shadows = false;  // Shadow judgements too (never filtered by state).

  bool Matches(const store::EventRow& row) const;
};

// Told when a subscriber has something to write or has ended.
class WatchWaker {
 public:
  virtual ~WatchWaker() = default;
  // Must not block and must not call back into the hub.
  virtual void Wake() = 0;
};

// One Watch stream's queue. The poller fills it; the writer empties it.
class WatchSubscriber {
 public:
  enum class Next { kEvent, kEmpty, kEnd };
  // The next event to write (kEvent), nothing for now (kEmpty), or the end
  // of the stream with `*end` (kEnd; queued events are dropped: a reader
  // resumes from the token of the last event it got).
  Next Pop(v1::WatchEvent* out, grpc::Status* end);

 private:
  friend class WatchHub;
  WatchSubscriber(std::string caller, WatchFilter filter,
                  std::optional<store::EventPosition> from, size_t max_queued,
                  WatchWaker* waker)
      : caller_(std::move(caller)),
        filter_(std::move(filter)),
        position_(std::move(from)),
        max_queued_(max_queued),
        waker_(waker) {}
  // False (and the subscriber ended) when the queue is full.
  bool Push(v1::WatchEvent e);
  void End(grpc::Status status);
  bool ended();
  void Notify();
  void Detach();

  const std::string caller_;
  const WatchFilter filter_;
  // Only the poller touches these three.
  std::optional<store::EventPosition> position_;  // Unset: from now.
  bool started_ = false;                          // First heartbeat sent.
  absl::Time last_sent_;

  const size_t max_queued_;
  absl::Mutex mu_;
  std::deque<v1::WatchEvent> queue_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
  absl::Mutex waker_mu_;  // Held while waking: Detach waits for it.
  WatchWaker* waker_ ABSL_GUARDED_BY(waker_mu_);
};

struct WatchHubOptions {
  absl::Duration poll = absl::Milliseconds(200);
  int max_per_caller = 8;
  // Events one stream may have queued and not yet written.
  size_t max_queued = 10000;
  // A heartbeat after this long without an event.
  absl::Duration heartbeat = absl::Seconds(10);
  // Events read per query; a full page is followed at once by the next.
  int page = 500;
  server::Metrics* metrics = nullptr;  // Counts refusals; nullptr: off.
};

class WatchHub {
 public:
  WatchHub(store::EventStore* events, WatchHubOptions options);
  ~WatchHub();  // Stops the poller; every stream must be closed by then.
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // A new subscriber for `caller`, from `from` (unset: from now), woken
  // through `waker` until Unsubscribe; RESOURCE_EXHAUSTED over the caller's
  // cap. Never blocks on the database.
  absl::StatusOr<std::shared_ptr<WatchSubscriber>> Subscribe(
      const std::string& caller, WatchFilter filter,
      std::optional<store::EventPosition> from, WatchWaker* waker);
  // After this returns `waker` is never called again.
  void Unsubscribe(const std::shared_ptr<WatchSubscriber>& subscriber);

  // A Watch stream served from this hub (the gRPC reactor), or one that
  // ends at once with the refusal.
  grpc::ServerWriteReactor<v1::WatchEvent>* Open(
      const std::string& caller, WatchFilter filter,
      std::optional<store::EventPosition> from);

  // A Watch stream that ends at once with `status`.
  static grpc::ServerWriteReactor<v1::WatchEvent>* Refuse(grpc::Status status);

  // One round of the poller: new subscribers' starting positions, one read
  // per (tenant, position) group, heartbeats. True when a read returned a
  // full page (more are waiting). Blocking (database). Called by the
  // poller thread; tests call it directly (without Open).
  bool PollOnce();
  // Streams open now.
  size_t subscribers() const;

 private:
  void Run();
  void StartPoller();
  void ReadGroup(const std::vector<std::shared_ptr<WatchSubscriber>>& group,
                 bool* more);

  store::EventStore* const events_;
  const WatchHubOptions options_;
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<WatchSubscriber>> subscribers_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> per_caller_ ABSL_GUARDED_BY(mu_);
  bool poller_started_ ABSL_GUARDED_BY(mu_) = false;
  absl::Notification stop_;
  std::thread poller_;
};

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_WATCH_HUB_H_
