// [e2e][onboarding][registrar] Zero-touch onboarding with the real
// binaries: swtpm agents that hold only the servers' CA certificate and a
// join token register over server-authenticated TLS, receive their client
// certificate from the registrar after credential activation, and are
// enrolled by a matching enrollment rule with no operator action; tokens
// pick (and bound) the tenant; used-up, expired, revoked and unknown tokens
// are refused by name; an issued certificate names one agent only; short
// certificates are renewed with fresh TPM proofs while the stream passes,
// and a deleted registration renews no more.
#include <grpcpp/grpcpp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "e2e/e2e_util.h"
#include "sdk/channel.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch {
namespace {

TempDir NewDir() {
  absl::StatusOr<TempDir> d = TempDir::Create("onboard");
  REQUIRE(d.ok());
  return *std::move(d);
}

// The servers' CA, a separate agent-issuing CA held by the registrar (the
// servers trust both), a registrar that onboards, one verifier, a policy
// "web" learned from a known-good IMA log, and admins of tenants
// "default" and "b".
class World {
 public:
  // `map_ek_cas`: the registrar maps the EK CAs of swtpms 1 and 2 to
  // tenant "b" (registrar.ek_ca_tenants); swtpm 0's CA is not mapped.
  explicit World(const std::string& cert_lifetime = "1h",
                 bool map_ek_cas = false)
      : dir_(NewDir()), tls_(dir_.path()) {
    // What an onboarding agent holds: the CA certificate of the servers.
    agent_trust_ = dir_.Join("agent-trust");
    mkdir(agent_trust_.c_str(), 0700);
    std::ofstream(agent_trust_ + "/ca.pem") << Slurp(tls_.ca + "/ca.pem");
    sdk::CaInitOptions init;
    init.dir = dir_.Join("agent-ca");
    init.common_name = "Vouch agent CA";
    REQUIRE(sdk::InitCa(init).ok());
    // The servers' client trust: both CAs (docs/registrar.md).
    std::ofstream(tls_.ca + "/ca.pem", std::ios::app)
        << Slurp(init.dir + "/ca.pem");
    sdk::IssueOptions b_admin;
    b_admin.ca_dir = tls_.ca;
    b_admin.kind = sdk::CertKind::kClient;
    b_admin.name = "b-admin";
    b_admin.tenant = "b";
    b_admin.roles = {Role::kAdmin};
    REQUIRE(sdk::IssueCertificate(b_admin).ok());

    absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
    REQUIRE(pg.ok());
    pg_ = *std::move(pg);
    for (int i = 0; i < 3; ++i) {
      absl::StatusOr<std::unique_ptr<Swtpm>> tpm = Swtpm::Start();
      REQUIRE(tpm.ok());
      tpms_.push_back(*std::move(tpm));
    }
    std::vector<std::string> registrar_args = {
        "--registrar-agent-ca-dir", init.dir, "--registrar-agent-cert-lifetime",
        cert_lifetime};
    if (map_ek_cas) {
      std::vector<std::string> mapping;
      for (int i : {1, 2}) {
        // The swtpm's local CA: its issuing certificate and root.
        const std::string file =
            dir_.Join(absl::StrCat("ek-ca-of-", i, ".pem"));
        std::ofstream out(file);
        for (const std::string& f : tpms_[i]->ca_cert_paths()) out << Slurp(f);
        mapping.push_back(file + "=b");
      }
      registrar_args.insert(
          registrar_args.end(),
          {"--registrar-ek-ca-tenants", absl::StrJoin(mapping, ",")});
    }
    registrar_.emplace(
        dir_, *pg_, tls_,
        CaDir(dir_, "ek-ca", {tpms_[0].get(), tpms_[1].get(), tpms_[2].get()}),
        "2m", 1000, registrar_args);
    verifier_.emplace(dir_, *pg_, tls_, VOUCH_VERIFIER_BIN, "verifier", "v1",
                      PoolVerifierArgs("v1", {}));
    ima_log_ = dir_.Join("ima.log");
    const std::string good = dir_.Join("good");
    std::ofstream(good) << "good file";
    std::ofstream(ima_log_).flush();
    testing::RunResult appended =
        testing::RunCapture({VOUCHCTL_BIN, "dev", "ima-append", "--tcti",
                             tpms_[0]->tcti(), "--log", ima_log_, good});
    INFO(appended.err);
    REQUIRE(appended.status.Success());
    const std::string policy = dir_.Join("policy.json");
    testing::RunResult learned =
        testing::RunCapture({VOUCHCTL_BIN, "policy", "create", "--from-ima-log",
                             ima_log_, "-o", policy});
    INFO(learned.err);
    REQUIRE(learned.status.Success());
    testing::RunResult added =
        Verifier({"policies", "add", "web", "-f", policy});
    INFO(added.err);
    REQUIRE(added.status.Success());
  }

