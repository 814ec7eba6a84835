// File: verifier/admission.h
// Admission control of the Attest service: what one verifier holds for its
// agents at most — streams open at once, a deadline for each stream's first
// message (its Hello), unproven IMA bytes — and the retry hint a refusal
// carries. Pure bookkeeping: no gRPC, no clock (`now` is an argument), no
// threads; the service that uses it owns the stream objects, the clock and
// the thread that enforces the deadline. Thread-safe.
//
//   StreamAdmission<Reactor> streams(options.max_streams);
//   Reactor* r = streams.Open(now + options.hello_deadline,
//                             [&] { return new Reactor(...); });
//   if (r == nullptr) ... refuse with RESOURCE_EXHAUSTED, RetryAfterValue()
//   ... first message read: streams.HelloReceived(r);
//   ... periodically: streams.ExpireHellos(now, [](Reactor* r) { r->End(); });
//   ... stream done: streams.Closed(r);
#ifndef VOUCH_VERIFIER_ADMISSION_H_
#define VOUCH_VERIFIER_ADMISSION_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vouch::verifier {

// [admission] of verifier.toml. Refusals end the stream with
// RESOURCE_EXHAUSTED and the trailing metadata
// core::attest::kRetryAfterMetadata that agents honour with jittered back-off.
struct AdmissionOptions {
  int hello_per_minute = 30;  // Per agent_id.
  // A stream that sent nothing this long after it opened is closed with
  // DEADLINE_EXCEEDED.
  absl::Duration hello_deadline = absl::Seconds(10);
  // Attest streams open at once (with or without a Hello yet); more are
  // refused.
  size_t max_streams = 50000;
  // Unproven IMA bytes all sessions hold at once (each at most
  // core::attest::kMaxHeldImaBytes); a session that would go over ends.
  int64_t max_held_ima_bytes = int64_t{1} << 30;
  // The retry hint sent with a refusal.
  absl::Duration busy_retry_after = absl::Seconds(30);
  // New Attest streams accepted per second (a token bucket holding up to
  // `new_streams_burst`), so a reconnect storm is spread out; more are
  // refused with RESOURCE_EXHAUSTED and a retry hint of the wait for the
  // next token plus the time a whole burst takes to refill. 0: unlimited.
  double new_streams_per_second = 1000;
  int new_streams_burst = 2000;
};

// The value of the retry-after trailer: whole milliseconds ("30000").
std::string RetryAfterValue(absl::Duration retry_after);

// How often the streams awaiting their Hello are checked: a quarter of the
// deadline, within 10 ms .. 1 s (so a stream ends at most that late).
absl::Duration HelloCheckPeriod(absl::Duration hello_deadline);

// The verifier-wide budget of unproven IMA bytes (truncated chunks held
// until the rest arrives). Lock-free.
class ImaBudget {
 public:
  explicit ImaBudget(int64_t max_bytes) : max_bytes_(max_bytes) {}
  // Takes `delta` bytes (true), or refuses when that would exceed the
  // budget (false, nothing taken); a delta <= 0 gives bytes back and always
  // succeeds.
  bool Hold(int64_t delta);
  int64_t held() const { return held_.load(); }

 private:
  const int64_t max_bytes_;
  std::atomic<int64_t> held_{0};
};

// The stream cap and the Hello deadline over streams of type Stream (the
// reactor; tests use any type). The callbacks of Open and ExpireHellos run
// under this object's lock, so a stream cannot be Closed (and deleted) while
// they run: lock order, this lock before the stream's own; they must not
// call back into this object.
template <typename Stream>
class StreamAdmission {
 public:
  explicit StreamAdmission(size_t max_streams) : max_streams_(max_streams) {}

  // nullptr when max_streams are open (refuse); otherwise the stream
  // make() returns, counted open and due to send its first message by
  // `hello_by`. Under the lock, so the stream's first read cannot be
  // reported before it is recorded.
  template <typename Make>
  Stream* Open(absl::Time hello_by, Make make) {
    absl::MutexLock lock(&mu_);
    if (open_ >= max_streams_) return nullptr;
    Stream* stream = make();
    ++open_;
    awaiting_hello_[stream] = hello_by;
    return stream;
  }

  // The stream read its first message: its deadline is off.
  void HelloReceived(Stream* stream) {
    absl::MutexLock lock(&mu_);
    awaiting_hello_.erase(stream);
  }

  // The stream is done (its slot is free); after this it is never named
  // again.
  void Closed(Stream* stream) {
    absl::MutexLock lock(&mu_);
    awaiting_hello_.erase(stream);
    --open_;
  }

  // Calls expire(stream) for every stream whose deadline is at or before
  // `now` and forgets its deadline; returns how many.
  template <typename Expire>
  int ExpireHellos(absl::Time now, Expire expire) {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (auto it = awaiting_hello_.begin(); it != awaiting_hello_.end();) {
      if (it->second > now) {
        ++it;
        continue;
      }
      expire(it->first);
      it = awaiting_hello_.erase(it);
      ++n;
    }
    return n;
  }

  // Streams open now.
  size_t open() const {
    absl::MutexLock lock(&mu_);
    return open_;
  }

 private:
  const size_t max_streams_;
  mutable absl::Mutex mu_;
  size_t open_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<Stream*, absl::Time> awaiting_hello_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_ADMISSION_H_
