// File: harness/process.h
// Child processes for tests: start a server (ChildProcess), run a tool to
// completion (RunCommand), and check that nothing was left behind
// (ProcessAlive, ProcessesWithArgContaining). Test-only: argv and environment
// are trusted. A ChildProcess is not thread-safe; the free functions are.
//
//   absl::StatusOr<ChildProcess> swtpm = ChildProcess::Start({"swtpm", ...});
//   absl::StatusOr<std::string> out = RunCommand({"tpm2_getrandom", "8"});

#ifndef VOUCH_TESTS_HARNESS_PROCESS_H_
#define VOUCH_TESTS_HARNESS_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vouch::testing {

// Account data from the passwd database.
struct UserInfo {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home;
  std::vector<gid_t> groups;  // Supplementary groups, primary group included.
};

// Looks `name` up in the passwd/group databases; kNotFound if unknown.
absl::StatusOr<UserInfo> LookupUser(absl::string_view name);

struct ProcessOptions {
  // Removed from the parent's environment (before `env` is applied).
  std::vector<std::string> unset_env;
  // Added to (or replacing entries of) the parent's environment.
  std::vector<std::pair<std::string, std::string>> env;
  // Run as this user (setgroups/setgid/setuid in the child, HOME/USER/LOGNAME
  // set from passwd before `env` is applied). Empty: the current user.
  // Needs root unless it names the current user.
  std::string run_as;
  // chdir here before exec. Empty: inherit.
  std::string working_dir;
  // Append stdout / stderr to these files (created 0644). Empty: inherit. The
  // same path for both shares one descriptor.
  std::string stdout_path;
  std::string stderr_path;
  // If >= 0, stdout and stderr both go to this descriptor (overrides the
  // paths). Stays owned by the caller.
  int output_fd = -1;
  // prctl(PR_SET_PDEATHSIG, SIGKILL): the kernel kills the child when the
  // thread that started it exits, even on SIGKILL of the test binary. It does
  // not reach processes that the child forks.
  bool kill_on_parent_death = true;
  // Put the child in a new process group so Terminate() also reaches its
  // descendants (unless they leave the group, e.g. daemons calling setsid).
  bool new_process_group = true;
};

// How a child ended.
struct ExitStatus {
  bool exited = false;  // Exited normally; `code` is valid.
  int code = 0;
  int signal = 0;  // Killed by this signal when !exited.

  bool Success() const { return exited && code == 0; }
  // "exit code 3" / "killed by signal 9 (Killed)".
  std::string ToString() const;
};

// A started child process. Movable, not copyable. Destruction terminates it
// (Terminate() with the default grace).
class ChildProcess {
 public:
  static constexpr std::chrono::milliseconds kDefaultGrace{5000};

  // Resolves argv[0] through PATH (of the child's environment), opens the
  // redirections and looks up `run_as` before forking; the child then makes
  // only async-signal-safe calls before execve. Fails (kNotFound, kInternal,
  // ...) if any of that, or the exec itself, fails.
  static absl::StatusOr<ChildProcess> Start(
      const std::vector<std::string>& argv, const ProcessOptions& options = {});

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  const std::vector<std::string>& argv() const { return argv_; }

  // True until the child has exited.
  bool Running();

  // Waits up to `timeout` for the child to exit; kDeadlineExceeded if it is
  // still running. The child stays a zombie (its pid and process group stay
  // reserved) until Terminate() or destruction reaps it.
  absl::StatusOr<ExitStatus> WaitFor(std::chrono::milliseconds timeout);

  // SIGTERM to the process group (or the child alone without a new group),
  // waits up to `grace` for the child to exit, then SIGKILLs the group and
  // reaps the child. Idempotent; returns how the child ended.
  ExitStatus Terminate(std::chrono::milliseconds grace = kDefaultGrace);

 private:
  ChildProcess(pid_t pid, bool own_group, std::vector<std::string> argv)
      : pid_(pid), own_group_(own_group), argv_(std::move(argv)) {}

  // Non-blocking check; fills status_ once the child has exited (not reaped).
  bool CheckExited();
  void Signal(int sig);

  pid_t pid_ = -1;
  bool own_group_ = false;
  bool exited_ = false;
  bool reaped_ = false;
  ExitStatus status_;
  std::vector<std::string> argv_;
};

// Runs argv to completion and returns its combined stdout+stderr. Errors:
// kDeadlineExceeded after `timeout` (the process group is then killed),
// kInternal for a non-zero exit; both carry the exit status and the tail of
// the output. options.stdout_path/stderr_path/output_fd are ignored.
absl::StatusOr<std::string> RunCommand(
    const std::vector<std::string>& argv, const ProcessOptions& options = {},
    std::chrono::milliseconds timeout = std::chrono::seconds(120));

// What a command printed and how it ended (RunCapture).
struct RunResult {
  ExitStatus status;  // exited=false, signal=0 when it could not start
  std::string out;
  std::string err;
};

// Runs argv to completion with stdout and stderr captured separately, HOME
// and XDG_CONFIG_HOME pointed at an empty temp dir (a developer's own
// ~/.config/vouch stays out of tests) plus `env`. Killed after `timeout`.
RunResult RunCapture(
    const std::vector<std::string>& argv,
    std::vector<std::pair<std::string, std::string>> env = {},
    std::chrono::milliseconds timeout = std::chrono::seconds(120));

// True if `pid` exists and is not a zombie.
bool ProcessAlive(pid_t pid);

// Live processes (not this one) with an argument of /proc/<pid>/cmdline that
// contains `needle`, e.g. a fixture's temp dir.
std::vector<pid_t> ProcessesWithArgContaining(absl::string_view needle);

// The last `max_bytes` of `text`, prefixed with "..." if cut.
std::string Tail(absl::string_view text, size_t max_bytes = 4000);

// The last `max_bytes` of the file at `path`, or a note that it is unreadable.
std::string FileTail(const std::string& path, size_t max_bytes = 4000);

}  // namespace vouch::testing

#endif  // VOUCH_TESTS_HARNESS_PROCESS_H_
