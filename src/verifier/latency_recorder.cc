#include "verifier/latency_recorder.h"

#include <algorithm>

namespace vouch::verifier {

void LatencyRecorder::Record(absl::Duration total, absl::Duration commit) {
  absl::MutexLock lock(&mu_);
  if (totals_.size() < (size_t{1} << 20)) {
    totals_.push_back(total);
    commits_.push_back(commit);
  }
}

LatencyRecorder::Stats LatencyRecorder::Take() {
  std::vector<absl::Duration> v, c;
  {
    absl::MutexLock lock(&mu_);
    v.swap(totals_);
    c.swap(commits_);
  }
  Stats out;
  out.verdicts = v.size();
  if (v.empty()) return out;
  auto at = [](std::vector<absl::Duration>& d, size_t per_100) {
    std::sort(d.begin(), d.end());
    return d[std::min(d.size() - 1, d.size() * per_100 / 100)];
  };
  out.p50 = at(v, 50);
  out.p99 = at(v, 99);
  out.max = v.back();
  out.commit_p50 = at(c, 50);
  out.commit_p99 = at(c, 99);
  return out;
}

}  // namespace vouch::verifier
