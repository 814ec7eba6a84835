// File: authz/world.h
// What the authorization matrix and the abuse tests share: a real
// vouch-registrar and vouch-verifier on a throw-away PostgreSQL with mTLS
// from the SDK's CA code, client certificates of any tenant and role (also
// expired ones, and ones of a foreign CA), and real vouch-agents on swtpm,
// each in its own tenant with its own runtime policy, enrolled and
// attesting. Test-only; not thread-safe.
#ifndef VOUCH_TESTS_AUTHZ_WORLD_H_
#define VOUCH_TESTS_AUTHZ_WORLD_H_

#include <grpcpp/grpcpp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "e2e/e2e_util.h"
#include "sdk/ca.h"
#include "sdk/channel.h"

namespace vouch::authz {

// A client certificate directory (ca.pem, client.pem, client.key) for
// `role` in `tenant`, signed by the CA in `ca_dir`; `expired` issues one
// whose validity ended a day ago.
inline std::string IssueClient(const std::string& ca_dir,
                               const std::string& out_dir,
                               const std::string& name,
                               const std::string& tenant, Role role,
                               bool expired = false) {
  sdk::IssueOptions o;
  o.ca_dir = ca_dir;
  o.kind = sdk::CertKind::kClient;
  o.name = name;
  o.tenant = tenant;
  o.roles = {role};
  o.out_dir = out_dir;
  if (expired) {
    o.not_before = absl::Now() - absl::Hours(48);
    o.validity = absl::Hours(24);
  }
  REQUIRE(sdk::IssueCertificate(o).ok());
  return out_dir;
}

// A channel to `address` presenting the certificate in `tls_dir` (stem
// "client" or "agent"); `stem` empty: no client certificate at all.
inline std::shared_ptr<grpc::Channel> ChannelTo(const std::string& address,
                                                const std::string& ca_file,
                                                const std::string& tls_dir,
                                                const std::string& stem) {
  if (stem.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Slurp(ca_file);
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args);
  }
  sdk::ClientOptions o;
  o.server = address;
  o.ca_file = ca_file;
  o.cert_file = tls_dir + "/" + stem + ".pem";
  o.key_file = tls_dir + "/" + stem + ".key";
  absl::StatusOr<std::shared_ptr<grpc::Channel>> ch = sdk::CreateChannel(o);
  REQUIRE(ch.ok());
  return *ch;
}

// vouch-verifier for these tests: 1 s sweeps, 1 s minimum interval, and
// the caller's extra flags (e.g. [grpc] limits).
class VerifierProcess : public ServerProcess {
 public:
  VerifierProcess(const TempDir& dir, const PgCluster& pg, const Tls& tls,
                  std::vector<std::string> extra = {})
      : ServerProcess(dir, pg, tls, VOUCH_VERIFIER_BIN, "verifier", "v1",
                      Args(std::move(extra))) {}

