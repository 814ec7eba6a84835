// [e2e][pg] The schema lifecycle as an operator meets it with the real
// binaries: --migrate=off refuses a database one migration behind (naming
// both versions) and exits; --migrate=only migrates and exits 0; the same
// binary started with --migrate=off then serves the database it migrated;
// a bad mode is a configuration error (exit 2).
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "e2e/e2e_util.h"
#include "store/migrate.h"
#include "store/pg_connection.h"

namespace vouch {
namespace {

struct World {
  World() : dir(NewDir()), tls(dir.path()) {
    absl::StatusOr<std::unique_ptr<PgCluster>> started = PgCluster::Start();
    REQUIRE(started.ok());
    pg = *std::move(started);
    ek_ca = dir.Join("ek-ca");
    mkdir(ek_ca.c_str(), 0700);
  }
  static TempDir NewDir() {
    absl::StatusOr<TempDir> d = TempDir::Create("lifecycle");
    REQUIRE(d.ok());
    return *std::move(d);
  }
  std::unique_ptr<store::PgConnection> Connect() {
    absl::StatusOr<std::unique_ptr<store::PgConnection>> c =
        store::PgConnection::Connect(pg->conninfo());
    REQUIRE(c.ok());
    return *std::move(c);
  }
  int Version() {
    absl::StatusOr<int> v = store::SchemaVersion(*Connect());
    REQUIRE(v.ok());
    return *v;
  }
  // Runs `binary` (role "verifier" or "registrar") once to its exit.
  testing::RunResult Run(const char* binary, const std::string& role,
                         const std::string& migrate) {
    std::vector<std::string> argv = {binary,
                                     "--migrate",
                                     migrate,
                                     "--" + role + "-listen",
                                     "127.0.0.1:0",
                                     "--tls-ca-file",
                                     tls.ca + "/ca.pem",
                                     "--tls-cert-file",
                                     tls.server_dir() + "/server.pem",
                                     "--tls-key-file",
                                     tls.server_dir() + "/server.key"};
    if (role == "registrar") {
      argv.insert(argv.end(), {"--registrar-ek-ca-dir", ek_ca,
                               "--registrar-require-ek-cert=false"});
    }
    return testing::RunCapture(argv, {{"VOUCH_DATABASE_URL", pg->conninfo()}},
                               std::chrono::seconds(90));
  }
  TempDir dir;
  Tls tls;
  std::unique_ptr<PgCluster> pg;
  std::string ek_ca;
};

TEST_CASE(
    "migrate flag: off refuses an older schema, only migrates and exits, off "
    "then serves the schema it needs",
    "[e2e][pg]") {
  World w;
  const int newest = store::Migrations().back().version;
  // The schema the previous release left.
  REQUIRE(store::MigrateTo(*w.Connect(), newest - 1).ok());
  const std::string refused =
      absl::StrCat("database schema is version ", newest - 1,
                   ", this binary needs ", newest);
  for (const auto& [binary, role] :
       std::vector<std::pair<const char*, std::string>>{
           {VOUCH_VERIFIER_BIN, "verifier"},
           {VOUCH_REGISTRAR_BIN, "registrar"}}) {
    INFO(role);
    testing::RunResult off = w.Run(binary, role, "off");
    INFO(off.err);
    REQUIRE(off.status.exited);
    CHECK(off.status.code == 1);
    CHECK(absl::StrContains(off.err + off.out, refused));
    CHECK(w.Version() == newest - 1);  // Untouched.
    testing::RunResult bad = w.Run(binary, role, "sometimes");
    REQUIRE(bad.status.exited);
    CHECK(bad.status.code == 2);
    CHECK(absl::StrContains(bad.err + bad.out,
                            "migrate must be auto, off or only"));
  }
  testing::RunResult only = w.Run(VOUCH_VERIFIER_BIN, "verifier", "only");
  INFO(only.err);
  REQUIRE(only.status.exited);
  CHECK(only.status.code == 0);
  CHECK(w.Version() == newest);
  // Again: nothing to do, still exit 0.
  CHECK(w.Run(VOUCH_REGISTRAR_BIN, "registrar", "only").status.code == 0);

  // The binary that migrated serves that schema without migrating.
  ServerProcess verifier(w.dir, *w.pg, w.tls, VOUCH_VERIFIER_BIN, "verifier",
                         "v1", {"--migrate", "off"});
  CHECK(verifier.process().Running());
  testing::RunResult list = testing::RunCapture(
      {VOUCHCTL_BIN, "--server", verifier.address(), "--tls-dir",
       w.tls.client_dir("admin"), "agents", "list"},
      {}, std::chrono::seconds(60));
  INFO(list.err);
  CHECK(list.status.Success());
  ServerProcess registrar(w.dir, *w.pg, w.tls, VOUCH_REGISTRAR_BIN, "registrar",
                          "r1",
                          {"--migrate", "off", "--registrar-ek-ca-dir", w.ek_ca,
                           "--registrar-require-ek-cert=false"});
  CHECK(registrar.process().Running());
  CHECK(w.Version() == newest);
}

TEST_CASE(
    "rolling upgrade: this binary serves a newer schema that only expanded "
    "and refuses one that contracted",
    "[e2e][pg]") {
  World w;
  const int newest = store::Migrations().back().version;
  REQUIRE(store::Migrate(*w.Connect()).ok());
  // What the next release's expanding migration looks like to this one: a
  // new column this binary ignores, recorded as not contracting.
  {
    std::unique_ptr<store::PgConnection> c = w.Connect();
    REQUIRE(
        c->Exec("ALTER TABLE agent_state ADD COLUMN next_release text").ok());
    REQUIRE(c->Exec("INSERT INTO schema_migrations (version, name) VALUES "
                    "($1, 'next_release')",
                    {absl::StrCat(newest + 1)})
                .ok());
  }
  for (const char* mode : {"auto", "off"}) {
    INFO(mode);
    ServerProcess verifier(w.dir, *w.pg, w.tls, VOUCH_VERIFIER_BIN, "verifier",
                           absl::StrCat("v-", mode), {"--migrate", mode});
    CHECK(verifier.process().Running());
    testing::RunResult list = testing::RunCapture(
        {VOUCHCTL_BIN, "--server", verifier.address(), "--tls-dir",
         w.tls.client_dir("admin"), "agents", "list"},
        {}, std::chrono::seconds(60));
    INFO(list.err);
    CHECK(list.status.Success());
  }
  CHECK(w.Version() == newest + 1);
  // A release after it contracted (e.g. dropped what this binary reads).
  {
    std::unique_ptr<store::PgConnection> c = w.Connect();
    REQUIRE(c->Exec("INSERT INTO schema_migrations (version, name, "
                    "contracts) VALUES ($1, 'contracted', true)",
                    {absl::StrCat(newest + 2)})
                .ok());
  }
  for (const auto& [binary, role] :
       std::vector<std::pair<const char*, std::string>>{
           {VOUCH_VERIFIER_BIN, "verifier"},
           {VOUCH_REGISTRAR_BIN, "registrar"}}) {
    for (const char* mode : {"auto", "off"}) {
      INFO(role << " " << mode);
      testing::RunResult r = w.Run(binary, role, mode);
      INFO(r.err);
      REQUIRE(r.status.exited);
      CHECK(r.status.code == 1);
      CHECK(absl::StrContains(
          r.err + r.out,
          absl::StrCat("migration ", newest + 2,
                       " (contracted) removed or changed what this binary "
                       "uses: upgrade Vouch")));
    }
  }
}

}  // namespace
}  // namespace vouch
