#include "server/proto_time.h"

namespace vouch::server {

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t us = absl::ToUnixMicros(t);
  int64_t seconds = us / 1000000;
  int64_t micros = us % 1000000;
  if (micros < 0) {  // Floor, so nanos stay non-negative.
    micros += 1000000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(micros * 1000));
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t ms = absl::ToInt64Milliseconds(d);
  out->set_seconds(ms / 1000);
  out->set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
}

}  // namespace vouch::server
