#include "server/rate_limiter.h"

#include <algorithm>

namespace vouch::server {

TokenBucket::TokenBucket(double per_second, double burst)
    : per_second_(per_second), burst_(std::max(burst, 1.0)), tokens_(burst_) {}

double TokenBucket::TokensAt(absl::Time now) const {
  if (updated_ == absl::InfinitePast() || now <= updated_) return tokens_;
  return std::min(
      burst_, tokens_ + absl::ToDoubleSeconds(now - updated_) * per_second_);
}

bool TokenBucket::Take(absl::Time now) {
  if (per_second_ <= 0) return true;
  tokens_ = TokensAt(now);
  if (now > updated_) updated_ = now;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

absl::Duration TokenBucket::RetryAfter(absl::Time now) const {
  if (per_second_ <= 0) return absl::ZeroDuration();
  const double missing = 1.0 - TokensAt(now);
  if (missing <= 0) return absl::ZeroDuration();
  return absl::Seconds(missing / per_second_);
}

RateLimiter::RateLimiter(int per_minute, size_t max_keys)
    : per_minute_(std::max(per_minute, 1)), max_keys_(max_keys) {}

bool RateLimiter::Allow(absl::string_view key, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      // Drop buckets that have refilled completely: forgetting them changes
      // nothing, as a new bucket starts full.
      absl::erase_if(buckets_, [&](const auto& entry) {
        const Bucket& b = entry.second;
        return b.tokens +
                   absl::ToDoubleMinutes(now - b.updated) * per_minute_ >=
               per_minute_;
      });
      if (buckets_.size() >= max_keys_) return false;
    }
    it = buckets_.emplace(std::string(key), Bucket{per_minute_, now}).first;
  }
  Bucket& b = it->second;
  if (now > b.updated) {
    b.tokens = std::min(
        per_minute_,
        b.tokens + absl::ToDoubleMinutes(now - b.updated) * per_minute_);
    b.updated = now;
  }
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

}  // namespace vouch::server
