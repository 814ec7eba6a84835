#include "harness/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/file.h"
#include "harness/temp_dir.h"

extern char** environ;

namespace vouch::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxCapturedOutput = 64 << 20;

absl::Status ErrnoStatus(absl::string_view what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(err)));
}

std::string JoinArgv(const std::vector<std::string>& argv) {
  return absl::StrJoin(argv, " ");
}

// Sets KEY=value in `env`, replacing an existing KEY.
void SetEnv(std::vector<std::string>& env, absl::string_view key,
            absl::string_view value) {
  const std::string prefix = absl::StrCat(key, "=");
  for (std::string& entry : env) {
    if (absl::StartsWith(entry, prefix)) {
      entry = absl::StrCat(prefix, value);
      return;
    }
  }
  env.push_back(absl::StrCat(prefix, value));
}

void UnsetEnv(std::vector<std::string>& env, absl::string_view key) {
  const std::string prefix = absl::StrCat(key, "=");
  env.erase(std::remove_if(env.begin(), env.end(),
                           [&](const std::string& entry) {
                             return absl::StartsWith(entry, prefix);
                           }),
            env.end());
}

std::string GetEnv(const std::vector<std::string>& env, absl::string_view key) {
  const std::string prefix = absl::StrCat(key, "=");
  for (const std::string& entry : env) {
    if (absl::StartsWith(entry, prefix)) return entry.substr(prefix.size());
  }
  return "";
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         access(path.c_str(), X_OK) == 0;
}

// Like execvp's search, but done in the parent so the child only execve()s.
absl::StatusOr<std::string> ResolveExecutable(const std::string& name,
                                              const std::string& path_var) {
  if (name.find('/') != std::string::npos) {
    if (IsExecutableFile(name)) return name;
    return absl::NotFoundError(absl::StrCat("not an executable file: ", name));
  }
  const std::string search =
      path_var.empty() ? "/usr/local/bin:/usr/bin:/bin" : path_var;
  for (absl::string_view dir : absl::StrSplit(search, ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    if (IsExecutableFile(candidate)) return candidate;
  }
  return absl::NotFoundError(
      absl::StrCat("executable ", name, " not found in PATH=", search));
}

absl::StatusOr<UniqueFd> OpenForAppend(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(absl::StrCat("open ", path), errno);
  return UniqueFd(fd);
}

// What failed in the child before exec; sent to the parent over a pipe.
enum ChildStage : int {
  kStageDup = 1,
  kStageSetpgid,
  kStageSetgroups,
  kStageSetgid,
  kStageSetuid,
  kStageChdir,
  kStagePrctl,
  kStageExec,
};

struct ChildError {
  int stage;
  int err;
};

const char* StageName(int stage) {
  switch (stage) {
    case kStageDup:
      return "dup2";
    case kStageSetpgid:
      return "setpgid";
    case kStageSetgroups:
      return "setgroups";
    case kStageSetgid:
      return "setgid";
    case kStageSetuid:
      return "setuid";
    case kStageChdir:
      return "chdir";
    case kStagePrctl:
      return "prctl(PR_SET_PDEATHSIG)";
    case kStageExec:
      return "execve";
  }
  return "unknown step";
}

// Child side: reports the failed step and exits. Async-signal-safe.
[[noreturn]] void ChildFail(int error_fd, int stage) {
  ChildError error{stage, errno};
  ssize_t ignored = write(error_fd, &error, sizeof(error));
  (void)ignored;
  _exit(127);
}

// Child side: makes `from` the descriptor `to`, without close-on-exec.
bool MoveFd(int from, int to) {
  if (from == to) {
    int flags = fcntl(to, F_GETFD);
    return flags >= 0 && fcntl(to, F_SETFD, flags & ~FD_CLOEXEC) == 0;
  }
  return dup2(from, to) == to;
}

bool ReadFile(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  UniqueFd owned(fd);
  out->clear();
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out->append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (exited) return absl::StrCat("exit code ", code);
  const char* name = sigdescr_np(signal);
  return absl::StrFormat("killed by signal %d (%s)", signal,
                         name != nullptr ? name : "?");
}

absl::StatusOr<UserInfo> LookupUser(absl::string_view name) {
  const std::string user(name);
  long size_hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size_hint > 0 ? static_cast<size_t>(size_hint) : 16384);
  passwd pw;
  passwd* result = nullptr;
  int rc;
  while ((rc = getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(),
                          &result)) == ERANGE) {
    buf.resize(buf.size() * 2);
  }
  if (rc != 0) return ErrnoStatus(absl::StrCat("getpwnam ", user), rc);
  if (result == nullptr) {
    return absl::NotFoundError(absl::StrCat("no such user: ", user));
  }
  UserInfo info;
  info.name = user;
  info.uid = pw.pw_uid;
  info.gid = pw.pw_gid;
  info.home = pw.pw_dir != nullptr ? pw.pw_dir : "/";
  int ngroups = 32;
  for (;;) {
    info.groups.resize(static_cast<size_t>(ngroups));
    int n = ngroups;
    if (getgrouplist(user.c_str(), info.gid, info.groups.data(), &n) >= 0) {
      info.groups.resize(static_cast<size_t>(n));
      break;
    }
    ngroups = std::max(n, ngroups * 2);
  }
  return info;
}

