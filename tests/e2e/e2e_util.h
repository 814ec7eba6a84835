// File: e2e/e2e_util.h
// What the end-to-end tests share: a throw-away TLS world from the SDK's CA
// code, polling (Eventually, Within), a vouch-registrar process on a fixed
// port (kept across restarts), starting a vouch-agent (StartAgentProcess) and
// reading the verdicts it logged (VerdictsInLog). Test-only; not
// thread-safe.
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

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
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

// The value of `key=` in a logfmt line ("" when absent; values without
// spaces only, which is all the tests read).
inline std::string LogField(absl::string_view line, absl::string_view key) {
  const std::string k = absl::StrCat(" ", key, "=");
  const size_t at = line.find(k);
  if (at == absl::string_view::npos) return "";
  absl::string_view v = line.substr(at + k.size());
  return std::string(v.substr(0, v.find(' ')));
}

// How often `text` occurs in the file at `path` (counted by line).
inline int LinesWith(const std::string& path, absl::string_view text) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(Slurp(path), '\n')) {
    if (absl::StrContains(line, text)) ++n;
  }
  return n;
}

// One verdict line of an agent's log.
struct LoggedVerdict {
  absl::Time at;  // InfinitePast when the line has no timestamp.
  std::string attestation_id;
  std::string state;     // "pass", "fail"
  std::string verifier;  // the verifier's address
};

// Every verdict a vouch-agent logged to `path`, in order.
inline std::vector<LoggedVerdict> VerdictsInLog(const std::string& path) {
  std::vector<LoggedVerdict> out;
  for (absl::string_view line : absl::StrSplit(Slurp(path), '\n')) {
    if (!absl::StrContains(line, "msg=verdict")) continue;
    LoggedVerdict v;
    std::string err;
    const std::string ts = absl::StartsWith(line, "ts=")
                               ? std::string(line.substr(3, 24))
                               : std::string();
    if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E3SZ", ts, &v.at, &err)) {
      v.at = absl::InfinitePast();
    }
    v.attestation_id = LogField(line, "attestation_id");
    v.state = LogField(line, "state");
    v.verifier = LogField(line, "verifier");
    out.push_back(std::move(v));
  }
  return out;
}

// The attestation_id of every verdict a vouch-agent logged to `path`.
inline std::vector<std::string> VerdictIdsInLog(const std::string& path) {
  std::vector<std::string> ids;
  for (LoggedVerdict& v : VerdictsInLog(path)) {
    if (!v.attestation_id.empty()) ids.push_back(std::move(v.attestation_id));
  }
  return ids;
}

#ifdef VOUCH_AGENT_BIN
// How a test starts a vouch-agent (StartAgentProcess).
struct AgentProcessOptions {
  std::string tcti;
  std::string state_dir;
  std::string registrars;  // host:port[,...]
  std::string verifiers;   // host:port[,...]
  std::string ima_log;
  std::string boot_log;            // "" = none
  std::string tls_dir;             // ca.pem, agent.pem, agent.key
  std::string log;                 // its stdout and stderr (appended)
  std::string reply_timeout;       // "" = the agent's default
  std::vector<std::string> extra;  // more flags
};

// Starts a vouch-agent (TPM closed between pushes, quick retries, info
// logging) and waits until it logs "agent ready to attest" once more.
inline ChildProcess StartAgentProcess(const AgentProcessOptions& o) {
  std::vector<std::string> argv = {VOUCH_AGENT_BIN,
                                   "--agent-tcti",
                                   o.tcti,
                                   "--agent-state-dir",
                                   o.state_dir,
                                   "--agent-registrars",
                                   o.registrars,
                                   "--agent-verifiers",
                                   o.verifiers,
                                   "--agent-ima-log",
                                   o.ima_log,
                                   "--agent-boot-log",
                                   o.boot_log,
                                   "--agent-keep-tpm-open",
                                   "false",
                                   "--agent-retry-initial",
                                   "500ms",
                                   "--agent-stream-retry-max",
                                   "2s",
                                   "--tls-ca-file",
                                   o.tls_dir + "/ca.pem",
                                   "--tls-cert-file",
                                   o.tls_dir + "/agent.pem",
                                   "--tls-key-file",
                                   o.tls_dir + "/agent.key",
                                   "--log-level",
                                   "info"};
  if (!o.reply_timeout.empty()) {
    argv.insert(argv.end(), {"--agent-reply-timeout", o.reply_timeout});
  }
  argv.insert(argv.end(), o.extra.begin(), o.extra.end());
  const int ready = LinesWith(o.log, "agent ready to attest");
  ProcessOptions opts;
  opts.stdout_path = opts.stderr_path = o.log;
  absl::StatusOr<ChildProcess> p = ChildProcess::Start(argv, opts);
  REQUIRE(p.ok());
  INFO(Slurp(o.log));
  REQUIRE(Eventually([&] {
    return LinesWith(o.log, "agent ready to attest") > ready || !p->Running();
  }));
  REQUIRE(p->Running());
  return *std::move(p);
}
#endif

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
