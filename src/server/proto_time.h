// File: server/proto_time.h
// absl time values into the protobuf well-known types the services answer
// with. Times are written to the microsecond (what PostgreSQL keeps) and
// normalised as Timestamp requires: nanos in [0, 1e9) also before 1970.
//
//   SetTimestamp(absl::Now(), verdict.mutable_verified_at());
#ifndef VOUCH_SERVER_PROTO_TIME_H_
#define VOUCH_SERVER_PROTO_TIME_H_

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include "absl/time/time.h"

namespace vouch::server {

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out);
// Milliseconds, the resolution of every interval in the protocol.
void SetDuration(absl::Duration d, google::protobuf::Duration* out);

}  // namespace vouch::server

#endif  // VOUCH_SERVER_PROTO_TIME_H_
