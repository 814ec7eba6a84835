// Self-tests for the test harness: each fixture works and leaves no process
// or directory behind.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "harness/pg_cluster.h"
#include "harness/ports.h"
#include "harness/process.h"
#include "harness/swtpm.h"
#include "harness/tcp_proxy.h"
#include "harness/temp_dir.h"

namespace vouch::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool CanBind(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// A string unique to this test run, to find processes by their command line.
std::string Marker(const char* what) {
  return absl::StrCat("vouch-marker-", what, "-", getpid());
}

bool WaitUntilNoneContain(const std::string& needle, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ProcessesWithArgContaining(needle).empty()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

TEST_CASE("TempDir is private and removes itself", "[harness]") {
  std::string path;
  {
    absl::StatusOr<TempDir> dir = TempDir::Create("self-");
    REQUIRE(dir.ok());
    path = dir->path();
    CHECK(absl::StrContains(path, "/vouch-test-self-"));
    CHECK(path.front() == '/');
    struct stat st;
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    std::filesystem::create_directories(dir->Join("a/b"));
    std::ofstream(dir->Join("a/b/file")) << "x";

    TempDir moved = *std::move(dir);
    CHECK(dir->path().empty());  // NOLINT(bugprone-use-after-move)
    CHECK(moved.path() == path);
    CHECK(Exists(moved.Join("a/b/file")));
  }
  CHECK_FALSE(Exists(path));
}

TEST_CASE("TempDir is kept with VOUCH_TEST_KEEP=1", "[harness]") {
  std::string path;
  setenv("VOUCH_TEST_KEEP", "1", 1);
  {
    absl::StatusOr<TempDir> dir = TempDir::Create("keep-");
    REQUIRE(dir.ok());
    path = dir->path();
  }
  unsetenv("VOUCH_TEST_KEEP");
  CHECK(Exists(path));
  std::filesystem::remove_all(path);
}

TEST_CASE("TempDir rejects a label with a slash", "[harness]") {
  CHECK(TempDir::Create("a/b").status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("PickFreePort gives bindable ports", "[harness]") {
  absl::StatusOr<int> port = PickFreePort();
  REQUIRE(port.ok());
  CHECK(*port > 0);
  CHECK(*port < 65536);
  CHECK(CanBind(*port));

  absl::StatusOr<int> pair = PickFreePortPair();
  REQUIRE(pair.ok());
  CHECK(CanBind(*pair));
  CHECK(CanBind(*pair + 1));
}

TEST_CASE("ChildProcess reports exit codes and timeouts", "[harness]") {
  absl::StatusOr<ChildProcess> ok = ChildProcess::Start({"true"});
  REQUIRE(ok.ok());
  absl::StatusOr<ExitStatus> status = ok->WaitFor(seconds(10));
  REQUIRE(status.ok());
  CHECK(status->Success());
  // Exited but not yet reaped: a zombie counts as dead.
  CHECK_FALSE(ProcessAlive(ok->pid()));

  absl::StatusOr<ChildProcess> three =
      ChildProcess::Start({"sh", "-c", "exit 3"});
  REQUIRE(three.ok());
  status = three->WaitFor(seconds(10));
  REQUIRE(status.ok());
  CHECK(status->exited);
  CHECK(status->code == 3);
  CHECK(status->ToString() == "exit code 3");

  absl::StatusOr<ChildProcess> sleeper = ChildProcess::Start({"sleep", "300"});
  REQUIRE(sleeper.ok());
  CHECK(sleeper->WaitFor(milliseconds(50)).status().code() ==
        absl::StatusCode::kDeadlineExceeded);
  CHECK(sleeper->Running());
  ExitStatus killed = sleeper->Terminate(seconds(5));
  CHECK_FALSE(killed.exited);
  CHECK(killed.signal == SIGTERM);
  CHECK_FALSE(ProcessAlive(sleeper->pid()));

  CHECK(ChildProcess::Start({"no-such-binary-vouch"}).status().code() ==
        absl::StatusCode::kNotFound);
  CHECK(ChildProcess::Start({}).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("ChildProcess applies env, working dir and output redirection",
          "[harness]") {
  absl::StatusOr<TempDir> dir = TempDir::Create("proc-");
  REQUIRE(dir.ok());
  setenv("VOUCH_HARNESS_TEST_UNSET", "should-not-be-seen", 1);
  ProcessOptions options;
  options.env = {{"VOUCH_HARNESS_TEST_VAR", "hello"}};
  options.unset_env = {"VOUCH_HARNESS_TEST_UNSET"};
  options.working_dir = dir->path();
  options.stdout_path = dir->Join("out.txt");
  options.stderr_path = dir->Join("err.txt");
  absl::StatusOr<ChildProcess> child = ChildProcess::Start(
      {"sh", "-c",
       "echo \"$VOUCH_HARNESS_TEST_VAR ${VOUCH_HARNESS_TEST_UNSET:-unset} "
       "$(pwd)\"; echo oops >&2"},
      options);
  unsetenv("VOUCH_HARNESS_TEST_UNSET");
  REQUIRE(child.ok());
  absl::StatusOr<ExitStatus> status = child->WaitFor(seconds(10));
  REQUIRE(status.ok());
  CHECK(status->Success());
  CHECK(ReadAll(dir->Join("out.txt")) ==
        absl::StrCat("hello unset ", dir->path(), "\n"));
  CHECK(ReadAll(dir->Join("err.txt")) == "oops\n");
}

TEST_CASE("ChildProcess::Terminate kills the whole process group",
          "[harness]") {
  const std::string marker = Marker("group");
  // The forked subshell keeps sh's command line, so it carries the marker.
  absl::StatusOr<ChildProcess> child = ChildProcess::Start(
      {"sh", "-c", absl::StrCat("(sleep 300; : ", marker, ") & wait")});
  REQUIRE(child.ok());
  const auto deadline = std::chrono::steady_clock::now() + seconds(5);
  while (ProcessesWithArgContaining(marker).size() < 2 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  // At least sh and its subshell (a third may be a fork on its way to exec).
  REQUIRE(ProcessesWithArgContaining(marker).size() >= 2);
  child->Terminate(seconds(5));
  CHECK(WaitUntilNoneContain(marker, seconds(5)));
}

TEST_CASE("ChildProcess dies with the thread that started it (PDEATHSIG)",
          "[harness]") {
  std::optional<ChildProcess> child;
  std::thread starter([&child] {
    absl::StatusOr<ChildProcess> started =
        ChildProcess::Start({"sleep", "300"});
    if (started.ok()) child.emplace(*std::move(started));
  });
  starter.join();  // The starting thread exits: the kernel SIGKILLs sleep.
  REQUIRE(child.has_value());
  absl::StatusOr<ExitStatus> status = child->WaitFor(seconds(10));
  REQUIRE(status.ok());
  CHECK_FALSE(status->exited);
  CHECK(status->signal == SIGKILL);
}

TEST_CASE("ChildProcess run_as switches user", "[harness]") {
  if (geteuid() != 0 || !LookupUser("nobody").ok()) {
    WARN("needs root and user nobody; skipped");
    return;
  }
  absl::StatusOr<UserInfo> nobody = LookupUser("nobody");
  ProcessOptions options;
  options.run_as = "nobody";
  options.working_dir = "/";
  absl::StatusOr<std::string> out =
      RunCommand({"sh", "-c", "id -u; id -g; echo $USER"}, options);
  REQUIRE(out.ok());
  CHECK(*out == absl::StrFormat("%d\n%d\nnobody\n", nobody->uid, nobody->gid));
}

TEST_CASE("RunCommand returns output or a status with the output tail",
          "[harness]") {
  absl::StatusOr<std::string> out =
      RunCommand({"sh", "-c", "echo out; echo err >&2"});
  REQUIRE(out.ok());
  CHECK(absl::StrContains(*out, "out\n"));
  CHECK(absl::StrContains(*out, "err\n"));

  absl::StatusOr<std::string> failed =
      RunCommand({"sh", "-c", "echo boom-output; exit 7"});
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() == absl::StatusCode::kInternal);
  CHECK(absl::StrContains(failed.status().message(), "boom-output"));
  CHECK(absl::StrContains(failed.status().message(), "exit code 7"));

  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::string> slow = RunCommand(
      {"sh", "-c", "echo before-timeout; sleep 30"}, {}, milliseconds(300));
  CHECK(std::chrono::steady_clock::now() - start < seconds(10));
  REQUIRE_FALSE(slow.ok());
  CHECK(slow.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(absl::StrContains(slow.status().message(), "before-timeout"));

  CHECK(RunCommand({"no-such-binary-vouch"}).status().code() ==
        absl::StatusCode::kNotFound);
}

TEST_CASE("RunCommand returns at exit and reaps background children",
          "[harness]") {
  const std::string marker = Marker("bg");
  const auto start = std::chrono::steady_clock::now();
  // The background subshell holds the output pipe open.
  absl::StatusOr<std::string> out = RunCommand(
      {"sh", "-c", absl::StrCat("(sleep 300; : ", marker, ") & echo started")});
  CHECK(std::chrono::steady_clock::now() - start < seconds(10));
  REQUIRE(out.ok());
  CHECK(*out == "started\n");
  CHECK(WaitUntilNoneContain(marker, seconds(5)));
}

TEST_CASE("ProcessAlive and ProcessesWithArgContaining", "[harness]") {
  CHECK(ProcessAlive(getpid()));
  CHECK_FALSE(ProcessAlive(0));
  CHECK_FALSE(ProcessAlive(-1));
  const std::string marker = Marker("scan");
  absl::StatusOr<ChildProcess> child =
      ChildProcess::Start({"sh", "-c", "sleep 300", marker});
  REQUIRE(child.ok());
  // sh may briefly fork a copy of itself (marker included) before exec'ing
  // sleep, so the child must be among the matches, not the only one.
  const std::vector<pid_t> found = ProcessesWithArgContaining(marker);
  CHECK(std::find(found.begin(), found.end(), child->pid()) != found.end());
  CHECK(ProcessesWithArgContaining("").empty());
  child->Terminate();
  CHECK(ProcessesWithArgContaining(marker).empty());
}

// An echo server on 127.0.0.1 for the proxy's self-test: one thread per
// connection, until the listener is closed.
class EchoServer {
 public:
  EchoServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        const int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::thread([c] {
          char buf[256];
          ssize_t n;
          while ((n = read(c, buf, sizeof(buf))) > 0) {
            if (write(c, buf, static_cast<size_t>(n)) != n) break;
          }
          close(c);
        }).detach();
      }
    });
  }
  ~EchoServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

int ConnectTo(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  return fd;
}

// What arrives on `fd` within `ms`: the bytes, "" for nothing yet, or
// "<closed>" at end of stream or reset.
std::string ReadWithin(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, ms) <= 0) return "";
  char buf[256];
  const ssize_t n = read(fd, buf, sizeof(buf));
  if (n <= 0) return "<closed>";
  return std::string(buf, static_cast<size_t>(n));
}

TEST_CASE("TcpProxy passes, blackholes, resets and heals", "[harness]") {
  EchoServer echo;
  absl::StatusOr<std::unique_ptr<TcpProxy>> proxy =
      TcpProxy::Start("127.0.0.1", echo.port());
  REQUIRE(proxy.ok());
  TcpProxy& p = **proxy;
  CHECK(p.port() != echo.port());

  const int a = ConnectTo(p.port());
  REQUIRE(write(a, "ping", 4) == 4);
  CHECK(ReadWithin(a, 5000) == "ping");

  // Blackholed: the open connection and a new one stay open, bytes vanish.
  p.Blackhole();
  const int b = ConnectTo(p.port());
  REQUIRE(write(a, "lost", 4) == 4);
  REQUIRE(write(b, "lost", 4) == 4);
  CHECK(ReadWithin(a, 500) == "");
  CHECK(ReadWithin(b, 100) == "");
  CHECK(p.open_connections() == 2);

  // Healed: connections that lost bytes are reset, new ones pass.
  p.Heal();
  CHECK(ReadWithin(a, 5000) == "<closed>");
  CHECK(ReadWithin(b, 5000) == "<closed>");
  const int c = ConnectTo(p.port());
  REQUIRE(write(c, "back", 4) == 4);
  CHECK(ReadWithin(c, 5000) == "back");

  // ResetAll: every open connection ends now.
  p.ResetAll();
  CHECK(ReadWithin(c, 5000) == "<closed>");
  CHECK(p.open_connections() == 0);
  CHECK(p.accepted() == 3);
  close(a);
  close(b);
  close(c);
}

TEST_CASE("PgCluster serves SQL and Stop leaves no process", "[pg]") {
  absl::StatusOr<std::unique_ptr<PgCluster>> started = PgCluster::Start();
  REQUIRE(started.ok());
  std::unique_ptr<PgCluster> pg = *std::move(started);
  const std::string dir = pg->dir();
  CHECK(pg->port() > 0);
  CHECK(absl::StrContains(pg->conninfo(), pg->socket_dir()));
  CHECK(absl::StrContains(pg->tcp_conninfo(), "host=127.0.0.1"));

  ProcessOptions as_server;
  as_server.run_as = pg->os_user();
  as_server.working_dir = dir;
  absl::StatusOr<std::string> ready =
      RunCommand({pg->bin_dir() + "/pg_isready", "-h", pg->socket_dir(), "-p",
                  std::to_string(pg->port())},
                 as_server);
  REQUIRE(ready.ok());
  CHECK(absl::StrContains(*ready, "accepting connections"));

  absl::StatusOr<std::string> one = pg->Psql("select 1");
  REQUIRE(one.ok());
  CHECK(*one == "1\n");
  absl::StatusOr<std::string> tcp =
      RunCommand({pg->bin_dir() + "/psql", "-X", "-A", "-t", "-d",
                  pg->tcp_conninfo(), "-c", "select current_user"},
                 as_server);
  REQUIRE(tcp.ok());
  CHECK(*tcp == "vouch\n");
  absl::StatusOr<std::string> bad = pg->Psql("select no_such_column");
  CHECK_FALSE(bad.ok());

  absl::StatusOr<pid_t> postmaster = pg->postmaster_pid();
  REQUIRE(postmaster.ok());
  CHECK(ProcessAlive(*postmaster));
  CHECK_FALSE(ProcessesWithArgContaining(dir).empty());

  REQUIRE(pg->Stop().ok());
  CHECK_FALSE(ProcessAlive(*postmaster));
  CHECK(ProcessesWithArgContaining(dir).empty());
  CHECK(pg->Stop().ok());  // Idempotent.
  pg.reset();
  CHECK_FALSE(Exists(dir));
}

TEST_CASE("PgCluster destructor alone cleans up", "[pg]") {
  std::string dir;
  pid_t postmaster = -1;
  {
    absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
    REQUIRE(pg.ok());
    dir = (*pg)->dir();
    absl::StatusOr<pid_t> pid = (*pg)->postmaster_pid();
    REQUIRE(pid.ok());
    postmaster = *pid;
  }
  CHECK_FALSE(ProcessAlive(postmaster));
  CHECK(ProcessesWithArgContaining(dir).empty());
  CHECK_FALSE(Exists(dir));
}

TEST_CASE("Swtpm serves TPM commands and has a verifiable EK chain", "[tpm]") {
  absl::StatusOr<std::unique_ptr<Swtpm>> started = Swtpm::Start();
  REQUIRE(started.ok());
  std::unique_ptr<Swtpm> tpm = *std::move(started);
  const std::string dir = tpm->dir();
  const pid_t pid = tpm->pid();
  CHECK(ProcessAlive(pid));
  CHECK(tpm->tcti() == absl::StrCat("swtpm:host=127.0.0.1,port=", tpm->port()));

  absl::StatusOr<std::string> random =
      RunCommand({"tpm2_getrandom", "--hex", "8", "-T", tpm->tcti()});
  REQUIRE(random.ok());
  CHECK(random->size() == 16);

  absl::StatusOr<std::string> pcrs =
      RunCommand({"tpm2_getcap", "-T", tpm->tcti(), "pcrs"});
  REQUIRE(pcrs.ok());
  CHECK(absl::StrContains(*pcrs, "sha1: [ 0,"));
  CHECK(absl::StrContains(*pcrs, "sha256: [ 0,"));
  CHECK(absl::StrContains(*pcrs, "sha384: [ ]"));

  REQUIRE(tpm->ca_cert_paths().size() == 2);
  CHECK(tpm->ca_cert_paths()[0] == tpm->ca_cert_path());
  CHECK(tpm->ca_cert_paths()[1] == tpm->root_ca_cert_path());
  CHECK(tpm->ek_cert_nv_index() == Swtpm::kRsaEkCertIndex);
  CHECK(tpm->ek_handle() == Swtpm::kRsaEkHandle);

  absl::StatusOr<TempDir> work = TempDir::Create("ekcheck-");
  REQUIRE(work.ok());
  for (uint32_t index : {Swtpm::kRsaEkCertIndex, Swtpm::kEccP384EkCertIndex}) {
    const std::string der = work->Join(absl::StrFormat("%08x.der", index));
    const std::string pem = work->Join(absl::StrFormat("%08x.pem", index));
    INFO("NV index " << absl::StrFormat("0x%08x", index));
    absl::StatusOr<std::string> read =
        RunCommand({"tpm2_nvread", "-T", tpm->tcti(), "-C", "o", "-o", der,
                    absl::StrFormat("0x%08x", index)});
    REQUIRE(read.ok());
    absl::StatusOr<std::string> converted = RunCommand(
        {"openssl", "x509", "-inform", "DER", "-in", der, "-out", pem});
    REQUIRE(converted.ok());
    absl::StatusOr<std::string> verified =
        RunCommand({"openssl", "verify", "-CAfile", tpm->root_ca_cert_path(),
                    "-untrusted", tpm->ca_cert_path(), pem});
    INFO(verified.status().ToString());
    REQUIRE(verified.ok());
    CHECK(absl::StrContains(*verified, ": OK"));
    // Without the intermediate the chain must not verify.
    CHECK_FALSE(RunCommand({"openssl", "verify", "-CAfile",
                            tpm->root_ca_cert_path(), pem})
                    .ok());
    if (index == tpm->ek_cert_nv_index()) {
      CHECK(ReadAll(der) == ReadAll(tpm->ek_cert_path()));
    }
  }

  tpm.reset();
  CHECK_FALSE(ProcessAlive(pid));
  CHECK(ProcessesWithArgContaining(dir).empty());
  CHECK_FALSE(Exists(dir));
}

TEST_CASE("Swtpm with ecc_ek selects the P-384 EK", "[tpm]") {
  SwtpmOptions options;
  options.ecc_ek = true;
  options.pcr_banks = "sha256";
  options.create_platform_cert = false;
  absl::StatusOr<std::unique_ptr<Swtpm>> tpm = Swtpm::Start(options);
  REQUIRE(tpm.ok());
  CHECK((*tpm)->ek_cert_nv_index() == Swtpm::kEccP384EkCertIndex);
  CHECK((*tpm)->ek_handle() == Swtpm::kEccP384EkHandle);
  absl::StatusOr<std::string> text =
      RunCommand({"openssl", "x509", "-inform", "DER", "-in",
                  (*tpm)->ek_cert_path(), "-noout", "-text"});
  REQUIRE(text.ok());
  CHECK(absl::StrContains(*text, "secp384r1"));
  absl::StatusOr<std::string> handles =
      RunCommand({"tpm2_getcap", "-T", (*tpm)->tcti(), "handles-persistent"});
  REQUIRE(handles.ok());
  CHECK(absl::StrContains(*handles, "0x81010016"));
  absl::StatusOr<std::string> pcrs =
      RunCommand({"tpm2_getcap", "-T", (*tpm)->tcti(), "pcrs"});
  REQUIRE(pcrs.ok());
  CHECK(absl::StrContains(*pcrs, "sha1: [ ]"));
  CHECK(absl::StrContains(*pcrs, "sha256: [ 0,"));
}

}  // namespace
}  // namespace vouch::testing