absl::StatusOr<ChildProcess> ChildProcess::Start(
    const std::vector<std::string>& argv, const ProcessOptions& options) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");

  // Everything that allocates or may fail is prepared here, before fork().
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    env.emplace_back(*e);
  }
  for (const std::string& key : options.unset_env) UnsetEnv(env, key);
  UserInfo user;
  bool switch_user = false;
  if (!options.run_as.empty()) {
    absl::StatusOr<UserInfo> looked_up = LookupUser(options.run_as);
    if (!looked_up.ok()) return looked_up.status();
    user = *std::move(looked_up);
    if (geteuid() == 0) {
      switch_user = true;
    } else if (user.uid != geteuid()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot run as ", user.name, " without root (euid ", geteuid(), ")"));
    }
    SetEnv(env, "HOME", user.home);
    SetEnv(env, "USER", user.name);
    SetEnv(env, "LOGNAME", user.name);
  }
  for (const auto& [key, value] : options.env) SetEnv(env, key, value);

  absl::StatusOr<std::string> exe =
      ResolveExecutable(argv[0], GetEnv(env, "PATH"));
  if (!exe.ok()) return exe.status();

  std::vector<char*> argv_ptrs;
  for (const std::string& arg : argv) {
    argv_ptrs.push_back(const_cast<char*>(arg.c_str()));
  }
  argv_ptrs.push_back(nullptr);
  std::vector<char*> env_ptrs;
  for (const std::string& entry : env) {
    env_ptrs.push_back(const_cast<char*>(entry.c_str()));
  }
  env_ptrs.push_back(nullptr);

  UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (devnull.get() < 0) return ErrnoStatus("open /dev/null", errno);
  UniqueFd stdout_file;
  UniqueFd stderr_file;
  int out_fd = -1;
  int err_fd = -1;
  if (options.output_fd >= 0) {
    out_fd = err_fd = options.output_fd;
  } else {
    if (!options.stdout_path.empty()) {
      absl::StatusOr<UniqueFd> f = OpenForAppend(options.stdout_path);
      if (!f.ok()) return f.status();
      stdout_file = *std::move(f);
      out_fd = stdout_file.get();
    }
    if (!options.stderr_path.empty()) {
      if (options.stderr_path == options.stdout_path) {
        err_fd = out_fd;
      } else {
        absl::StatusOr<UniqueFd> f = OpenForAppend(options.stderr_path);
        if (!f.ok()) return f.status();
        stderr_file = *std::move(f);
        err_fd = stderr_file.get();
      }
    }
  }

  int error_pipe[2];
  if (pipe2(error_pipe, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
  UniqueFd error_read(error_pipe[0]);
  UniqueFd error_write(error_pipe[1]);

  struct sigaction default_action;
  std::memset(&default_action, 0, sizeof(default_action));
  default_action.sa_handler = SIG_DFL;
  sigset_t empty_mask;
  sigemptyset(&empty_mask);

  const char* exe_path = exe->c_str();
  const char* working_dir =
      options.working_dir.empty() ? nullptr : options.working_dir.c_str();
  const bool own_group = options.new_process_group;
  const bool pdeathsig = options.kill_on_parent_death;
  const pid_t parent_pid = getpid();
  const int devnull_fd = devnull.get();
  const int error_fd = error_write.get();

  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus("fork", errno);
  if (pid == 0) {
    // Child: async-signal-safe calls only from here on.
    for (int sig = 1; sig < NSIG; ++sig)
      sigaction(sig, &default_action, nullptr);
    sigprocmask(SIG_SETMASK, &empty_mask, nullptr);
    if (own_group && setpgid(0, 0) != 0) ChildFail(error_fd, kStageSetpgid);
    if (!MoveFd(devnull_fd, STDIN_FILENO)) ChildFail(error_fd, kStageDup);
    if (out_fd >= 0 && !MoveFd(out_fd, STDOUT_FILENO)) {
      ChildFail(error_fd, kStageDup);
    }
    if (err_fd >= 0 && !MoveFd(err_fd, STDERR_FILENO)) {
      ChildFail(error_fd, kStageDup);
    }
    if (switch_user) {
      if (setgroups(user.groups.size(), user.groups.data()) != 0) {
        ChildFail(error_fd, kStageSetgroups);
      }
      if (setgid(user.gid) != 0) ChildFail(error_fd, kStageSetgid);
      if (setuid(user.uid) != 0) ChildFail(error_fd, kStageSetuid);
    }
    if (working_dir != nullptr && chdir(working_dir) != 0) {
      ChildFail(error_fd, kStageChdir);
    }
    // After setuid: a credential change clears the parent-death signal.
    if (pdeathsig) {
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
        ChildFail(error_fd, kStagePrctl);
      }
      if (getppid() != parent_pid) _exit(126);  // Parent already gone.
    }
    execve(exe_path, argv_ptrs.data(), env_ptrs.data());
    ChildFail(error_fd, kStageExec);
  }

  // Parent. Also set the group here so it exists before Start() returns
  // (EACCES once the child has exec'd is fine: it did it itself).
  if (own_group) setpgid(pid, pid);
  error_write.Reset();
  ChildError error;
  ssize_t n;
  do {
    n = read(error_read.get(), &error, sizeof(error));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(error))) {
    int ignored_status;
    while (waitpid(pid, &ignored_status, 0) < 0 && errno == EINTR) {
    }
    return absl::InternalError(absl::StrCat("starting `", JoinArgv(argv),
                                            "`: ", StageName(error.stage), ": ",
                                            std::strerror(error.err)));
  }
  return ChildProcess(pid, own_group, argv);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      own_group_(other.own_group_),
      exited_(other.exited_),
      reaped_(other.reaped_),
      status_(other.status_),
      argv_(std::move(other.argv_)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ >= 0) Terminate();
    pid_ = std::exchange(other.pid_, -1);
    own_group_ = other.own_group_;
    exited_ = other.exited_;
    reaped_ = other.reaped_;
    status_ = other.status_;
    argv_ = std::move(other.argv_);
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ >= 0) Terminate();
}

