// Type=notify readiness end to end: a real vouch-verifier and
// vouch-registrar on PostgreSQL, given NOTIFY_SOCKET as systemd would, report
// READY=1 once they serve (the port they serve on in STATUS=) and
// STOPPING=1 when SIGTERM starts the drain.
#include <signal.h>

#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "e2e/e2e_util.h"
#include "harness/notify_socket.h"

namespace vouch {
namespace {

using testing::NotifySocket;

// The next message within 60 s, or "" when none came.
std::string Next(NotifySocket& manager) {
  std::optional<std::string> m;
  Eventually([&] { return (m = manager.Receive()).has_value(); });
  return m.value_or("");
}

TEST_CASE("the servers tell systemd when they serve and when they stop",
          "[e2e][notify][pg][tpm]") {
  absl::StatusOr<TempDir> made = TempDir::Create("notify");
  REQUIRE(made.ok());
  TempDir dir = *std::move(made);
  Tls tls(dir.path());
  absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
  REQUIRE(pg.ok());
  absl::StatusOr<std::unique_ptr<Swtpm>> tpm = Swtpm::Start();
  REQUIRE(tpm.ok());
  const std::string ek_ca = CaDir(dir, "ek-ca", {tpm->get()});
  struct Case {
    const char* binary;
    std::string role;
    std::vector<std::string> args;
  };
  for (const Case& c :
       {Case{VOUCH_VERIFIER_BIN, "verifier", {"--verifier-id", "v1"}},
        Case{VOUCH_REGISTRAR_BIN,
             "registrar",
             {"--registrar-ek-ca-dir", ek_ca}}}) {
    {
      INFO(c.role);
      absl::StatusOr<NotifySocket> manager =
          NotifySocket::Bind(dir.Join(c.role + ".notify"));
      REQUIRE(manager.ok());
      // The constructor returns once the server wrote its port file.
      ServerProcess server(dir, **pg, tls, c.binary, c.role, c.role, c.args,
                           {{"NOTIFY_SOCKET", manager->path()}});
      const std::string port(
          absl::StripAsciiWhitespace(Slurp(server.PortFile())));
      INFO(Slurp(server.log()));
      CHECK(Next(*manager) ==
            absl::StrCat("READY=1\nSTATUS=serving on port ", port));
      CHECK_FALSE(manager->Receive().has_value());  // Once.
      server.Signal(SIGTERM);
      CHECK(Next(*manager) == "STOPPING=1\nSTATUS=draining");
      server.Terminate();
    }
  }
}

}  // namespace
}  // namespace vouch
