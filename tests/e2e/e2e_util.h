// File: e2e/e2e_util.h
// What the end-to-end tests share: a throw-away TLS world from the SDK's CA
// code, polling (Eventually, Within), and a vouch-registrar process on a fixed
// port (kept across restarts). Test-only; not thread-safe.
#ifndef VOUCH_TESTS_E2E_E2E_UTIL_H_
#define VOUCH_TESTS_E2E_E2E_UTIL_H_

#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/principal.h"
#include "harness/pg_cluster.h"
#include "harness/ports.h"
#include "harness/process.h"
#include "harness/swtpm.h"
#include "harness/temp_dir.h"
#include "sdk/ca.h"

namespace vouch {

using testing::ChildProcess;
using testing::PgCluster;
using testing::ProcessOptions;
using testing::Swtpm;
using testing::TempDir;

inline std::string Slurp(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFileUpTo(path, 64 << 20);
  return s.ok() ? *s : "";
}

// Polls until `pred` holds or 60 s pass (generous: a shared CI machine).
template <typename Pred>
inline bool Eventually(Pred pred) {
  for (int i = 0; i < 600; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return pred();
}

// Seconds on the steady clock since `t`.
inline double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t)
      .count();
}

// Polls (every 50 ms) until `pred` holds or `seconds` pass.
template <typename Pred>
inline bool Within(double seconds, Pred pred) {
  const auto end =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

// The flags of a test pool's verifier `id`: 1 s sweeps, timeout after 2
// intervals, 1 s min_interval, 2 workers; then `extra`.
inline std::vector<std::string> PoolVerifierArgs(
    const std::string& id, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--verifier-id",
                                   id,
                                   "--verifier-sweep-interval",
                                   "1s",
                                   "--verifier-timeout-intervals",
                                   "2",
                                   "--verifier-min-interval",
                                   "1s",
                                   "--verifier-workers",
                                   "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// A throw-away TLS world: CA, a 127.0.0.1 server certificate, an admin
// client, a viewer client, and agent certificates on demand.
struct Tls {
  std::string ca;
  explicit Tls(const std::string& dir) : ca(dir + "/ca") {
    sdk::CaInitOptions init;
    init.dir = ca;
    REQUIRE(sdk::InitCa(init).ok());
    sdk::IssueOptions server;
    server.ca_dir = ca;
    server.kind = sdk::CertKind::kServer;
    server.name = "localhost";
    server.sans = {"127.0.0.1"};
    REQUIRE(sdk::IssueCertificate(server).ok());
    Client("admin", Role::kAdmin);
    Client("viewer", Role::kViewer);
  }
  void Client(const std::string& name, Role role) {
    sdk::IssueOptions o;
    o.ca_dir = ca;
    o.kind = sdk::CertKind::kClient;
    o.name = name;
    o.roles = {role};
    REQUIRE(sdk::IssueCertificate(o).ok());
  }
  std::string Agent(const std::string& id) {
    sdk::IssueOptions o;
    o.ca_dir = ca;
    o.kind = sdk::CertKind::kAgent;
    o.name = id;
    const std::string dir = ca + "/agents/" + id;
    struct stat st;
    if (stat((dir + "/agent.key").c_str(), &st) != 0) {
      REQUIRE(sdk::IssueCertificate(o).ok());
    }
    return dir;
  }
  std::string server_dir() const { return ca + "/servers/localhost"; }
  std::string client_dir(const std::string& n) const {
    return ca + "/clients/" + n;
  }
};

// A Vouch server process (registrar or verifier) on a fixed port, kept
// across restarts, with mTLS from `tls` and the database in its environment.
class ServerProcess {
 public:
  // `role` is the config section ("registrar", "verifier"); `name` names its
  // log and port files; `args` are the role's own flags.
  // `env` is added to its environment (test hooks).
  ServerProcess(const TempDir& dir, const PgCluster& pg, const Tls& tls,
                const char* binary, const std::string& role,
                const std::string& name, std::vector<std::string> args,
                std::vector<std::pair<std::string, std::string>> env = {})
      : dir_(dir.path()),
        name_(name),
        database_url_(pg.conninfo()),
        env_(std::move(env)) {
    absl::StatusOr<int> port = testing::PickFreePort();
    REQUIRE(port.ok());
    port_ = *port;
    argv_ = {binary,
             "--" + role + "-listen",
             address(),
             "--" + role + "-port-file",
             PortFile(),
             "--tls-ca-file",
             tls.ca + "/ca.pem",
             "--tls-cert-file",
             tls.server_dir() + "/server.pem",
             "--tls-key-file",
             tls.server_dir() + "/server.key",
             "--log-level",
             "info"};
    argv_.insert(argv_.end(), args.begin(), args.end());
    Start();
  }
  void Start() {
    std::remove((PortFile()).c_str());
    ProcessOptions opts;
    opts.stdout_path = opts.stderr_path = log();
    // In the environment, not argv: PgCluster::Stop kills every process
    // whose command line names the cluster's directory.
    opts.env = env_;
    opts.env.emplace_back("VOUCH_DATABASE_URL", database_url_);
    absl::StatusOr<ChildProcess> p = ChildProcess::Start(argv_, opts);
    REQUIRE(p.ok());
    process_.emplace(*std::move(p));
    REQUIRE(Eventually(
        [&] { return !Slurp(PortFile()).empty() || !process_->Running(); }));
    INFO(Slurp(log()));
    REQUIRE(process_->Running());
  }
  void Kill() {
    ::kill(process_->pid(), SIGKILL);
    process_->Terminate();
  }
  void Signal(int sig) { ::kill(process_->pid(), sig); }
  void Terminate() { process_->Terminate(); }
  const std::string& id() const { return name_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  std::string log() const {
    return absl::StrCat(dir_, "/", name_, "-", port_, ".log");
  }
  std::string PortFile() const {
    return absl::StrCat(dir_, "/", name_, "-", port_, ".port");
  }
  ChildProcess& process() { return *process_; }

 private:
  std::string dir_;
  std::string name_;
  std::string database_url_;
  std::vector<std::pair<std::string, std::string>> env_;
  int port_ = 0;
  std::vector<std::string> argv_;
  std::optional<ChildProcess> process_;
};

#ifdef VOUCH_REGISTRAR_BIN
// A vouch-registrar process trusting the EK CAs in `ek_ca_dir`.
class Registrar : public ServerProcess {
 public:
  // `extra`: more registrar flags.
  Registrar(const TempDir& dir, const PgCluster& pg, const Tls& tls,
            const std::string& ek_ca_dir, const std::string& ttl = "2m",
            int per_minute = 1000, std::vector<std::string> extra = {})
      : ServerProcess(dir, pg, tls, VOUCH_REGISTRAR_BIN, "registrar",
                      "registrar",
                      Args(ek_ca_dir, ttl, per_minute, std::move(extra))) {}

 private:
  static std::vector<std::string> Args(const std::string& ek_ca_dir,
                                       const std::string& ttl, int per_minute,
                                       std::vector<std::string> extra) {
    std::vector<std::string> args = {"--registrar-ek-ca-dir",
                                     ek_ca_dir,
                                     "--registrar-challenge-ttl",
                                     ttl,
                                     "--registrar-max-register-per-minute",
                                     absl::StrCat(per_minute)};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
};
#endif

// A registrar EK CA directory trusting the CAs of these swtpms.
inline std::string CaDir(const TempDir& dir, const std::string& name,
                         const std::vector<const Swtpm*>& tpms) {
  const std::string d = dir.Join(name);
  mkdir(d.c_str(), 0700);
  int i = 0;
  for (const Swtpm* tpm : tpms) {
    for (const std::string& f : tpm->ca_cert_paths()) {
      std::ofstream(absl::StrCat(d, "/ca", i++, ".pem")) << Slurp(f);
    }
  }
  return d;
}

}  // namespace vouch

#endif  // VOUCH_TESTS_E2E_E2E_UTIL_H_