bool ChildProcess::CheckExited() {
  if (exited_ || pid_ < 0) return true;
  siginfo_t info;
  std::memset(&info, 0, sizeof(info));
  int rc;
  do {
    rc = waitid(P_PID, static_cast<id_t>(pid_), &info,
                WEXITED | WNOHANG | WNOWAIT);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    // ECHILD: someone else reaped it; treat as gone.
    exited_ = true;
    reaped_ = true;
    return true;
  }
  if (info.si_pid != pid_) return false;
  exited_ = true;
  if (info.si_code == CLD_EXITED) {
    status_.exited = true;
    status_.code = info.si_status;
  } else {
    status_.exited = false;
    status_.signal = info.si_status;
  }
  return true;
}

bool ChildProcess::Running() { return !CheckExited(); }

absl::StatusOr<ExitStatus> ChildProcess::WaitFor(
    std::chrono::milliseconds timeout) {
  if (pid_ < 0) return absl::FailedPreconditionError("no child process");
  const Clock::time_point deadline = Clock::now() + timeout;
  std::chrono::milliseconds pause(1);
  while (!CheckExited()) {
    if (Clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("`", JoinArgv(argv_), "` (pid ", pid_,
                       ") still running after ", timeout.count(), " ms"));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  return status_;
}

void ChildProcess::Signal(int sig) {
  if (own_group_) {
    // The unreaped leader keeps the group id reserved, so this cannot reach
    // an unrelated group.
    kill(-pid_, sig);
  } else if (!exited_) {
    kill(pid_, sig);
  }
}

ExitStatus ChildProcess::Terminate(std::chrono::milliseconds grace) {
  if (pid_ < 0 || reaped_) return status_;
  CheckExited();
  Signal(SIGTERM);
  absl::StatusOr<ExitStatus> waited = WaitFor(grace);
  (void)waited;
  Signal(SIGKILL);  // Stragglers in the group, or a child ignoring SIGTERM.
  int wait_status = 0;
  pid_t rc;
  do {
    rc = waitpid(pid_, &wait_status, 0);
  } while (rc < 0 && errno == EINTR);
  if (rc == pid_ && !exited_) {
    exited_ = true;
    status_.exited = WIFEXITED(wait_status);
    status_.code = status_.exited ? WEXITSTATUS(wait_status) : 0;
    status_.signal = WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : 0;
  }
  reaped_ = true;
  return status_;
}

absl::StatusOr<std::string> RunCommand(const std::vector<std::string>& argv,
                                       const ProcessOptions& options,
                                       std::chrono::milliseconds timeout) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  ProcessOptions run_options = options;
  run_options.stdout_path.clear();
  run_options.stderr_path.clear();
  run_options.output_fd = write_end.get();
  absl::StatusOr<ChildProcess> child = ChildProcess::Start(argv, run_options);
  write_end.Reset();
  if (!child.ok()) return child.status();
  fcntl(read_end.get(), F_SETFL, O_NONBLOCK);

  const Clock::time_point deadline = Clock::now() + timeout;
  std::string output;
  bool truncated = false;
  bool eof = false;
  bool timed_out = false;
  // Reads what is available now; sets eof at end of stream.
  auto drain = [&] {
    char buf[8192];
    for (;;) {
      ssize_t n = read(read_end.get(), buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) eof = true;
      if (n <= 0) return;
      if (output.size() < kMaxCapturedOutput) {
        output.append(buf, static_cast<size_t>(n));
      } else {
        truncated = true;
      }
    }
  };
  for (;;) {
    if (!eof) {
      pollfd pfd{read_end.get(), POLLIN, 0};
      poll(&pfd, 1, 20);
      drain();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // Stop at the child's exit even without EOF: a daemon it started may
    // still hold the pipe.
    if (!child->Running()) {
      drain();
      break;
    }
    if (Clock::now() >= deadline) {
      timed_out = true;
      break;
    }
  }
  ExitStatus status = child->Terminate(std::chrono::milliseconds(1000));
  drain();
  if (truncated) output += "\n[output truncated]\n";
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat("`", JoinArgv(argv), "` timed out after ", timeout.count(),
                     " ms and was killed (", status.ToString(),
                     "); output tail:\n", Tail(output)));
  }
  if (!status.Success()) {
    return absl::InternalError(absl::StrCat("`", JoinArgv(argv), "` failed (",
                                            status.ToString(),
                                            "); output tail:\n", Tail(output)));
  }
  return output;
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0 && errno != EPERM) return false;
  std::string stat;
  if (!ReadFile(absl::StrCat("/proc/", pid, "/stat"), &stat)) {
    // Gone between the two checks, or no /proc: trust kill().
    return kill(pid, 0) == 0 || errno == EPERM;
  }
  // "pid (comm) S ...": comm may contain ')' itself, so use the last one.
  size_t close_paren = stat.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= stat.size()) {
    return true;
  }
  char state = stat[close_paren + 2];
  return state != 'Z' && state != 'X' && state != 'x';
}

