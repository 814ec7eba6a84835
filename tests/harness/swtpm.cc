#include "harness/swtpm.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "harness/ports.h"
#include "harness/process.h"

namespace vouch::testing {
namespace {

constexpr int kStartAttempts = 3;
constexpr std::chrono::seconds kSetupTimeout(120);
constexpr std::chrono::milliseconds kStopGrace(2000);

absl::Status WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(
        absl::StrCat("mkdir ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// A connected TCP socket to 127.0.0.1:port, or -1.
int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  timeval timeout{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  return fd;
}

// True if the control channel at `port` answers CMD_GET_CAPABILITY (0x01,
// big-endian; swtpm_ioctls(3)) with its 8-byte reply. This proves that swtpm,
// not some other process that grabbed the port, is listening.
bool ControlChannelAnswers(int port) {
  int fd = ConnectLoopback(port);
  if (fd < 0) return false;
  const unsigned char request[4] = {0, 0, 0, 1};
  bool ok = send(fd, request, sizeof(request), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(sizeof(request));
  unsigned char reply[8];
  size_t got = 0;
  while (ok && got < sizeof(reply)) {
    ssize_t n = recv(fd, reply + got, sizeof(reply) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ok = false;
    if (n > 0) got += static_cast<size_t>(n);
  }
  close(fd);
  return ok;
}

bool ServerPortAccepts(int port) {
  int fd = ConnectLoopback(port);
  if (fd < 0) return false;
  close(fd);
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Swtpm>> Swtpm::Start(
    const SwtpmOptions& options) {
  absl::StatusOr<TempDir> dir = TempDir::Create("swtpm-");
  if (!dir.ok()) return dir.status();
  std::unique_ptr<Swtpm> tpm(new Swtpm(*std::move(dir), options));
  absl::Status setup = tpm->Setup();
  if (!setup.ok()) return setup;
  absl::Status last_error;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    last_error = tpm->StartServer();
    if (last_error.ok()) return tpm;
  }
  return last_error;
}

absl::Status Swtpm::Setup() {
  for (const char* sub : {"state", "home", "xdg", "tmp", "certs"}) {
    absl::Status made = MakeDir(dir_.Join(sub));
    if (!made.ok()) return made;
  }
  const std::string ca = dir_.Join("ca");
  // swtpm_localca creates the root CA and the signing (intermediate) CA in
  // statedir on first use.
  absl::Status written = WriteFile(
      dir_.Join("swtpm-localca.conf"),
      absl::StrCat("statedir = ", ca, "\n", "signingkey = ", ca,
                   "/signkey.pem\n", "issuercert = ", ca, "/issuercert.pem\n",
                   "certserial = ", ca, "/certserial\n"));
  if (!written.ok()) return written;
  written = WriteFile(dir_.Join("swtpm-localca.options"),
                      "--platform-manufacturer Vouch\n"
                      "--platform-version 2.1\n"
                      "--platform-model test\n");
  if (!written.ok()) return written;
  written = WriteFile(
      dir_.Join("swtpm_setup.conf"),
      absl::StrCat(
          "create_certs_tool = /usr/bin/swtpm_localca\n",
          "create_certs_tool_config = ", dir_.Join("swtpm-localca.conf"), "\n",
          "create_certs_tool_options = ", dir_.Join("swtpm-localca.options"),
          "\n", "active_pcr_banks = ", options_.pcr_banks, "\n"));
  if (!written.ok()) return written;

  // Runs as the current user, root included (no --runas needed). Nothing is
  // written outside dir(): HOME, XDG_CONFIG_HOME and TMPDIR point inside.
  std::vector<std::string> argv = {
      "swtpm_setup",
      "--tpm2",
      "--tpmstate",
      state_dir(),
      "--create-ek-cert",
      "--config",
      dir_.Join("swtpm_setup.conf"),
      "--pcr-banks",
      options_.pcr_banks,
      "--write-ek-cert-files",
      dir_.Join("certs"),
      "--logfile",
      dir_.Join("setup.log"),
      "--overwrite",
  };
  if (options_.create_platform_cert) argv.push_back("--create-platform-cert");
  ProcessOptions process_options;
  process_options.working_dir = dir_.path();
  process_options.env = {{"HOME", dir_.Join("home")},
                         {"XDG_CONFIG_HOME", dir_.Join("xdg")},
                         {"TMPDIR", dir_.Join("tmp")}};
  absl::StatusOr<std::string> setup =
      RunCommand(argv, process_options, kSetupTimeout);
  if (!setup.ok()) {
    return absl::Status(
        setup.status().code(),
        absl::StrCat(setup.status().message(), "\nsetup log tail:\n",
                     FileTail(dir_.Join("setup.log"))));
  }
  return absl::OkStatus();
}

absl::Status Swtpm::Restart() {
  RunResult down = RunCapture({"tpm2_shutdown", "-c", "-T", tcti()});
  if (!down.status.Success()) {
    return absl::InternalError(absl::StrCat(
        "tpm2_shutdown: ", down.status.ToString(), ": ", down.err));
  }
  Stop();
  return StartServer(/*same_port=*/true);
}

absl::Status Swtpm::StartServer(bool same_port) {
  if (!same_port) {
    absl::StatusOr<int> port = PickFreePortPair();
    if (!port.ok()) return port.status();
    port_ = *port;
  }
  ProcessOptions process_options;
  process_options.working_dir = dir_.path();
  process_options.stdout_path = dir_.Join("swtpm.out");
  process_options.stderr_path = dir_.Join("swtpm.out");
  process_options.env = {{"HOME", dir_.Join("home")},
                         {"TMPDIR", dir_.Join("tmp")}};
  process_options.kill_on_parent_death = true;
  absl::StatusOr<ChildProcess> child = ChildProcess::Start(
      {"swtpm", "socket", "--tpm2", "--tpmstate",
       absl::StrCat("dir=", state_dir()), "--server",
       absl::StrCat("type=tcp,bindaddr=127.0.0.1,port=", port_), "--ctrl",
       absl::StrCat("type=tcp,bindaddr=127.0.0.1,port=", port_ + 1), "--flags",
       "not-need-init,startup-clear", "--log",
       absl::StrCat("file=", log_path(), ",level=1")},
      process_options);
  if (!child.ok()) return child.status();
  process_.emplace(*std::move(child));

  const auto deadline =
      std::chrono::steady_clock::now() + options_.ready_timeout;
  std::string failure;
  for (;;) {
    if (!process_->Running()) {
      failure = absl::StrCat("swtpm exited early (",
                             process_->Terminate().ToString(), ")");
      break;
    }
    if (ControlChannelAnswers(port_ + 1) && ServerPortAccepts(port_)) {
      return absl::OkStatus();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      failure = absl::StrCat("swtpm not answering after ",
                             options_.ready_timeout.count(), " ms");
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Stop();
  return absl::UnavailableError(
      absl::StrCat(failure, " on ports ", port_, "/", port_ + 1,
                   "\nswtpm output tail:\n", FileTail(dir_.Join("swtpm.out")),
                   "\nswtpm log tail:\n", FileTail(log_path())));
}

void Swtpm::Stop() {
  if (process_.has_value()) {
    process_->Terminate(kStopGrace);
    process_.reset();
  }
}

Swtpm::~Swtpm() { Stop(); }

std::string Swtpm::tcti() const {
  return absl::StrCat("swtpm:host=127.0.0.1,port=", port_);
}

pid_t Swtpm::pid() const { return process_.has_value() ? process_->pid() : -1; }

uint32_t Swtpm::ek_cert_nv_index() const {
  return options_.ecc_ek ? kEccP384EkCertIndex : kRsaEkCertIndex;
}

uint32_t Swtpm::ek_handle() const {
  return options_.ecc_ek ? kEccP384EkHandle : kRsaEkHandle;
}

std::string Swtpm::ek_cert_path() const {
  return dir_.Join(options_.ecc_ek ? "certs/ek-secp384r1.crt"
                                   : "certs/ek-rsa2048.crt");
}

}  // namespace vouch::testing
