// File: common/thread_name.h
// Names the calling thread (Linux: at most 15 characters, longer names are
// cut), so `top -H`, `ps -L`, perf and /proc/PID/task/TID/comm tell a
// server's threads apart; benchmarks read their CPU by these names.
//
//   SetThreadName("vouch-commit");
#ifndef VOUCH_COMMON_THREAD_NAME_H_
#define VOUCH_COMMON_THREAD_NAME_H_

namespace vouch {

void SetThreadName(const char* name);

}  // namespace vouch

#endif  // VOUCH_COMMON_THREAD_NAME_H_