std::vector<pid_t> ProcessesWithArgContaining(absl::string_view needle) {
  std::vector<pid_t> found;
  if (needle.empty()) return found;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return found;
  const pid_t self = getpid();
  std::string cmdline;
  while (dirent* entry = readdir(proc)) {
    int pid;
    if (!absl::SimpleAtoi(entry->d_name, &pid) || pid <= 0 || pid == self) {
      continue;
    }
    if (!ReadFile(absl::StrCat("/proc/", pid, "/cmdline"), &cmdline)) continue;
    for (absl::string_view arg :
         absl::StrSplit(cmdline, absl::ByChar('\0'), absl::SkipEmpty())) {
      if (absl::StrContains(arg, needle)) {
        if (ProcessAlive(pid)) found.push_back(pid);
        break;
      }
    }
  }
  closedir(proc);
  std::sort(found.begin(), found.end());
  return found;
}

std::string Tail(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  return absl::StrCat("...", text.substr(text.size() - max_bytes));
}

std::string FileTail(const std::string& path, size_t max_bytes) {
  std::string content;
  if (!ReadFile(path, &content)) {
    return absl::StrCat("(cannot read ", path, ": ", std::strerror(errno), ")");
  }
  return Tail(content, max_bytes);
}

RunResult RunCapture(const std::vector<std::string>& argv,
                     std::vector<std::pair<std::string, std::string>> env,
                     std::chrono::milliseconds timeout) {
  RunResult result;
  absl::StatusOr<TempDir> dir = TempDir::Create("run-");
  if (!dir.ok()) {
    result.err = std::string(dir.status().message());
    return result;
  }
  ProcessOptions options;
  options.stdout_path = dir->Join("out");
  options.stderr_path = dir->Join("err");
  options.env = std::move(env);
  options.env.emplace_back("HOME", dir->path());
  options.env.emplace_back("XDG_CONFIG_HOME", dir->Join("xdg"));
  absl::StatusOr<ChildProcess> child = ChildProcess::Start(argv, options);
  if (!child.ok()) {
    result.err = std::string(child.status().message());
    return result;
  }
  absl::StatusOr<ExitStatus> status = child->WaitFor(timeout);
  result.status = status.ok() ? *status : child->Terminate();
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  result.out = read(options.stdout_path);
  result.err = read(options.stderr_path);
  return result;
}

}  // namespace vouch::testing
