// File: server/proto_time.h
// absl time values into the protobuf well-known types the services answer
// with: the definitions are core::attest's (core/attest/wire.h), which the
// pure verifier session uses too. Times are written to the microsecond
// (what PostgreSQL keeps) and normalised as Timestamp requires: nanos in
// [0, 1e9) also before 1970; durations to the millisecond.
//
//   SetTimestamp(absl::Now(), verdict.mutable_verified_at());
#ifndef VOUCH_SERVER_PROTO_TIME_H_
#define VOUCH_SERVER_PROTO_TIME_H_

#include "core/attest/wire.h"

namespace vouch::server {

using core::attest::SetDuration;
using core::attest::SetTimestamp;

}  // namespace vouch::server

#endif  // VOUCH_SERVER_PROTO_TIME_H_
