#include "agent/action_runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file.h"
#include "common/logging.h"
#include "common/thread_name.h"

namespace vouch::agent {
namespace {

// Owned by root or `owner`, and not writable by everyone.
bool SafeOwner(const struct stat& st, uid_t owner) {
  return (st.st_uid == 0 || st.st_uid == owner) && (st.st_mode & S_IWOTH) == 0;
}

absl::Status Errno(const char* what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Writes all of `data` to a pipe; an action that closes its stdin early
// ends the write (EPIPE; SIGPIPE is ignored by the runner's process).
void WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ListActions(const std::string& dir,
                                                     uid_t owner) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) return Errno(dir.c_str());
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, ": not a directory"));
  }
  if (!SafeOwner(st, owner)) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir,
                     ": must be owned by root or the agent's user and not "
                     "world-writable"));
  }
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
  if (d == nullptr) return Errno(dir.c_str());
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d.get())) {
    const std::string name = e->d_name;
    if (name.empty() || name[0] == '.' || absl::EndsWith(name, "~")) continue;
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> out;
  for (const std::string& name : names) {
    const std::string path = absl::StrCat(dir, "/", name);
    struct stat f {};
    // lstat: a symlink is not followed (it could point anywhere).
    if (lstat(path.c_str(), &f) != 0 || !S_ISREG(f.st_mode) ||
        (f.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0) {
      continue;  // Not an executable file: not an action.
    }
    if (!SafeOwner(f, owner)) {
      Log(LogLevel::kWarning,
          "action refused: owned by another user or world-writable",
          {{"file", path}});
      continue;
    }
    out.push_back(path);
    if (out.size() >= kMaxActions) break;
  }
  return out;
}

absl::StatusOr<ActionOutcome> RunAction(const std::string& path,
                                        const std::string& input,
                                        absl::Duration timeout) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Errno("pipe2");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  posix_spawn_file_actions_t files;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&files);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&files, read_end.get(), STDIN_FILENO);
  // Its own process group (killed whole at the timeout), default signal
  // dispositions and an empty signal mask, whatever the agent's are.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                      POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  std::string arg0 = path;
  char* argv[] = {arg0.data(), nullptr};
  std::string env_path =
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  char* envp[] = {env_path.data(), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, path.c_str(), &files, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&files);
  posix_spawnattr_destroy(&attr);
  read_end.Reset();
  if (rc != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": ", std::strerror(rc)));
  }
  // An action that closes its stdin early must not kill the agent: the
  // write then fails with EPIPE instead (the action itself starts with the
  // default disposition, POSIX_SPAWN_SETSIGDEF).
  signal(SIGPIPE, SIG_IGN);
  WriteAll(write_end.get(), input);
  write_end.Reset();  // EOF on its stdin.
  ActionOutcome out;
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (true) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return Errno("waitpid");
    if (absl::Now() >= deadline) {
      out.timed_out = true;
      kill(-pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  if (WIFEXITED(status)) out.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) out.signal = WTERMSIG(status);
  return out;
}

ActionRunner::ActionRunner(ActionOptions options)
    : options_(std::move(options)) {
  thread_ = std::thread([this] {
    SetThreadName("vouch-actions");
    Run();
  });
}

ActionRunner::~ActionRunner() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void ActionRunner::Submit(std::string event_json) {
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= kMaxQueuedEvents) {
    queue_.pop_front();
    ++handled_;
    Log(LogLevel::kWarning, "action event dropped: too many queued");
  }
  queue_.push_back(std::move(event_json));
}

size_t ActionRunner::handled() const {
  absl::MutexLock lock(&mu_);
  return handled_;
}

void ActionRunner::Run() {
  while (true) {
    std::string event;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](ActionRunner* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) {
            return r->stop_ || !r->queue_.empty();
          },
          this));
      if (stop_) return;
      event = std::move(queue_.front());
      queue_.pop_front();
    }
    RunAll(event);
    absl::MutexLock lock(&mu_);
    ++handled_;
  }
}

void ActionRunner::RunAll(const std::string& event_json) {
  if (options_.dir.empty()) return;
  absl::StatusOr<std::vector<std::string>> actions =
      ListActions(options_.dir, geteuid());
  if (!actions.ok()) {
    Log(LogLevel::kError, "actions not run",
        {{"error", actions.status().message()}});
    return;
  }
  for (const std::string& path : *actions) {
    absl::StatusOr<ActionOutcome> o =
        RunAction(path, event_json, options_.timeout);
    if (!o.ok()) {
      Log(LogLevel::kWarning, "action did not start",
          {{"file", path}, {"error", o.status().message()}});
    } else if (o->timed_out) {
      Log(LogLevel::kWarning, "action killed at its timeout", {{"file", path}});
    } else {
      Log(o->exit_code == 0 ? LogLevel::kInfo : LogLevel::kWarning,
          "action ran",
          {{"file", path}, {"exit", o->exit_code}, {"signal", o->signal}});
    }
  }
}

}  // namespace vouch::agent