 private:
  static std::vector<std::string> Args(std::vector<std::string> extra) {
    std::vector<std::string> a = {"--verifier-id",
                                  "v1",
                                  "--verifier-sweep-interval",
                                  "1s",
                                  "--verifier-timeout-intervals",
                                  "3",
                                  "--verifier-min-interval",
                                  "1s",
                                  "--verifier-workers",
                                  "2"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

// One real vouch-agent on its own swtpm, in `tenant`, with an IMA log of
// three known files and a runtime policy learned from them.
struct AgentOnTpm {
  std::string tenant;
  std::string id;
  std::string dir;       // its state, logs and IMA list
  std::string cert_dir;  // agent.pem, agent.key, ca.pem
  std::string ima_log;
  std::string policy_file;
  std::unique_ptr<Swtpm> tpm;
  std::optional<ChildProcess> process;

  std::string log() const { return dir + "/agent.log"; }

  // Verdicts this agent logged so far.
  int Verdicts() const { return static_cast<int>(VerdictsInLog(log()).size()); }
};

// The whole system: PostgreSQL, registrar, verifier, a CA with a server
// certificate, and agents added on demand.
// Writes a new Ed25519 pool log key (PEM) to `path`; returns `path`.
inline std::string WriteLogKey(const std::string& path) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  REQUIRE(key != nullptr);
  FILE* f = fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  const int ok =
      PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  fclose(f);
  EVP_PKEY_free(key);
  REQUIRE(ok == 1);
  return path;
}

class World {
 public:
  // `tpms` swtpms for the agents AddAgent starts (the registrar trusts
  // their EK CAs).
  explicit World(int tpms, std::vector<std::string> verifier_flags = {})
      : dir_(NewDir()), tls_(dir_.path()) {
    absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
    REQUIRE(pg.ok());
    pg_ = *std::move(pg);
    std::vector<const Swtpm*> started;
    for (int i = 0; i < tpms; ++i) {
      absl::StatusOr<std::unique_ptr<Swtpm>> tpm = Swtpm::Start();
      REQUIRE(tpm.ok());
      tpms_.push_back(*std::move(tpm));
      started.push_back(tpms_.back().get());
    }
    registrar_.emplace(dir_, *pg_, tls_, CaDir(dir_, "ek-ca", started));
    // A pool log key: the transparency-log calls answer.
    verifier_flags.insert(
        verifier_flags.end(),
        {"--translog-key", WriteLogKey(dir_.Join("log.key"))});
    verifier_.emplace(dir_, *pg_, tls_, std::move(verifier_flags));
  }

  // A client certificate directory of this world's CA.
  std::string Client(const std::string& name, const std::string& tenant,
                     Role role, bool expired = false) {
    return IssueClient(tls_.ca, dir_.Join("clients-" + name), name, tenant,
                       role, expired);
  }

  // Starts swtpm and a vouch-agent in `tenant`, adds its policy and enrolls
  // it (via vouchctl as `admin_dir`, an admin of the tenant) with `policy`.
  AgentOnTpm& AddAgent(const std::string& tenant, const std::string& admin_dir,
                       const std::string& policy,
                       const std::string& interval = "5s") {
    agents_.push_back(std::make_unique<AgentOnTpm>());
    AgentOnTpm& a = *agents_.back();
    a.tenant = tenant;
    a.dir = dir_.Join(absl::StrCat("agent-", agents_.size()));
    mkdir(a.dir.c_str(), 0700);
    mkdir((a.dir + "/state").c_str(), 0700);
    REQUIRE(agents_.size() <= tpms_.size());
    a.tpm = std::move(tpms_[agents_.size() - 1]);
    testing::RunResult id = testing::RunCapture(
        {VOUCH_AGENT_BIN, "--print-agent-id", "--agent-tcti", a.tpm->tcti(),
         "--agent-state-dir", a.dir + "/state"});
    INFO(id.err);
    REQUIRE(id.status.Success());
    a.id = std::string(absl::StripAsciiWhitespace(id.out));
    sdk::IssueOptions o;
    o.ca_dir = tls_.ca;
    o.kind = sdk::CertKind::kAgent;
    o.name = a.id;
    o.tenant = tenant;
    o.out_dir = a.dir + "/tls";
    REQUIRE(sdk::IssueCertificate(o).ok());
    a.cert_dir = o.out_dir;
    a.ima_log = a.dir + "/ima.log";
    std::ofstream(a.ima_log).flush();
    std::vector<std::string> append = {
        VOUCHCTL_BIN,  "dev",   "ima-append", "--tcti",
        a.tpm->tcti(), "--log", a.ima_log};
    for (int i = 0; i < 3; ++i) {
      const std::string f = a.dir + absl::StrCat("/good", i);
      std::ofstream(f) << "good file " << i << " of " << tenant;
      append.push_back(f);
    }
    testing::RunResult r = testing::RunCapture(append);
    INFO(r.err);
    REQUIRE(r.status.Success());
    a.policy_file = a.dir + "/policy.json";
    r = testing::RunCapture({VOUCHCTL_BIN, "policy", "create", "--from-ima-log",
                             a.ima_log, "-o", a.policy_file});
    INFO(r.err);
    REQUIRE(r.status.Success());
    r = Ctl(admin_dir, {"policies", "add", policy, "-f", a.policy_file});
    INFO(r.err);
    REQUIRE(r.status.Success());
    StartAgent(a);
    r = Ctl(admin_dir, {"agents", "enroll", a.id, "--runtime-policy", policy,
                        "--interval", interval});
    INFO(r.err);
    REQUIRE(r.status.Success());
    return a;
  }

  void StartAgent(AgentOnTpm& a) {
    AgentProcessOptions o;
    o.tcti = a.tpm->tcti();
    o.state_dir = a.dir + "/state";
    o.registrars = registrar_->address();
    o.verifiers = verifier_->address();
    o.ima_log = a.ima_log;
    o.tls_dir = a.cert_dir;
    o.log = a.log();
    o.extra = agent_flags;
    a.process.emplace(StartAgentProcess(o));
  }

  // Flags added to every agent StartAgent starts from now on.
  std::vector<std::string> agent_flags;

  // vouchctl against the verifier as the client in `tls_dir`.
  testing::RunResult Ctl(const std::string& tls_dir,
                         std::vector<std::string> args) {
    std::vector<std::string> argv = {
        VOUCHCTL_BIN, "--server", verifier_->address(), "--tls-dir", tls_dir};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCapture(argv);
  }

  // The agent's state as `vouchctl agents get` shows it to `tls_dir`.
  std::string State(const std::string& tls_dir, const AgentOnTpm& a) {
    testing::RunResult r = Ctl(tls_dir, {"-o", "json", "agents", "get", a.id});
    if (!r.status.Success()) return "";
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_object() ? j.value("state", "") : "";
  }

  const TempDir& dir() const { return dir_; }
  const Tls& tls() const { return tls_; }
  std::string ca_file() const { return tls_.ca + "/ca.pem"; }
  PgCluster& pg() { return *pg_; }
  Registrar& registrar() { return *registrar_; }
  VerifierProcess& verifier() { return *verifier_; }

 private:
  static TempDir NewDir() {
    absl::StatusOr<TempDir> d = TempDir::Create("authz");
    REQUIRE(d.ok());
    return *std::move(d);
  }
  TempDir dir_;
  Tls tls_;
  std::unique_ptr<PgCluster> pg_;
  std::vector<std::unique_ptr<Swtpm>> tpms_;
  std::optional<Registrar> registrar_;
  std::optional<VerifierProcess> verifier_;
  std::vector<std::unique_ptr<AgentOnTpm>> agents_;
};

}  // namespace vouch::authz

#endif  // VOUCH_TESTS_AUTHZ_WORLD_H_
