#include "server/rate_limiter.h"

#include <algorithm>

namespace vouch::server {

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
