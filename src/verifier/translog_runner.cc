#include "verifier/translog_runner.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace vouch::verifier {

namespace tl = core::translog;

void TranslogRunner::Alarm(const char* what, const std::string& detail) {
  ++alarms_;
  Log(LogLevel::kError, what, {{"detail", detail}});
  if (metrics_ != nullptr) metrics_->TranslogAlarm();
}

bool TranslogRunner::ReadFailed(const char* what, const absl::Status& status) {
  const absl::StatusCode code = status.code();
  if (code == absl::StatusCode::kUnavailable ||
      code == absl::StatusCode::kResourceExhausted ||
      code == absl::StatusCode::kDeadlineExceeded) {
    Log(LogLevel::kWarning, what, {{"error", status.message()}});
  } else {
    Alarm(what, std::string(status.message()));
  }
  return false;
}

void TranslogRunner::TakeCommitted() {
  if (committed_ == nullptr) return;
  uint64_t dropped = committed_->TakeDropped();
  for (const store::CommittedLeaves::Leaf& leaf : committed_->Take()) {
    if (waiting_.size() >= committed_->capacity()) {
      ++dropped;
      continue;
    }
    waiting_.emplace(leaf.hash, leaf.committed);
  }
  if (dropped > 0) {
    Log(LogLevel::kWarning,
        "translog: records left unchecked (too many waiting for the tree)",
        {{"records", dropped}});
    if (metrics_ != nullptr) metrics_->TranslogUnchecked(dropped);
  }
}

bool TranslogRunner::Monitor(const tl::TreeHead& head) {
  if (!edge_.has_value()) {
    // The first head: start from its stored right edge.
    absl::StatusOr<tl::CompactRange> edge = log_->Edge(head.tree_size);
    if (!edge.ok()) {
      return ReadFailed("translog: the tree's stored nodes cannot be read",
                        edge.status());
    }
    if (edge->Root() != head.root) {
      Alarm("translog: the tree's stored nodes do not make up its signed head",
            absl::StrCat("size ", head.tree_size));
      return false;
    }
    edge_ = *std::move(edge);
    return true;
  }
  if (head.tree_size < edge_->size()) return false;  // Watch says it shrank.
  tl::CompactRange tree = *edge_;
  std::vector<tl::Hash> mine;
  while (tree.size() < head.tree_size) {
    const uint64_t end = std::min<uint64_t>(
        head.tree_size, tree.size() + options_.monitor_chunk);
    absl::StatusOr<std::vector<tl::Hash>> leaves =
        log_->LeafHashes(tree.size(), end);
    if (!leaves.ok()) {
      return ReadFailed("translog: the log's leaves cannot be read",
                        leaves.status());
    }
    for (const tl::Hash& leaf : *leaves) {
      tree.Append(leaf);
      if (waiting_.contains(leaf)) mine.push_back(leaf);
    }
  }
  if (tree.Root() != head.root) {
    Alarm("translog: the log's leaves do not make up its signed head",
          absl::StrCat("size ", head.tree_size));
    return false;
  }
  for (const tl::Hash& h : mine) waiting_.erase(h);
  records_proven_ += mine.size();
  if (metrics_ != nullptr) metrics_->TranslogRecordsProven(mine.size());
  edge_ = std::move(tree);
  return true;
}