  testing::RunResult Ctl(const std::string& server, const std::string& client,
                         std::vector<std::string> args) {
    std::vector<std::string> argv = {VOUCHCTL_BIN, "--server", server,
                                     "--tls-dir", tls_.client_dir(client)};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCapture(argv);
  }
  testing::RunResult Registrar(std::vector<std::string> args,
                               const std::string& client = "admin") {
    return Ctl(registrar_->address(), client, std::move(args));
  }
  testing::RunResult Verifier(std::vector<std::string> args,
                              const std::string& client = "admin") {
    return Ctl(verifier_->address(), client, std::move(args));
  }
  // vouchctl with both addresses (commands that use both servers).
  testing::RunResult Both(std::vector<std::string> args,
                          const std::string& client = "admin") {
    std::vector<std::string> argv = {VOUCHCTL_BIN,           "--server",
                                     verifier_->address(),   "--registrar",
                                     registrar_->address(),  "--tls-dir",
                                     tls_.client_dir(client)};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCapture(argv);
  }
  // The agent ids `vouchctl agents list` prints for `args`.
  std::vector<std::string> Listed(std::vector<std::string> args,
                                  const std::string& client = "admin") {
    args.insert(args.begin(), {"-o", "json", "agents", "list"});
    testing::RunResult r = Verifier(args, client);
    INFO(r.err);
    REQUIRE(r.status.Success());
    std::vector<std::string> ids;
    const nlohmann::json listed = nlohmann::json::parse(r.out);
    for (const auto& a : listed["agents"]) {
      ids.push_back(a["agent_id"]);
    }
    return ids;
  }
  // A new join token (printed once, on stdout).
  std::string Token(std::vector<std::string> args,
                    const std::string& client = "admin") {
    args.insert(args.begin(), {"tokens", "create"});
    testing::RunResult r = Registrar(args, client);
    INFO(r.err);
    REQUIRE(r.status.Success());
    return std::string(absl::StripAsciiWhitespace(r.out));
  }
  std::string State(const std::string& agent_id) {
    testing::RunResult r = Verifier({"agents", "get", agent_id, "-o", "json"});
    if (!r.status.Success()) return "";
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_object() ? j.value("state", "") : "";
  }
  std::string AgentId(int tpm) {
    testing::RunResult id = testing::RunCapture(
        {VOUCH_AGENT_BIN, "--print-agent-id", "--agent-tcti",
         tpms_[tpm]->tcti(), "--agent-state-dir", StateDir(tpm)});
    INFO(id.err);
    REQUIRE(id.status.Success());
    return std::string(absl::StripAsciiWhitespace(id.out));
  }
  std::string StateDir(int tpm) {
    const std::string d = dir_.Join(absl::StrCat("state", tpm));
    mkdir(d.c_str(), 0700);
    return d;
  }
  std::string Log(int tpm) { return dir_.Join(absl::StrCat("agent", tpm)); }
  std::string VerifierLog() { return Slurp(verifier_->log()); }

  // Starts an onboarding agent on swtpm `tpm`; returns once it attests.
  ChildProcess StartAgent(int tpm, const std::string& token,
                          const std::vector<std::string>& labels) {
    return StartAgentProcess(AgentOptions(tpm, token, labels));
  }
  // Starts one that is expected not to get in; returns once it logged a
  // refusal (or after 60 s).
  std::string RefusedJoin(int tpm, const std::string& token) {
    const std::string log = dir_.Join(absl::StrCat("refused-", ++refusals_));
    AgentProcessOptions o = AgentOptions(tpm, token, {"role=web"});
    o.log = log;
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
                                     "--tls-ca-file",
                                     agent_trust_ + "/ca.pem"};
    argv.insert(argv.end(), o.extra.begin(), o.extra.end());
    ProcessOptions opts;
    opts.stdout_path = opts.stderr_path = log;
    absl::StatusOr<ChildProcess> p = ChildProcess::Start(argv, opts);
    REQUIRE(p.ok());
    Eventually([&] {
      return absl::StrContains(Slurp(log), "registration refused") ||
             !p->Running();
    });
    p->Terminate();
    return Slurp(log);
  }

