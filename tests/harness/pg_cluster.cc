#include "harness/pg_cluster.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "harness/ports.h"
#include "harness/process.h"

namespace vouch::testing {
namespace {

constexpr int kStartAttempts = 3;
constexpr std::chrono::seconds kToolTimeout(120);
constexpr std::chrono::seconds kDeathTimeout(10);
// sockaddr_un.sun_path is 108 bytes; the server appends "/.s.PGSQL.<port>".
constexpr size_t kMaxSocketDirLength = 107 - 16;

bool IsFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// $VOUCH_PG_BINDIR, else the highest-numbered /usr/lib/postgresql/N/bin that
// has initdb.
absl::StatusOr<std::string> FindBinDir() {
  const char* env = std::getenv("VOUCH_PG_BINDIR");
  if (env != nullptr && env[0] != '\0') {
    if (!IsFile(absl::StrCat(env, "/initdb")) ||
        !IsFile(absl::StrCat(env, "/pg_ctl"))) {
      return absl::NotFoundError(
          absl::StrCat("VOUCH_PG_BINDIR=", env, " has no initdb/pg_ctl"));
    }
    return std::string(env);
  }
  const std::string root = "/usr/lib/postgresql";
  DIR* dir = opendir(root.c_str());
  if (dir == nullptr) {
    return absl::NotFoundError(
        "no PostgreSQL found: set VOUCH_PG_BINDIR or install postgresql");
  }
  double best_version = -1;
  std::string best;
  while (dirent* entry = readdir(dir)) {
    double version;
    if (!absl::SimpleAtod(entry->d_name, &version)) continue;
    const std::string bin = absl::StrCat(root, "/", entry->d_name, "/bin");
    if (version > best_version && IsFile(bin + "/initdb") &&
        IsFile(bin + "/pg_ctl")) {
      best_version = version;
      best = bin;
    }
  }
  closedir(dir);
  if (best.empty()) {
    return absl::NotFoundError(
        "no /usr/lib/postgresql/*/bin with initdb and pg_ctl; set "
        "VOUCH_PG_BINDIR");
  }
  return best;
}

// Quotes `s` for the /bin/sh command line pg_ctl builds from -o.
std::string ShellQuote(absl::string_view s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

// Quotes a libpq conninfo value.
std::string ConninfoQuote(absl::string_view s) {
  return absl::StrCat(
      "'", absl::StrReplaceAll(s, {{"\\", "\\\\"}, {"'", "\\'"}}), "'");
}

bool WaitUntilDead(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (ProcessAlive(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PgCluster>> PgCluster::Start() {
  absl::StatusOr<std::string> bin_dir = FindBinDir();
  if (!bin_dir.ok()) return bin_dir.status();
  absl::StatusOr<TempDir> dir = TempDir::Create("pg-");
  if (!dir.ok()) return dir.status();

  // PostgreSQL refuses to run as root.
  std::string os_user;
  if (geteuid() == 0) {
    const char* env_user = std::getenv("VOUCH_TEST_PG_USER");
    os_user =
        (env_user != nullptr && env_user[0] != '\0') ? env_user : "postgres";
  }
  std::unique_ptr<PgCluster> cluster(
      new PgCluster(*std::move(dir), *std::move(bin_dir), os_user));

  if (cluster->socket_dir().size() > kMaxSocketDirLength) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket dir ", cluster->socket_dir(),
                     " too long for a Unix socket path; use a shorter TMPDIR"));
  }
  if (mkdir(cluster->socket_dir().c_str(), 0700) != 0) {
    return absl::InternalError(absl::StrCat("mkdir ", cluster->socket_dir(),
                                            ": ", std::strerror(errno)));
  }
  if (!os_user.empty()) {
    absl::Status chowned = cluster->dir_.ChownTo(os_user);
    if (!chowned.ok()) return chowned;
  }

  absl::StatusOr<std::string> initdb = RunCommand(
      {cluster->bin_dir_ + "/initdb", "-D", cluster->data_dir(), "-U", kUser,
       "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"},
      cluster->ServerSideOptions(), kToolTimeout);
  if (!initdb.ok()) {
    return absl::Status(initdb.status().code(),
                        absl::StrCat("initdb in ", cluster->dir(), " as ",
                                     os_user.empty() ? "current user" : os_user,
                                     ": ", initdb.status().message()));
  }

  absl::Status last_error;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    last_error = cluster->StartServer();
    if (last_error.ok()) return cluster;
  }
  return last_error;
}

ProcessOptions PgCluster::ServerSideOptions() const {
  ProcessOptions options;
  options.run_as = os_user_;
  options.working_dir = dir_.path();
  // Neutralise client variables that could redirect or alter tools, and get
  // English messages in logs and errors.
  options.unset_env = {"PGHOST",           "PGHOSTADDR",    "PGPORT",
                       "PGUSER",           "PGDATABASE",    "PGOPTIONS",
                       "PGSERVICE",        "PGSERVICEFILE", "PGPASSFILE",
                       "PGCLIENTENCODING", "PGTZ",          "PGDATESTYLE"};
  options.env = {{"LC_ALL", "C"}, {"PGDATA", data_dir()}};
  return options;
}

absl::Status PgCluster::Restart() {
  if (!stopped_) return absl::FailedPreconditionError("not stopped");
  return StartServer(/*same_port=*/true);
}

absl::Status PgCluster::StartServer(bool same_port) {
  if (!same_port) {
    absl::StatusOr<int> port = PickFreePort();
    if (!port.ok()) return port.status();
    port_ = *port;
  }
  // cluster_name puts dir() into every backend's process title, so
  // ProcessesWithArgContaining(dir()) finds them all.
  const std::string server_options = absl::StrCat(
      "-p ", port_, " -k ", ShellQuote(socket_dir()),
      " -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
      " -c cluster_name=", ShellQuote(dir_.path()));
  stopped_ = false;
  absl::StatusOr<std::string> started =
      RunCommand({bin_dir_ + "/pg_ctl", "start", "-w", "-t", "60", "-D",
                  data_dir(), "-l", log_path(), "-o", server_options},
                 ServerSideOptions(), kToolTimeout);
  if (started.ok()) {
    absl::StatusOr<pid_t> pid = postmaster_pid();
    if (pid.ok()) {
      started_pid_ = *pid;
      return absl::OkStatus();
    }
    started = pid.status();
  }
  absl::Status error(
      started.status().code(),
      absl::StrCat("pg_ctl start on port ", port_, ": ",
                   started.status().message(), "\nserver log (", log_path(),
                   ") tail:\n", FileTail(log_path())));
  absl::Status stopped = Stop();  // Clean up a half-started server.
  (void)stopped;
  return error;
}

absl::Status PgCluster::Stop() {
  if (stopped_) return absl::OkStatus();
  std::vector<pid_t> pids;
  if (absl::StatusOr<pid_t> pid = postmaster_pid(); pid.ok()) {
    pids.push_back(*pid);
  }
  if (started_pid_ > 0) pids.push_back(started_pid_);

  absl::StatusOr<std::string> stopped =
      RunCommand({bin_dir_ + "/pg_ctl", "stop", "-m", "immediate", "-w", "-t",
                  "30", "-D", data_dir()},
                 ServerSideOptions(), kToolTimeout);

  for (pid_t pid : pids) {
    if (ProcessAlive(pid)) kill(pid, SIGKILL);
  }
  for (pid_t pid : pids) WaitUntilDead(pid, kDeathTimeout);
  // Backends notice the postmaster's death on their own; don't wait for it.
  const auto deadline = std::chrono::steady_clock::now() + kDeathTimeout;
  std::vector<pid_t> left = ProcessesWithArgContaining(dir_.path());
  while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
    for (pid_t pid : left) kill(pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    left = ProcessesWithArgContaining(dir_.path());
  }
  if (!left.empty()) {
    return absl::InternalError(absl::StrCat(
        left.size(), " process(es) of ", dir_.path(),
        " survived SIGKILL, e.g. pid ", left.front(),
        stopped.ok()
            ? std::string()
            : absl::StrCat("; pg_ctl stop: ", stopped.status().message())));
  }
  stopped_ = true;
  started_pid_ = -1;
  return absl::OkStatus();
}

PgCluster::~PgCluster() {
  absl::Status stopped = Stop();
  if (!stopped.ok()) {
    std::fprintf(stderr, "vouch-test: PgCluster: %s\n",
                 stopped.ToString().c_str());
  }
}

std::string PgCluster::conninfo(absl::string_view dbname) const {
  return absl::StrCat("host=", ConninfoQuote(socket_dir()), " port=", port_,
                      " user=", kUser, " dbname=", ConninfoQuote(dbname));
}

std::string PgCluster::tcp_conninfo(absl::string_view dbname) const {
  return absl::StrCat("host=127.0.0.1 port=", port_, " user=", kUser,
                      " dbname=", ConninfoQuote(dbname));
}

absl::StatusOr<pid_t> PgCluster::postmaster_pid() const {
  const std::string path = dir_.Join("data/postmaster.pid");
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  int pid;
  if (!absl::SimpleAtoi(line, &pid) || pid <= 0) {
    return absl::InternalError(
        absl::StrCat("bad first line in ", path, ": ", line));
  }
  return static_cast<pid_t>(pid);
}

absl::StatusOr<std::string> PgCluster::Psql(absl::string_view sql,
                                            absl::string_view dbname) const {
  return RunCommand(
      {bin_dir_ + "/psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
       conninfo(dbname), "-c", std::string(sql)},
      ServerSideOptions(), kToolTimeout);
}

}  // namespace vouch::testing