void TranslogRunner::CheckOverdue(absl::Time now) {
  std::vector<tl::Hash> overdue;
  for (const auto& [hash, committed] : waiting_) {
    if (committed < now - options_.bound) overdue.push_back(hash);
    if (overdue.size() >= options_.overdue_lookups) break;
  }
  // A record may have reached the tree before this verifier's first head,
  // or between taking the committed leaves and reading the head: look it
  // up and check its proof against the head accepted last.
  for (const tl::Hash& hash : overdue) {
    if (!seen_.has_value()) {
      Alarm(
          "translog: a record this verifier committed is missing from the "
          "log past the bound (no tree head)",
          tl::HashHex(hash));
      waiting_.erase(hash);
      continue;
    }
    absl::StatusOr<store::InclusionAnswer> found =
        log_->InclusionByHash(hash, seen_->tree_size);
    if (absl::IsNotFound(found.status())) {
      Alarm(
          "translog: a record this verifier committed is missing from the "
          "log past the bound",
          tl::HashHex(hash));
    } else if (!found.ok()) {
      ReadFailed("translog: looking up a committed record failed",
                 found.status());
      return;  // Try again next round.
    } else if (absl::Status proven =
                   tl::VerifyInclusion(found->leaf_index, seen_->tree_size,
                                       hash, found->proof, seen_->root);
               !proven.ok()) {
      Alarm(
          "translog: a record this verifier committed has an inclusion "
          "proof that does not verify",
          absl::StrCat(tl::HashHex(hash), ": ", proven.message()));
    } else {
      ++records_proven_;
      if (metrics_ != nullptr) metrics_->TranslogRecordsProven(1);
    }
    waiting_.erase(hash);
  }
}

void TranslogRunner::RunOnce(absl::Time now) {
  absl::StatusOr<std::optional<int64_t>> epoch =
      log_->TryAcquire(id_, options_.lease);
  if (!epoch.ok()) {
    Log(LogLevel::kWarning, "translog: sequencer lease check failed",
        {{"error", epoch.status().message()}});
  } else if (epoch->has_value()) {
    // Drain the queue in batches, then let the next round (or holder) go on.
    for (int round = 0; round < 100; ++round) {
      absl::StatusOr<store::IntegrateResult> r =
          log_->Integrate(id_, **epoch, *key_, options_.batch, now);
      if (!r.ok()) {
        Log(LogLevel::kWarning, "translog: integration failed",
            {{"error", r.status().message()}});
        break;
      }
      if (metrics_ != nullptr) metrics_->TranslogIntegrated(r->integrated);
      if (r->integrated < options_.batch) break;
    }
  }
  Watch(now);
}

bool TranslogRunner::Watch(absl::Time now) {
  const uint64_t before = alarms_;
  TakeCommitted();
  absl::StatusOr<store::SignedHead> latest = log_->LatestHead();
  if (latest.ok()) {
    absl::StatusOr<core::translog::TreeHead> head =
        key_->Verify(latest->signed_head);
    if (!head.ok()) {
      Alarm("translog: the newest tree head does not verify",
            std::string(head.status().message()));
    } else if (head->root != latest->root ||
               head->tree_size != latest->tree_size) {
      Alarm("translog: a tree head's stored root differs from the signed one",
            "");
    } else if (seen_.has_value()) {
      if (head->tree_size < seen_->tree_size) {
        Alarm("translog: the log shrank", "");
      } else {
        absl::StatusOr<std::vector<core::translog::Hash>> proof =
            log_->Consistency(seen_->tree_size, head->tree_size);
        absl::Status ok = proof.ok() ? core::translog::VerifyConsistency(
                                           seen_->tree_size, head->tree_size,
                                           seen_->root, head->root, *proof)
                                     : proof.status();
        if (!ok.ok()) {
          Alarm("translog: the tree head is inconsistent with an earlier one",
                std::string(ok.message()));
        }
      }
    }
    if (head.ok() && alarms_ == before && Monitor(*head)) seen_ = *head;
  } else if (latest.status().code() != absl::StatusCode::kNotFound) {
    Log(LogLevel::kWarning, "translog: reading the tree head failed",
        {{"error", latest.status().message()}});
  }
  CheckOverdue(now);
  absl::StatusOr<uint64_t> late = log_->QueuedBefore(now - options_.bound);
  if (late.ok() && *late > 0) {
    Alarm(
        "translog: committed entries are missing from the log past the "
        "bound",
        std::to_string(*late));
  }
  return alarms_ == before;
}

}  // namespace vouch::verifier
