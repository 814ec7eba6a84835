#include "verifier/translog_runner.h"

#include "common/logging.h"

namespace vouch::verifier {

void TranslogRunner::Alarm(const char* what, const std::string& detail) {
  ++alarms_;
  Log(LogLevel::kError, what, {{"detail", detail}});
  if (metrics_ != nullptr) metrics_->TranslogAlarm();
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
    if (head.ok() && alarms_ == before) seen_ = *head;
  } else if (latest.status().code() != absl::StatusCode::kNotFound) {
    Log(LogLevel::kWarning, "translog: reading the tree head failed",
        {{"error", latest.status().message()}});
  }
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
