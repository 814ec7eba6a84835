#include "verifier/admission.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace vouch::verifier {

std::string RetryAfterValue(absl::Duration retry_after) {
  return absl::StrCat(absl::ToInt64Milliseconds(retry_after));
}

absl::Duration HelloCheckPeriod(absl::Duration hello_deadline) {
  return std::clamp(hello_deadline / 4, absl::Milliseconds(10),
                    absl::Seconds(1));
}

bool ImaBudget::Hold(int64_t delta) {
  if (delta <= 0) {
    held_.fetch_add(delta);
    return true;
  }
  int64_t held = held_.load();
  do {
    if (delta > max_bytes_ - held) return false;  // No overflow.
  } while (!held_.compare_exchange_weak(held, held + delta));
  return true;
}

}  // namespace vouch::verifier
