// The abuse part of bench/fleet (--abuse-at): one agent certificate opens
// many Attest streams and never sends a Hello, and one client certificate
// opens many Watch streams, while the simulated fleet goes on attesting.
// Each abusive stream records how it ended (the status code) and how long
// after it opened; Stop() cancels those still open and waits for them.
//
//   AbuseRun abuse(attest_channels, watch_channels, /*attest_streams=*/10000,
//                  /*watch_streams=*/200);
//   abuse.Start();
//   ...
//   abuse.Stop();
//   AbuseTally::Summary s = abuse.attest().Summarize();
#ifndef VOUCH_BENCH_FLEET_ABUSE_H_
#define VOUCH_BENCH_FLEET_ABUSE_H_

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "vouch/v1/admin.grpc.pb.h"
#include "vouch/v1/attestation.grpc.pb.h"

namespace vouch::bench {

// How the abusive streams of one kind ended. Thread-safe.
class AbuseTally {
 public:
  struct Summary {
    int64_t opened = 0;
    int64_t ended = 0;
    int64_t refused = 0;     // RESOURCE_EXHAUSTED: a cap or the stream rate.
    int64_t deadline = 0;    // DEADLINE_EXCEEDED: the Hello deadline.
    int64_t other = 0;       // Any other status, cancels at Stop() included.
    double max_seconds = 0;  // Longest time from open to end, Stop() excluded.
  };

  void Opened() { ++opened_; }
  void Ended(grpc::StatusCode code, double seconds, bool by_us) {
    std::lock_guard<std::mutex> lock(mu_);
    ++s_.ended;
    if (code == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++s_.refused;
    } else if (code == grpc::StatusCode::DEADLINE_EXCEEDED) {
      ++s_.deadline;
    } else {
      ++s_.other;
    }
    if (!by_us) s_.max_seconds = std::max(s_.max_seconds, seconds);
  }
  int64_t ended() {
    std::lock_guard<std::mutex> lock(mu_);
    return s_.ended;
  }
  Summary Summarize() {
    std::lock_guard<std::mutex> lock(mu_);
    Summary s = s_;
    s.opened = opened_;
    return s;
  }

 private:
  std::atomic<int64_t> opened_{0};
  std::mutex mu_;
  Summary s_;
};

// Shared by both kinds of stream: its call's context, when it opened,
// whether Stop() cancelled it, and the tally it reports to.
class AbuseStream {
 public:
  explicit AbuseStream(AbuseTally* tally) : tally_(tally) {}
  void Cancel() {
    cancelled_ = true;
    ctx_.TryCancel();
  }
  bool done() const { return done_; }

 protected:
  void Opened() {
    opened_ = std::chrono::steady_clock::now();
    tally_->Opened();
  }
  void Finished(const grpc::Status& status) {
    const double s = std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - opened_)
                         .count();
    tally_->Ended(status.error_code(), s, cancelled_);
    done_ = true;
  }
  grpc::ClientContext ctx_;

 private:
  std::atomic<bool> cancelled_{false};
  AbuseTally* tally_;
  std::chrono::steady_clock::time_point opened_;
  std::atomic<bool> done_{false};
};

// An Attest stream that sends nothing at all.
class SilentAttest final
    : public AbuseStream,
      public grpc::ClientBidiReactor<v1::AgentMessage, v1::VerifierMessage> {
 public:
  SilentAttest(v1::Attestation::Stub* stub, AbuseTally* tally)
      : AbuseStream(tally), stub_(stub) {}
  void Start() {
    Opened();
    stub_->async()->Attest(&ctx_, this);
    StartRead(&in_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (ok) StartRead(&in_);  // The verifier sends nothing before a Hello.
  }
  void OnDone(const grpc::Status& status) override { Finished(status); }

 private:
  v1::Attestation::Stub* stub_;
  v1::VerifierMessage in_;
};

// A Watch stream that reads whatever comes.
class IdleWatch final : public AbuseStream,
                        public grpc::ClientReadReactor<v1::WatchEvent> {
 public:
  IdleWatch(v1::Admin::Stub* stub, AbuseTally* tally)
      : AbuseStream(tally), stub_(stub) {}
  void Start() {
    Opened();
    stub_->async()->Watch(&ctx_, &request_, this);
    StartRead(&event_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (ok) StartRead(&event_);
  }
  void OnDone(const grpc::Status& status) override { Finished(status); }

 private:
  v1::Admin::Stub* stub_;
  v1::WatchRequest request_;
  v1::WatchEvent event_;
};

// The whole abuse: `attest_streams` silent Attest streams spread over
// `attest_channels` (one certificate; HTTP/2 caps streams per connection,
// so an abuser opens several connections) and `watch_streams` Watch streams
// over `watch_channels`.
class AbuseRun {
 public:
  AbuseRun(std::vector<std::shared_ptr<grpc::Channel>> attest_channels,
           std::vector<std::shared_ptr<grpc::Channel>> watch_channels,
           int attest_streams, int watch_streams) {
    for (auto& c : attest_channels) {
      attest_stubs_.push_back(v1::Attestation::NewStub(c));
    }
    for (auto& c : watch_channels) {
      watch_stubs_.push_back(v1::Admin::NewStub(c));
    }
    for (int i = 0; i < attest_streams && !attest_stubs_.empty(); ++i) {
      auto* stub =
          attest_stubs_[static_cast<size_t>(i) % attest_stubs_.size()].get();
      attest_.push_back(std::make_unique<SilentAttest>(stub, &attest_tally_));
    }
    for (int i = 0; i < watch_streams && !watch_stubs_.empty(); ++i) {
      auto* stub =
          watch_stubs_[static_cast<size_t>(i) % watch_stubs_.size()].get();
      watch_.push_back(std::make_unique<IdleWatch>(stub, &watch_tally_));
    }
  }

  void Start() {
    for (auto& s : watch_) s->Start();
    for (auto& s : attest_) s->Start();
  }

  // Cancels what is still open and waits (up to 60 s) until every stream
  // has ended; false when some did not (they are then left allocated, as
  // gRPC may still call them).
  bool Stop() {
    for (auto& s : attest_) {
      if (!s->done()) s->Cancel();
    }
    for (auto& s : watch_) {
      if (!s->done()) s->Cancel();
    }
    const size_t all = attest_.size() + watch_.size();
    for (int i = 0; i < 600; ++i) {
      if (static_cast<size_t>(attest_tally_.ended() + watch_tally_.ended()) ==
          all) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (auto& s : attest_) (void)s.release();
    for (auto& s : watch_) (void)s.release();
    return false;
  }

  // Streams of each kind not ended yet.
  int64_t open_attest() {
    return static_cast<int64_t>(attest_.size()) - attest_tally_.ended();
  }
  int64_t open_watch() {
    return static_cast<int64_t>(watch_.size()) - watch_tally_.ended();
  }
  AbuseTally& attest() { return attest_tally_; }
  AbuseTally& watch() { return watch_tally_; }

 private:
  std::vector<std::unique_ptr<v1::Attestation::Stub>> attest_stubs_;
  std::vector<std::unique_ptr<v1::Admin::Stub>> watch_stubs_;
  AbuseTally attest_tally_;
  AbuseTally watch_tally_;
  std::vector<std::unique_ptr<SilentAttest>> attest_;
  std::vector<std::unique_ptr<IdleWatch>> watch_;
};

}  // namespace vouch::bench

#endif  // VOUCH_BENCH_FLEET_ABUSE_H_
