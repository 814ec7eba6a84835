// File: harness/ports.h
// Free TCP port selection for test servers: always asks the kernel (bind
// 127.0.0.1:0), never hard-codes a port. A picked port is only free at the
// moment of the call; callers must retry with a new port if their server then
// fails to bind (another process may win the race). Thread-safe.
//
//   absl::StatusOr<int> port = PickFreePort();

#ifndef VOUCH_TESTS_HARNESS_PORTS_H_
#define VOUCH_TESTS_HARNESS_PORTS_H_

#include "absl/status/statusor.h"

namespace vouch::testing {

// Returns a TCP port that was free on 127.0.0.1 at the time of the call.
absl::StatusOr<int> PickFreePort();

// Returns P such that TCP ports P and P+1 were both free on 127.0.0.1 at the
// time of the call (swtpm: server port P, control port P+1).
absl::StatusOr<int> PickFreePortPair();

}  // namespace vouch::testing

#endif  // VOUCH_TESTS_HARNESS_PORTS_H_
