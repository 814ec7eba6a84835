// Issue #6 end to end: a real vouch-registrar process on a real PostgreSQL,
// real swtpm TPMs, real mTLS from `vouchctl ca`'s library, and either a real
// vouch-agent process or a test client driving EsysTpm directly (for the
// negative cases an honest agent never produces).
#include "agent/registration.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <tss2/tss2_mu.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "core/tpm/credential.h"
#include "core/tpm/tpm_wire.h"
#include "e2e/e2e_util.h"
#include "e2e/registrar_client.h"
#include "harness/pg_cluster.h"
#include "harness/ports.h"
#include "harness/process.h"
#include "harness/swtpm.h"
#include "harness/temp_dir.h"
#include "sdk/ca.h"
#include "sdk/channel.h"
#include "store/migrate.h"
#include "store/pg_connection.h"
#include "tpm/esys_tpm.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch {
namespace {

using testing::ChildProcess;
using testing::PgCluster;
using testing::ProcessOptions;
using testing::Swtpm;
using testing::TempDir;

// A temp dir, a PostgreSQL cluster and `tpms` swtpms.
struct World {
  TempDir dir;
  std::unique_ptr<PgCluster> pg;
  std::vector<std::unique_ptr<Swtpm>> tpms;
  World(const std::string& prefix, int n) : dir(NewDir(prefix)) {
    absl::StatusOr<std::unique_ptr<PgCluster>> started = PgCluster::Start();
    REQUIRE(started.ok());
    pg = *std::move(started);
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<std::unique_ptr<Swtpm>> tpm = Swtpm::Start();
      REQUIRE(tpm.ok());
      tpms.push_back(*std::move(tpm));
    }
  }
  static TempDir NewDir(const std::string& prefix) {
    absl::StatusOr<TempDir> d = TempDir::Create(prefix);
    REQUIRE(d.ok());
    return *std::move(d);
  }
};

testing::RunResult Vouchctl(const Tls& tls, const Registrar& r,
                            std::vector<std::string> args) {
  std::vector<std::string> argv = {VOUCHCTL_BIN,
                                   "--server",
                                   r.address(),
                                   "--tls-dir",
                                   tls.client_dir("admin"),
                                   "-o",
                                   "json"};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::RunCapture(argv);
}

TEST_CASE("agent: registration back-off doubles, is jittered and capped",
          "[core]") {
  agent::Backoff backoff(absl::Seconds(1), absl::Seconds(10), /*seed=*/7);
  const double want[] = {1, 2, 4, 8, 10, 10, 10};
  bool jittered = false;
  for (double d : want) {
    const double got = absl::ToDoubleSeconds(backoff.Next());
    INFO(d << " " << got);
    CHECK(got >= d / 2);
    CHECK(got <= d);
    jittered |= got < d;
  }
  CHECK(jittered);
  backoff.Reset();
  CHECK(absl::ToDoubleSeconds(backoff.Next()) <= 1.0);
  // Different seeds spread a fleet out.
  agent::Backoff other(absl::Seconds(1), absl::Seconds(10), /*seed=*/8);
  agent::Backoff same(absl::Seconds(1), absl::Seconds(10), /*seed=*/7);
  CHECK(other.Next() != same.Next());
}