  TempDir dir_;
  Tls tls_;
  std::string agent_trust_;
  std::unique_ptr<PgCluster> pg_;
  std::vector<std::unique_ptr<Swtpm>> tpms_;
  std::optional<vouch::Registrar> registrar_;
  std::optional<ServerProcess> verifier_;
  std::string ima_log_;
  int refusals_ = 0;

 private:
  AgentProcessOptions AgentOptions(int tpm, const std::string& token,
                                   const std::vector<std::string>& labels) {
    AgentProcessOptions o;
    o.tcti = tpms_[tpm]->tcti();
    o.state_dir = StateDir(tpm);
    o.registrars = registrar_->address();
    o.verifiers = verifier_->address();
    o.ima_log = ima_log_;
    o.tls_dir = agent_trust_;  // ca.pem only: no agent.pem, no agent.key
    o.log = Log(tpm);
    o.reply_timeout = "3s";
    o.extra = {"--agent-onboard", "true"};
    if (!token.empty())
      o.extra.insert(o.extra.end(), {"--agent-join-token", token});
    if (!labels.empty()) {
      o.extra.insert(o.extra.end(),
                     {"--agent-labels", absl::StrJoin(labels, ",")});
    }
    return o;
  }
};

bool FileExists(const std::string& path) {
  return access(path.c_str(), F_OK) == 0;
}

// The vouch:// URI SAN of the first certificate in a PEM file.
std::string CertificateUri(const std::string& path) {
  const std::string pem = Slurp(path);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return "";
  std::string uri;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type != GEN_URI) continue;
    const ASN1_STRING* s = n->d.uniformResourceIdentifier;
    uri.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
               static_cast<size_t>(ASN1_STRING_length(s)));
  }
  GENERAL_NAMES_free(names);
  X509_free(cert);
  return uri;
}

