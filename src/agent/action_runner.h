// File: agent/action_runner.h
// The agent's local actions (docs/actions.md): executables in a configured
// directory, run for each verified action notice in name order, each given
// the notice's event as JSON on stdin, without a shell (posix_spawn, a new
// process group, a minimal environment), with a timeout after which the
// action's process group is killed; each exit status is logged. Files and
// the directory must be owned by root or the agent's user and not be
// world-writable, or they are refused (never run). Notices wait in a
// bounded queue (kMaxQueuedEvents, drop-oldest) and run on the runner's own
// thread: the attestation loop never waits for an action. Thread-safe.
//
//   ActionRunner runner({"/etc/vouch/actions.d", absl::Seconds(30)});
//   runner.Submit(event_json);  // Returns at once.
#ifndef VOUCH_AGENT_ACTION_RUNNER_H_
#define VOUCH_AGENT_ACTION_RUNNER_H_

#include <sys/types.h>

#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vouch::agent {

// Events waiting to run; an older one is dropped for a newer beyond this.
inline constexpr size_t kMaxQueuedEvents = 64;
// Executables run per event at most (the first by name).
inline constexpr size_t kMaxActions = 64;

struct ActionOptions {
  std::string dir;  // Empty: no actions.
  absl::Duration timeout = absl::Seconds(30);
};

// How one action ended.
struct ActionOutcome {
  bool timed_out = false;  // Killed at the timeout.
  int exit_code = -1;      // When it exited.
  int signal = 0;          // When a signal ended it (SIGKILL if timed out).
};

// The executables of `dir` that may run, in name order: regular files with
// an execute bit, names not starting with '.' or ending in '~'. An error
// when `dir` itself is unsafe (not a directory, world-writable, owned by
// neither root nor `owner`); an unsafe file is left out and logged.
absl::StatusOr<std::vector<std::string>> ListActions(const std::string& dir,
                                                     uid_t owner);

// Runs `path` with `input` on its stdin and waits for it, at most
// `timeout` (then its process group is killed). Blocking. Sets SIGPIPE to
// be ignored in this process (an action may close its stdin early).
absl::StatusOr<ActionOutcome> RunAction(const std::string& path,
                                        const std::string& input,
                                        absl::Duration timeout);

class ActionRunner {
 public:
  explicit ActionRunner(ActionOptions options);
  ~ActionRunner();  // Waits for the action running now.
  ActionRunner(const ActionRunner&) = delete;
  ActionRunner& operator=(const ActionRunner&) = delete;

  // Queues the event for the actions; never blocks.
  void Submit(std::string event_json);
  // Events run or dropped so far (tests wait on it).
  size_t handled() const;

 private:
  void Run();
  void RunAll(const std::string& event_json);

  const ActionOptions options_;
  mutable absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  size_t handled_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace vouch::agent

#endif  // VOUCH_AGENT_ACTION_RUNNER_H_
