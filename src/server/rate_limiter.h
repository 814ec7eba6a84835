// File: server/rate_limiter.h
// TokenBucket: one bucket, `per_second` events a second with bursts up to
// `burst` (e.g. new Attest streams per verifier, so a reconnect storm is
// spread out); RetryAfter() says when the next token comes. Not thread-safe.
// RateLimiter: a per-key token bucket (key = peer address, agent_id, ...): at
// most `per_minute` events per key per minute, with bursts up to `per_minute`.
// Memory is bounded: at most `max_keys` keys are tracked; when full, idle
// keys are dropped first and, if none is idle, new keys are refused (fail
// closed). Thread-safe. `now` comes in as an argument so tests need no clock.
//
//   RateLimiter limiter(/*per_minute=*/60);
//   if (!limiter.Allow(PeerHost(ctx->peer()), absl::Now())) return ...;
//   TokenBucket streams(/*per_second=*/500, /*burst=*/1000);
//   if (!streams.Take(absl::Now())) refuse(streams.RetryAfter(absl::Now()));
#ifndef VOUCH_SERVER_RATE_LIMITER_H_
#define VOUCH_SERVER_RATE_LIMITER_H_

#include <cstddef>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vouch::server {

class TokenBucket {
 public:
  // `per_second` <= 0: unlimited (Take always succeeds). The bucket starts
  // full; `burst` is raised to at least 1.
  TokenBucket(double per_second, double burst);

  // True (and one token taken) when an event may happen at `now`. A `now`
  // earlier than the last call refills nothing.
  bool Take(absl::Time now);
  // How long from `now` until a token is there (zero when one is).
  absl::Duration RetryAfter(absl::Time now) const;

 private:
  double TokensAt(absl::Time now) const;

  const double per_second_;
  const double burst_;
  double tokens_;
  absl::Time updated_ = absl::InfinitePast();
};

class RateLimiter {
 public:
  explicit RateLimiter(int per_minute, size_t max_keys = 100000);

  // True (and one token taken) when `key` may act at `now`.
  bool Allow(absl::string_view key, absl::Time now);

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
  };
  const double per_minute_;
  const size_t max_keys_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vouch::server

#endif  // VOUCH_SERVER_RATE_LIMITER_H_