TEST_CASE(
    "onboarding: a fresh agent with a join token reaches pass by a rule, "
    "without one it waits registered, and tokens bind tenants and are "
    "refused by name",
    "[e2e][onboarding][registrar]") {
  World w;
  testing::RunResult rule =
      w.Registrar({"rules", "add", "web", "--selector", "role=web",
                   "--runtime-policy", "web", "--interval", "2s"});
  INFO(rule.err);
  REQUIRE(rule.status.Success());
  testing::RunResult rules = w.Registrar({"-o", "json", "rules", "list"});
  REQUIRE(rules.status.Success());
  nlohmann::json listed = nlohmann::json::parse(rules.out);
  REQUIRE(listed["rules"].size() == 1);
  CHECK(listed["rules"][0]["selector"]["role"] == "web");

  // Tenant "default": a single-use token; the agent gets its certificate
  // and is enrolled by the rule, and passes, with no operator action.
  const std::string token_a = w.Token({"--uses", "1"});
  CHECK(absl::StartsWith(token_a, "vjt_"));
  const std::string id0 = w.AgentId(0);
  ChildProcess agent0 = w.StartAgent(0, token_a, {"role=web", "zone=a"});
  REQUIRE(Within(60, [&] { return w.State(id0) == "pass"; }));
  CHECK(CertificateUri(w.StateDir(0) + "/agent.pem") ==
        absl::StrCat("vouch://default/agent/", id0));
  testing::RunResult got = w.Registrar({"-o", "json", "registrar", "get", id0});
  REQUIRE(got.status.Success());
  nlohmann::json reg0 = nlohmann::json::parse(got.out);
  CHECK(reg0["tenant"] == "default");
  CHECK(reg0["active"] == true);
  testing::RunResult enrolled =
      w.Verifier({"-o", "json", "agents", "get", id0});
  REQUIRE(enrolled.status.Success());
  nlohmann::json status0 = nlohmann::json::parse(enrolled.out);
  CHECK(status0["runtime_policy"] == "web");
  CHECK(status0["interval_seconds"] == 2);
  CHECK(LinesWith(w.registrar_->log(), "agent enrolled by rule") == 1);
  // The token was used once; listing shows it, never the token itself.
  testing::RunResult tokens = w.Registrar({"-o", "json", "tokens", "list"});
  REQUIRE(tokens.status.Success());
  CHECK(!absl::StrContains(tokens.out, token_a));
  nlohmann::json tl = nlohmann::json::parse(tokens.out);
  REQUIRE(tl["tokens"].size() == 1);
  CHECK(tl["tokens"][0]["used"] == 1);

  // Tenant "b" (its own admin, its own token, no rule there): the agent
  // joins b, never default, and waits registered, not enrolled.
  const std::string token_b = w.Token({"--uses", "5"}, "b-admin");
  const std::string id1 = w.AgentId(1);
  ChildProcess agent1 = w.StartAgent(1, token_b, {"role=web"});
  CHECK(CertificateUri(w.StateDir(1) + "/agent.pem") ==
        absl::StrCat("vouch://b/agent/", id1));
  testing::RunResult in_b =
      w.Registrar({"-o", "json", "registrar", "get", id1}, "b-admin");
  REQUIRE(in_b.status.Success());
  CHECK(nlohmann::json::parse(in_b.out)["active"] == true);
  CHECK(w.Registrar({"registrar", "get", id1}).status.code == 1);  // not A's
  CHECK(w.State(id1).empty());  // not enrolled anywhere
  std::this_thread::sleep_for(std::chrono::seconds(2));
  CHECK(w.State(id1).empty());
  // A tenant admin manages only its own tenant's tokens.
  testing::RunResult cross =
      w.Registrar({"tokens", "list", "--tenant", "default"}, "b-admin");
  CHECK(cross.status.code == 1);

  // Refusals, each by name: used up, expired, revoked, unknown.
  CHECK(absl::StrContains(w.RefusedJoin(2, token_a),
                          "join_token: the token is used up"));
  const std::string short_lived = w.Token({"--expires", "1s"});
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK(absl::StrContains(w.RefusedJoin(2, short_lived),
                          "join_token: the token expired"));
  const std::string revoked = w.Token({"--uses", "3"});
  testing::RunResult list = w.Registrar({"-o", "json", "tokens", "list"});
  REQUIRE(list.status.Success());
  std::string revoked_id;
  const nlohmann::json all = nlohmann::json::parse(list.out);
  for (const auto& t : all["tokens"]) {
    if (t["uses"] == 3) revoked_id = t["id"];
  }
  REQUIRE(!revoked_id.empty());
  REQUIRE(w.Registrar({"tokens", "delete", revoked_id}).status.Success());
  CHECK(absl::StrContains(w.RefusedJoin(2, revoked),
                          "join_token: the token was revoked"));
  CHECK(absl::StrContains(w.RefusedJoin(2, "vjt_not-a-token"),
                          "join_token: unknown token"));
  CHECK(w.State(w.AgentId(2)).empty());

  // An issued certificate is one agent's: with agent 0's certificate,
  // registering or activating another agent_id is refused.
  sdk::ClientOptions copts;
  copts.server = w.registrar_->address();
  copts.ca_file = w.agent_trust_ + "/ca.pem";
  copts.cert_file = w.StateDir(0) + "/agent.pem";
  copts.key_file = w.StateDir(0) + "/agent.key";
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      sdk::CreateChannel(copts);
  REQUIRE(channel.ok());
  auto stub = v1::Registrar::NewStub(*channel);
  {
    v1::RegisterRequest req;
    req.set_agent_id(id1);
    v1::RegisterResponse resp;
    grpc::ClientContext ctx;
    const grpc::Status st = stub->Register(&ctx, req, &resp);
    CHECK(st.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK(absl::StrContains(st.error_message(), "not the identity"));
  }
  {
    v1::ActivateRequest req;
    req.set_agent_id(id1);
    req.set_hmac(std::string(32, 'x'));
    v1::ActivateResponse resp;
    grpc::ClientContext ctx;
    const grpc::Status st = stub->Activate(&ctx, req, &resp);
    CHECK(st.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  }
  // And it is no operator certificate.
  {
    v1::ListJoinTokensRequest req;
    v1::ListJoinTokensResponse resp;
    grpc::ClientContext ctx;
    CHECK(stub->ListJoinTokens(&ctx, req, &resp).error_code() ==
          grpc::StatusCode::PERMISSION_DENIED);
  }
  // Without a certificate, nothing but a join is served.
  sdk::ClientOptions anon = copts;
  anon.no_client_cert = true;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> anon_channel =
      sdk::CreateChannel(anon);
  REQUIRE(anon_channel.ok());
  {
    auto anon_stub = v1::Registrar::NewStub(*anon_channel);
    v1::ListRegisteredAgentsRequest req;
    v1::ListRegisteredAgentsResponse resp;
    grpc::ClientContext ctx;
    CHECK(anon_stub->ListRegisteredAgents(&ctx, req, &resp).error_code() ==
          grpc::StatusCode::UNAUTHENTICATED);
  }
  CHECK(w.State(id0) == "pass");
  agent0.Terminate();
  agent1.Terminate();
}

TEST_CASE(
    "onboarding: 30 s certificates are renewed twice while the stream "
    "passes, and a deleted registration renews no more",
    "[e2e][onboarding][registrar]") {
  World w("30s");
  REQUIRE(w.Registrar({"rules", "add", "all", "--selector", "fleet=yes",
                       "--runtime-policy", "web", "--interval", "2s"})
              .status.Success());
  const std::string id = w.AgentId(0);
  ChildProcess agent = w.StartAgent(0, w.Token({}), {"fleet=yes"});
  REQUIRE(Within(60, [&] { return w.State(id) == "pass"; }));
  const std::string first = Slurp(w.StateDir(0) + "/agent.pem");
  // Renewals at two thirds of each 30 s lifetime: ~20 s and ~40 s.
  REQUIRE(Within(60, [&] {
    return LinesWith(w.Log(0), "agent certificate renewed") >= 2;
  }));
  INFO(Slurp(w.Log(0)));
  CHECK(Slurp(w.StateDir(0) + "/agent.pem") != first);
  CHECK(LinesWith(w.Log(0), "agent certificate renewal failed") == 0);
  CHECK(w.State(id) == "pass");
  for (const LoggedVerdict& v : VerdictsInLog(w.Log(0))) {
    CHECK(v.state == "pass");
  }
  CHECK(VerdictsInLog(w.Log(0)).size() >= 10);

  // Unenrolled (its stream ends) and deleted: the next renewal is refused.
  // The agent learns of the removal on its open stream (the verifier's
  // notice) or, when that stream had just ended, from its next Hello.
  REQUIRE(w.Verifier({"agents", "remove", id}).status.Success());
  const bool told = Within(30, [&] {
    const std::string log = Slurp(w.Log(0));
    return absl::StrContains(log, "the agent was unenrolled") ||
           absl::StrContains(log, "agent is not enrolled");
  });
  INFO("agent log: " << Slurp(w.Log(0)));
  INFO("verifier log: " << w.VerifierLog());
  REQUIRE(told);
  testing::RunResult removed = w.Registrar({"registrar", "remove", id});
  INFO(removed.err);
  REQUIRE(removed.status.Success());
  REQUIRE(Within(30, [&] {
    return LinesWith(w.Log(0), "agent certificate renewal failed") >= 1;
  }));
  CHECK(absl::StrContains(Slurp(w.Log(0)),
                          "no active registration of this TPM to renew"));
  agent.Terminate();
}

TEST_CASE(
    "fleet: agents are listed, updated and deleted by label selector within "
    "the caller's tenant, and prune removes registrations not seen",
    "[e2e][onboarding][fleet]") {
  World w;
  for (const char* role : {"web", "db"}) {
    REQUIRE(w.Registrar({"rules", "add", role, "--selector",
                         absl::StrCat("role=", role), "--runtime-policy", "web",
                         "--interval", "2s"})
                .status.Success());
  }
  const std::string token = w.Token({"--uses", "2"});
  const std::string web = w.AgentId(0);
  const std::string db = w.AgentId(1);
  ChildProcess web_agent = w.StartAgent(0, token, {"role=web", "zone=a"});
  ChildProcess db_agent = w.StartAgent(1, token, {"role=db", "zone=a"});
  REQUIRE(Within(
      60, [&] { return w.State(web) == "pass" && w.State(db) == "pass"; }));
  // An operator label wins over the agent's own on the same key.
  REQUIRE(
      w.Registrar({"agents", "label", db, "tier=backend"}).status.Success());

  // agents list -l: the selector grammar against the registrar's labels.
  using Ids = std::vector<std::string>;
  CHECK(w.Listed({"-l", "role=web"}) == Ids{web});
  CHECK(w.Listed({"-l", "role==db"}) == Ids{db});
  CHECK(w.Listed({"-l", "role!=web"}) == Ids{db});
  CHECK(w.Listed({"-l", "role in (web, db),zone=a"}).size() == 2);
  CHECK(w.Listed({"-l", "role notin (web)"}) == Ids{db});
  CHECK(w.Listed({"-l", "tier"}) == Ids{db});
  CHECK(w.Listed({"-l", "!tier"}) == Ids{web});
  CHECK(w.Listed({"-l", "zone=b"}).empty());
  // A capped list pages with the selector: the first match only.
  CHECK(w.Listed({"-l", "zone=a", "--limit", "1"}).size() == 1);
  testing::RunResult bad = w.Verifier({"agents", "list", "-l", "role=w b"});
  CHECK(bad.status.code == 1);
  CHECK(absl::StrContains(bad.err, "label_selector: expected ',' or the end"));
  // Another tenant's admin sees, changes and deletes none of them.
  CHECK(w.Listed({"-l", "role=web"}, "b-admin").empty());
  testing::RunResult b_update = w.Verifier(
      {"agents", "update", "-l", "zone=a", "--interval", "30s"}, "b-admin");
  CHECK(b_update.status.Success());
  CHECK(absl::StrContains(b_update.err, "no agent matched"));
  CHECK(w.Verifier({"agents", "update", web, "--interval", "30s"}, "b-admin")
            .status.code == 1);

  // One transaction: a missing agent among the ids changes nothing.
  testing::RunResult partial = w.Verifier(
      {"agents", "update", web, "no-such-agent", "--interval", "30s"});
  CHECK(partial.status.code == 1);
  CHECK(absl::StrContains(partial.err, "no-such-agent"));
  testing::RunResult got = w.Verifier({"-o", "json", "agents", "get", web});
  REQUIRE(got.status.Success());
  CHECK(nlohmann::json::parse(got.out)["interval_seconds"] == 2);
  // A policy of the wrong kind, or none, is refused.
  CHECK(
      w.Verifier({"agents", "update", "-l", "role=web", "--boot-policy", "web"})
          .status.code == 1);
  CHECK(w.Verifier({"agents", "update", "-l", "role=web"}).status.code == 1);
  // A blank selector is not "every agent".
  CHECK(w.Verifier({"agents", "update", "-l", " ", "--interval", "9s"})
            .status.code == 1);
  CHECK(w.Verifier({"agents", "delete", "-l", " ", "--yes"}).status.code == 2);

  // By selector: the web agents move to policy web2 and 3 s; the running
  // stream is fenced and taken over with the new enrollment, and passes.
  const std::string policy = w.dir_.Join("policy.json");
  REQUIRE(
      w.Verifier({"policies", "add", "web2", "-f", policy}).status.Success());
  testing::RunResult updated =
      w.Verifier({"-o", "json", "agents", "update", "-l", "role=web",
                  "--runtime-policy", "web2", "--interval", "3s"});
  INFO(updated.err);
  REQUIRE(updated.status.Success());
  nlohmann::json u = nlohmann::json::parse(updated.out);
  REQUIRE(u["agents"].size() == 1);
  CHECK(u["agents"][0]["agent_id"] == web);
  CHECK(u["agents"][0]["runtime_policy"] == "web2");
  CHECK(u["agents"][0]["interval_seconds"] == 3);
  CHECK(u["agents"][0]["state"] == "pending");
  REQUIRE(Within(60, [&] { return w.State(web) == "pass"; }));
  got = w.Verifier({"-o", "json", "agents", "get", db});
  REQUIRE(got.status.Success());
  CHECK(nlohmann::json::parse(got.out)["runtime_policy"] == "web");
  CHECK(nlohmann::json::parse(got.out)["interval_seconds"] == 2);

  // delete --selector lists first; without a terminal it needs --yes.
  testing::RunResult ask = w.Verifier({"agents", "delete", "-l", "role=db"});
  CHECK(ask.status.code == 2);
  CHECK(absl::StrContains(ask.err, db));
  CHECK(absl::StrContains(ask.err, "--yes"));
  CHECK(w.State(db) == "pass");
  testing::RunResult deleted =
      w.Verifier({"agents", "delete", "-l", "role=db", "--yes"});
  INFO(deleted.err);
  REQUIRE(deleted.status.Success());
  CHECK(absl::StrContains(deleted.out, "agent/" + db + " deleted"));
  CHECK(w.State(db).empty());
  CHECK(w.State(web) == "pass");
  db_agent.Terminate();

  // prune: the db agent's registration, last seen 40 days ago (aged in the
  // database), goes; the web agent, attesting now, stays.
  REQUIRE(w.pg_
              ->Psql(absl::StrCat(
                  "UPDATE registrations SET registered_at = now() - interval "
                  "'40 days', activated_at = now() - interval '40 days' WHERE "
                  "agent_id = '",
                  db, "'"))
              .ok());
  testing::RunResult dry =
      w.Both({"-o", "json", "prune", "--unseen-after", "30d", "--dry-run"});
  INFO(dry.err);
  REQUIRE(dry.status.Success());
  nlohmann::json plan = nlohmann::json::parse(dry.out);
  REQUIRE(plan["pruned"].size() == 1);
  CHECK(plan["pruned"][0]["agent_id"] == db);
  CHECK(plan["pruned"][0]["reason"] == "unseen");
  CHECK(w.Registrar({"registrar", "get", db}).status.Success());
  CHECK(w.Both({"prune", "--unseen-after", "30d"}).status.code == 2);  // no tty
  testing::RunResult pruned = w.Both(
      {"prune", "--unseen-after", "30d", "--unactivated-after", "7d", "--yes"});
  INFO(pruned.err);
  REQUIRE(pruned.status.Success());
  CHECK(w.Registrar({"registrar", "get", db}).status.code == 1);
  CHECK(w.Registrar({"registrar", "get", web}).status.Success());
  CHECK(w.State(web) == "pass");
  CHECK(w.Both({"prune", "--unseen-after", "soon"}).status.code == 2);
  web_agent.Terminate();

  // vouchctl version asks both servers (any authenticated principal).
  testing::RunResult version = w.Both({"version"});
  INFO(version.err);
  REQUIRE(version.status.Success());
  CHECK(absl::StartsWith(version.out, "vouchctl "));
  CHECK(absl::StrContains(version.out, "vouch-verifier "));
  CHECK(absl::StrContains(version.out, "vouch-registrar "));
  testing::RunResult vj = w.Both({"-o", "json", "version"}, "b-admin");
  REQUIRE(vj.status.Success());
  nlohmann::json versions = nlohmann::json::parse(vj.out);
  CHECK(versions["vouch-verifier"]["version"] ==
        versions["vouchctl"]["version"]);
  CHECK(versions["vouch-registrar"]["commit"] ==
        versions["vouchctl"]["commit"]);
}

TEST_CASE(
    "onboarding: an EK certificate of a mapped CA joins its tenant without a "
    "token, a token wins over the mapping, an unmapped one is refused",
    "[e2e][onboarding][registrar]") {
  World w("1h", /*map_ek_cas=*/true);
  // swtpm 2: its CA maps to tenant b; no token needed.
  const std::string mapped = w.AgentId(2);
  ChildProcess agent2 = w.StartAgent(2, "", {"role=web"});
  REQUIRE(Within(60, [&] { return FileExists(w.StateDir(2) + "/agent.pem"); }));
  CHECK(CertificateUri(w.StateDir(2) + "/agent.pem") ==
        absl::StrCat("vouch://b/agent/", mapped));
  testing::RunResult in_b =
      w.Registrar({"-o", "json", "registrar", "get", mapped}, "b-admin");
  INFO(in_b.err);
  REQUIRE(in_b.status.Success());
  CHECK(nlohmann::json::parse(in_b.out)["tenant"] == "b");
  CHECK(nlohmann::json::parse(in_b.out)["active"] == true);
  CHECK(w.Registrar({"registrar", "get", mapped}).status.code == 1);

  // swtpm 1: mapped to b too, but it brings a token of "default": the
  // operator's token decides.
  const std::string with_token = w.AgentId(1);
  ChildProcess agent1 = w.StartAgent(1, w.Token({}), {"role=web"});
  REQUIRE(Within(60, [&] { return FileExists(w.StateDir(1) + "/agent.pem"); }));
  CHECK(CertificateUri(w.StateDir(1) + "/agent.pem") ==
        absl::StrCat("vouch://default/agent/", with_token));

  // swtpm 0: its CA is trusted (ek_ca_dir) but maps to no tenant.
  const std::string refused = w.RefusedJoin(0, "");
  CHECK(absl::StrContains(refused, "maps to no tenant"));
  CHECK(!FileExists(w.StateDir(0) + "/agent.pem"));
  agent1.Terminate();
  agent2.Terminate();
}

}  // namespace
}  // namespace vouch