TEST_CASE("the activation proof is RFC 2104 HMAC-SHA256", "[core]") {
  // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
  absl::StatusOr<Bytes> mac = core::tpm::ActivationProof(
      AsBytes("Jefe"), "what do ya want for nothing?");
  REQUIRE(mac.ok());
  CHECK(HexEncode(*mac) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("migrations apply once and refuse a newer schema that contracted",
          "[pg]") {
  absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
  REQUIRE(pg.ok());
  absl::StatusOr<std::unique_ptr<store::PgConnection>> db =
      store::PgConnection::Connect((*pg)->conninfo());
  REQUIRE(db.ok());
  absl::StatusOr<int> first = store::Migrate(**db);
  REQUIRE(first.ok());
  CHECK(*first == static_cast<int>(store::Migrations().size()));
  absl::StatusOr<int> second = store::Migrate(**db);
  REQUIRE(second.ok());
  CHECK(*second == 0);
  // The binding log is append-only.
  REQUIRE((*db)
              ->Exec("INSERT INTO ek_aik_bindings (agent_id, tenant, "
                     "ek_sha256, aik_name, event) VALUES ('a', 't', "
                     "'\\x00', '\\x00', 'registered')")
              .ok());
  CHECK(*(*db)->Exec("DELETE FROM ek_aik_bindings") == 0);
  CHECK(*(*db)->Exec("UPDATE ek_aik_bindings SET agent_id = 'b'") == 0);
  // A newer release's expanding migration: this binary runs on it.
  REQUIRE((*db)
              ->Exec("INSERT INTO schema_migrations (version, name) VALUES "
                     "(99998, 'expands')")
              .ok());
  absl::StatusOr<int> newer = store::Migrate(**db);
  REQUIRE(newer.ok());
  CHECK(*newer == 0);
  // A contracting one: refused.
  REQUIRE((*db)
              ->Exec("INSERT INTO schema_migrations (version, name, "
                     "contracts) VALUES (99999, 'from the future', true)")
              .ok());
  CHECK(absl::IsFailedPrecondition(store::Migrate(**db).status()));
}

TEST_CASE("registrar: register, activate, refuse what it must",
          "[e2e][pg][tpm]") {
  absl::StatusOr<TempDir> dir = TempDir::Create("reg-");
  REQUIRE(dir.ok());
  absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
  REQUIRE(pg.ok());
  absl::StatusOr<std::unique_ptr<Swtpm>> tpm_a = Swtpm::Start();
  REQUIRE(tpm_a.ok());
  absl::StatusOr<std::unique_ptr<Swtpm>> tpm_b = Swtpm::Start();
  REQUIRE(tpm_b.ok());
  Tls tls(dir->path());
  absl::StatusOr<std::unique_ptr<Swtpm>> tpm_c = Swtpm::Start();
  REQUIRE(tpm_c.ok());
  // A and B are trusted TPMs; C's EK CA is unknown to the registrar.
  const std::string ek_ca = CaDir(*dir, "ek-ca", {tpm_a->get(), tpm_b->get()});
  Registrar registrar(*dir, **pg, tls, ek_ca, "3s");

  TestAgent a(**tpm_a, "node-a", dir->Join("state-a"));
  auto stub_a = Stub(registrar.address(), tls.Agent("node-a"), "agent");
  v1::RegisterResponse challenge;
  REQUIRE(Call(*stub_a, &v1::Registrar::Stub::Register, a.Request(), &challenge)
              .ok());
  const std::string proof = a.Proof(challenge);

  SECTION("a wrong HMAC is refused and burns the challenge") {
    v1::ActivateRequest bad;
    bad.set_agent_id("node-a");
    bad.set_hmac(std::string(32, 'x'));
    v1::ActivateResponse resp;
    CHECK(Call(*stub_a, &v1::Registrar::Stub::Activate, bad, &resp)
              .error_code() == grpc::StatusCode::PERMISSION_DENIED);
    v1::ActivateRequest good;
    good.set_agent_id("node-a");
    good.set_hmac(proof);
    CHECK(Call(*stub_a, &v1::Registrar::Stub::Activate, good, &resp)
              .error_code() == grpc::StatusCode::NOT_FOUND);
    testing::RunResult get =
        Vouchctl(tls, registrar, {"registrar", "get", "node-a"});
    REQUIRE(get.status.Success());
    CHECK(nlohmann::json::parse(get.out)["active"] == false);
  }

  SECTION("activation, then a replayed Activate") {
    v1::ActivateRequest good;
    good.set_agent_id("node-a");
    good.set_hmac(proof);
    v1::ActivateResponse resp;
    REQUIRE(Call(*stub_a, &v1::Registrar::Stub::Activate, good, &resp).ok());
    CHECK(resp.agent().active());
    CHECK(absl::BytesToHexString(resp.agent().aik_name()) == a.id.aik_name_hex);
    CHECK(Call(*stub_a, &v1::Registrar::Stub::Activate, good, &resp)
              .error_code() == grpc::StatusCode::NOT_FOUND);

    testing::RunResult get =
        Vouchctl(tls, registrar, {"registrar", "get", "node-a"});
    INFO(get.out);
    REQUIRE(get.status.Success());
    nlohmann::json j = nlohmann::json::parse(get.out);
    CHECK(j["agent_id"] == "node-a");
    CHECK(j["active"] == true);
    CHECK(j["aik_name"] == a.id.aik_name_hex);
    CHECK(j["ek_sha256"].get<std::string>().size() == 64);
    CHECK(!j["registered_at"].get<std::string>().empty());
    testing::RunResult list = Vouchctl(tls, registrar, {"registrar", "list"});
    REQUIRE(list.status.Success());
    CHECK(nlohmann::json::parse(list.out)["agents"].size() == 1);
    CHECK(
        Vouchctl(tls, registrar, {"registrar", "get", "nobody"}).status.code ==
        1);

    // Another (trusted) TPM claiming node-a starts pending: its Register is
    // answered, its Activate refused, the activated record intact.
    TestAgent b(**tpm_b, "node-a", dir->Join("state-b"));
    v1::RegisterResponse c2;
    REQUIRE(
        Call(*stub_a, &v1::Registrar::Stub::Register, b.Request(), &c2).ok());
    testing::RunResult pending =
        Vouchctl(tls, registrar, {"registrar", "get", "node-a"});
    REQUIRE(pending.status.Success());
    nlohmann::json pj = nlohmann::json::parse(pending.out);
    CHECK(pj["active"] == true);
    CHECK(pj["activation_pending"] == true);
    CHECK(pj["aik_name"] == a.id.aik_name_hex);
    CHECK(pj["ek_sha256"] == j["ek_sha256"]);
    v1::ActivateRequest other;
    other.set_agent_id("node-a");
    other.set_hmac(b.Proof(c2));
    grpc::Status refused =
        Call(*stub_a, &v1::Registrar::Stub::Activate, other, &resp);
    CHECK(refused.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    CHECK(absl::StrContains(refused.error_message(), "another TPM"));
    // B's EK with A's certificate: the certified key is not this EK.
    v1::RegisterRequest mixed = b.Request();
    mixed.set_ek_certificate(std::string(AsString(a.id.ek_certificate)));
    CHECK(Call(*stub_a, &v1::Registrar::Stub::Register, mixed, &c2)
              .error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    // An EK certificate from a swtpm whose CA is not trusted.
    TestAgent c(**tpm_c, "node-c", dir->Join("state-c"));
    auto stub_c = Stub(registrar.address(), tls.Agent("node-c"), "agent");
    CHECK(Call(*stub_c, &v1::Registrar::Stub::Register, c.Request(), &c2)
              .error_code() == grpc::StatusCode::PERMISSION_DENIED);
    // Without a certificate while require_ek_cert = true.
    v1::RegisterRequest no_cert = c.Request();
    no_cert.clear_ek_certificate();
    CHECK(Call(*stub_c, &v1::Registrar::Stub::Register, no_cert, &c2)
              .error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    testing::RunResult again =
        Vouchctl(tls, registrar, {"registrar", "get", "node-a"});
    CHECK(nlohmann::json::parse(again.out)["ek_sha256"] == j["ek_sha256"]);
    CHECK(nlohmann::json::parse(again.out)["active"] == true);

    // A viewer may read but not delete; an admin may delete.
    testing::RunResult viewer_rm = testing::RunCapture(
        {VOUCHCTL_BIN, "--server", registrar.address(), "--tls-dir",
         tls.client_dir("viewer"), "registrar", "delete", "node-a"});
    CHECK(viewer_rm.status.code == 1);
    CHECK(Vouchctl(tls, registrar, {"registrar", "delete", "node-a"})
              .status.Success());
    CHECK(
        Vouchctl(tls, registrar, {"registrar", "get", "node-a"}).status.code ==
        1);
  }

  SECTION("an expired challenge is refused") {
    std::this_thread::sleep_for(std::chrono::seconds(4));  // ttl is 3 s
    v1::ActivateRequest good;
    good.set_agent_id("node-a");
    good.set_hmac(proof);
    v1::ActivateResponse resp;
    CHECK(Call(*stub_a, &v1::Registrar::Stub::Activate, good, &resp)
              .error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  }

  SECTION("malformed, oversized and impersonating requests") {
    v1::RegisterResponse c;
    // An AIK without fixedTPM.
    v1::RegisterRequest weak = a.Request();
    absl::StatusOr<core::tpm::PublicArea> aik =
        core::tpm::ParsePublic(a.id.aik_public);
    REQUIRE(aik.ok());
    TPMT_PUBLIC area = aik->public_area;
    area.objectAttributes &= ~TPMA_OBJECT_FIXEDTPM;
    absl::StatusOr<Bytes> weak_bytes = core::tpm::MarshalPublic(area);
    REQUIRE(weak_bytes.ok());
    weak.set_aik_public(std::string(AsString(*weak_bytes)));
    grpc::Status st = Call(*stub_a, &v1::Registrar::Stub::Register, weak, &c);
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(absl::StrContains(st.error_message(), "aik_public"));
    // Garbage public areas.
    v1::RegisterRequest junk = a.Request();
    junk.set_ek_public("\x01\x02garbage");
    CHECK(
        Call(*stub_a, &v1::Registrar::Stub::Register, junk, &c).error_code() ==
        grpc::StatusCode::INVALID_ARGUMENT);
    // Over the 128 KiB message bound.
    v1::RegisterRequest huge = a.Request();
    huge.set_agent_version(std::string(200 * 1024, 'x'));
    CHECK(
        Call(*stub_a, &v1::Registrar::Stub::Register, huge, &c).error_code() ==
        grpc::StatusCode::RESOURCE_EXHAUSTED);
    // Agent B's certificate claiming node-a.
    auto stub_b = Stub(registrar.address(), tls.Agent("node-b"), "agent");
    CHECK(Call(*stub_b, &v1::Registrar::Stub::Register, a.Request(), &c)
              .error_code() == grpc::StatusCode::PERMISSION_DENIED);
    // An operator certificate is not an agent.
    auto stub_admin =
        Stub(registrar.address(), tls.client_dir("admin"), "client");
    CHECK(Call(*stub_admin, &v1::Registrar::Stub::Register, a.Request(), &c)
              .error_code() == grpc::StatusCode::PERMISSION_DENIED);
    // The server still serves: the same TPM registers again (new challenge).
    CHECK(Call(*stub_a, &v1::Registrar::Stub::Register, a.Request(), &c).ok());
    v1::ActivateRequest good;
    good.set_agent_id("node-a");
    good.set_hmac(a.Proof(c));
    v1::ActivateResponse resp;
    CHECK(Call(*stub_a, &v1::Registrar::Stub::Activate, good, &resp).ok());
    // Both registrations of the same TPM and the activation are in the
    // append-only binding log.
    absl::StatusOr<std::unique_ptr<store::PgConnection>> db =
        store::PgConnection::Connect((*pg)->conninfo());
    REQUIRE(db.ok());
    absl::StatusOr<store::PgRows> rows = (*db)->Query(
        "SELECT event FROM ek_aik_bindings WHERE agent_id = 'node-a' ORDER "
        "BY seq");
    REQUIRE(rows.ok());
    std::vector<std::string> events;
    for (const auto& row : rows->rows) events.push_back(row[0].value_or(""));
    CHECK(events ==
          std::vector<std::string>{"registered", "registered", "activated"});
  }
  SECTION("Register is rate limited per peer") {
    Registrar limited(*dir, **pg, tls, ek_ca, "2m",
                      /*per_minute=*/2);
    auto stub = Stub(limited.address(), tls.Agent("node-a"), "agent");
    v1::RegisterResponse c;
    CHECK(Call(*stub, &v1::Registrar::Stub::Register, a.Request(), &c).ok());
    CHECK(Call(*stub, &v1::Registrar::Stub::Register, a.Request(), &c).ok());
    CHECK(Call(*stub, &v1::Registrar::Stub::Register, a.Request(), &c)
              .error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  CHECK(registrar.process().Running());
}

TEST_CASE(
    "registrar: a squatter does not block the real machine, pending "
    "registrations expire, agent_id as the EK hash",
    "[e2e][pg][tpm][registrar]") {
  World w("squat-", 2);
  const TempDir* dir = &w.dir;
  const std::unique_ptr<PgCluster>* pg = &w.pg;
  const std::unique_ptr<Swtpm>* tpm_a = &w.tpms[0];
  const std::unique_ptr<Swtpm>* tpm_b = &w.tpms[1];
  Tls tls(dir->path());
  const std::string ek_ca = CaDir(*dir, "ek-ca", {tpm_a->get(), tpm_b->get()});
  Registrar registrar(*dir, **pg, tls, ek_ca, "2m", 1000,
                      {"--registrar-pending-ttl", "3s"});
  absl::StatusOr<std::unique_ptr<store::PgConnection>> db =
      store::PgConnection::Connect((*pg)->conninfo());
  REQUIRE(db.ok());
  auto rows = [&](const std::string& id) {
    absl::StatusOr<store::PgRows> r = (*db)->Query(
        "SELECT count(*) FROM registrations WHERE agent_id = $1", {id});
    REQUIRE(r.ok());
    return r->rows.at(0).at(0).value_or("");
  };

  // An agent certificate of tenant B registers tenant A's machine's EK (its
  // public key and certificate are public) and never activates.
  sdk::IssueOptions squat_cert;
  squat_cert.ca_dir = tls.ca;
  squat_cert.kind = sdk::CertKind::kAgent;
  squat_cert.name = "squatter";
  squat_cert.tenant = "tenant-b";
  REQUIRE(sdk::IssueCertificate(squat_cert).ok());
  auto stub_squat =
      Stub(registrar.address(), tls.ca + "/agents/squatter", "agent");
  TestAgent machine(**tpm_a, "node-a", dir->Join("state-a"));
  v1::RegisterRequest squat = machine.Request();
  squat.set_agent_id("squatter");
  v1::RegisterResponse c;
  REQUIRE(Call(*stub_squat, &v1::Registrar::Stub::Register, squat, &c).ok());
  CHECK(rows("squatter") == "1");

  // The real machine in tenant A registers and activates all the same.
  auto stub_a = Stub(registrar.address(), tls.Agent("node-a"), "agent");
  grpc::Status activated = machine.RegisterAndActivate(*stub_a);
  INFO(activated.error_message());
  REQUIRE(activated.ok());
  // The squatter's registration is gone and the EK is now reserved.
  CHECK(rows("squatter") == "0");
  CHECK(Call(*stub_squat, &v1::Registrar::Stub::Register, squat, &c)
            .error_code() == grpc::StatusCode::ALREADY_EXISTS);

  // A registration that never activates expires after pending_ttl (3 s)
  // and the registrar deletes it.
  v1::RegisterRequest idle;
  {  // swtpm serves one connection at a time: close it before the next.
    TestAgent agent(**tpm_b, "node-idle", dir->Join("state-idle"));
    idle = agent.Request();
  }
  auto stub_idle = Stub(registrar.address(), tls.Agent("node-idle"), "agent");
  REQUIRE(Call(*stub_idle, &v1::Registrar::Stub::Register, idle, &c).ok());
  CHECK(Vouchctl(tls, registrar, {"registrar", "get", "node-idle"})
            .status.Success());
  REQUIRE(Eventually([&] { return rows("node-idle") == "0"; }));
  CHECK(
      Vouchctl(tls, registrar, {"registrar", "get", "node-idle"}).status.code ==
      1);
  CHECK(Vouchctl(tls, registrar, {"registrar", "get", "node-a"})
            .status.Success());

  // require_agent_id_is_ek_hash: only the derived agent_id registers.
  Registrar strict(*dir, **pg, tls, ek_ca, "2m", 1000,
                   {"--registrar-require-agent-id-is-ek-hash", "true"});
  auto stub_strict = Stub(strict.address(), tls.Agent("node-idle"), "agent");
  grpc::Status named =
      Call(*stub_strict, &v1::Registrar::Stub::Register, idle, &c);
  CHECK(named.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(absl::StrContains(named.error_message(), "agent_id"));
  TestAgent derived(**tpm_b, "", dir->Join("state-derived"));
  REQUIRE(derived.id.agent_id.size() == 64);
  auto stub_derived =
      Stub(strict.address(), tls.Agent(derived.id.agent_id), "agent");
  activated = derived.RegisterAndActivate(*stub_derived);
  INFO(activated.error_message());
  CHECK(activated.ok());
}

TEST_CASE(
    "agent process registers and survives a registrar SIGKILL between "
    "Register and Activate",
    "[e2e][pg][tpm]") {
  World w("agent-", 1);
  const TempDir* dir = &w.dir;
  const std::unique_ptr<PgCluster>* pg = &w.pg;
  const std::unique_ptr<Swtpm>* tpm = &w.tpms[0];
  Tls tls(dir->path());
  Registrar registrar(*dir, **pg, tls, CaDir(*dir, "ek-ca", {tpm->get()}));

  // The derived agent_id, as an operator gets it before issuing the cert.
  testing::RunResult id = testing::RunCapture(
      {VOUCH_AGENT_BIN, "--print-agent-id", "--agent-tcti", (*tpm)->tcti(),
       "--agent-state-dir", dir->Join("state")});
  INFO(id.out << id.err << id.status.ToString());
  REQUIRE(id.status.Success());
  const std::string agent_id(absl::StripTrailingAsciiWhitespace(id.out));
  REQUIRE(agent_id.size() == 64);
  const std::string certs = tls.Agent(agent_id);

  auto start_agent = [&](const std::string& log, bool pause) {
    ProcessOptions opts;
    opts.stdout_path = opts.stderr_path = log;
    if (pause) {
      opts.env.push_back(
          {"VOUCH_AGENT_TEST_PAUSE_BEFORE_ACTIVATE", dir->Join("go")});
    }
    absl::StatusOr<ChildProcess> p = ChildProcess::Start(
        {VOUCH_AGENT_BIN, "--agent-tcti", (*tpm)->tcti(), "--agent-state-dir",
         dir->Join("state"), "--agent-registrars", registrar.address(),
         "--agent-retry-initial", "200ms", "--agent-retry-max", "1s",
         "--tls-ca-file", certs + "/ca.pem", "--tls-cert-file",
         certs + "/agent.pem", "--tls-key-file", certs + "/agent.key",
         "--log-level", "info"},
        opts);
    REQUIRE(p.ok());
    return *std::move(p);
  };

  // 1. Killed between Register and Activate, restarted on the same port:
  //    the agent finishes on its own.
  const std::string log1 = dir->Join("agent1.log");
  ChildProcess agent = start_agent(log1, /*pause=*/true);
  REQUIRE(Eventually([&] {
    return absl::StrContains(Slurp(log1), "waiting before Activate");
  }));
  registrar.Kill();
  std::ofstream(dir->Join("go")) << "go";
  // With the registrar down, the agent retries (one log line per attempt).
  REQUIRE(Eventually([&] {
    return absl::StrContains(Slurp(log1), "registration attempt failed");
  }));
  registrar.Start();
  REQUIRE(Eventually(
      [&] { return absl::StrContains(Slurp(log1), "agent ready to attest"); }));
  INFO(Slurp(log1));
  testing::RunResult get =
      Vouchctl(tls, registrar, {"registrar", "get", agent_id});
  REQUIRE(get.status.Success());
  nlohmann::json j = nlohmann::json::parse(get.out);
  CHECK(j["active"] == true);
  CHECK(j["ek_sha256"] == agent_id);
  const std::string aik_name = j["aik_name"];
  CHECK(agent.Terminate().Success());  // SIGTERM: exits 0

  // 2. A restart registers again with the same AIK (kept in the state dir).
  const std::string log2 = dir->Join("agent2.log");
  ChildProcess again = start_agent(log2, /*pause=*/false);
  REQUIRE(Eventually(
      [&] { return absl::StrContains(Slurp(log2), "agent ready to attest"); }));
  get = Vouchctl(tls, registrar, {"registrar", "get", agent_id});
  CHECK(nlohmann::json::parse(get.out)["aik_name"] == aik_name);
  CHECK(again.Terminate().Success());

  // 3. With no registrar at all the agent keeps retrying and still stops
  //    cleanly on SIGTERM.
  registrar.Kill();
  const std::string log3 = dir->Join("agent3.log");
  ChildProcess waiting = start_agent(log3, /*pause=*/false);
  REQUIRE(Eventually([&] {
    return absl::StrContains(Slurp(log3), "\"attempt\":2") ||
           absl::StrContains(Slurp(log3), "attempt=2");
  }));
  CHECK(waiting.Terminate().Success());

  // 4. Nothing registered before the crashes is lost: after two SIGKILLs the
  //    registration is still active with the same AIK.
  registrar.Start();
  get = Vouchctl(tls, registrar, {"registrar", "get", agent_id});
  REQUIRE(get.status.Success());
  CHECK(nlohmann::json::parse(get.out)["active"] == true);
  CHECK(nlohmann::json::parse(get.out)["aik_name"] == aik_name);
}

}  // namespace
}  // namespace vouch
