// What one peer can make a verifier hold, against the real processes: 1,000
// TCP connections that never start TLS, 200 TLS handshakes dribbled a byte
// at a time, and a certificate holder flooding HEADERS+RST_STREAM (the rapid
// reset of CVE-2023-44487, which Debian 12's gRPC 1.51 does not fix) at
// about 1,000 streams a second per connection, all at once, while a real
// vouch-agent on swtpm attests through the same verifier. The [grpc] limits
// (server/limits.h) must keep it serving: the agent keeps getting verdicts
// (across the connection-age reconnects too), every verdict it saw is
// committed, the unfinished handshakes are cut by the handshake timeout, the
// verifier's memory stays bounded, and SIGTERM still ends it with exit code 0.
// The bounds are generous: a loaded CI machine must not flake, a missing limit
// must still fail.
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "authz/h2_flood.h"
#include "authz/world.h"

namespace vouch::authz {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr int64_t kRssBoundKiB = 2 * 1024 * 1024;
#else
constexpr int64_t kRssBoundKiB = 1024 * 1024;
#endif

using Clock = std::chrono::steady_clock;

// Resident set of `pid` in KiB (VmRSS of /proc/PID/status); 0 if unknown.
int64_t RssKiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, "VmRSS:")) continue;
    std::vector<std::string> parts =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t kib = 0;
    if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kib)) return kib;
  }
  return 0;
}

// The soft descriptor limit raised to `want` (or the hard limit), before
// the servers start so they inherit it.
void RaiseFdLimit(rlim_t want) {
  rlimit l;
  REQUIRE(getrlimit(RLIMIT_NOFILE, &l) == 0);
  if (l.rlim_cur >= want) return;
  l.rlim_cur = std::min(want, l.rlim_max);
  REQUIRE(setrlimit(RLIMIT_NOFILE, &l) == 0);
  INFO("RLIMIT_NOFILE hard limit " << l.rlim_max);
  REQUIRE(l.rlim_cur >= 1400);
}

int PortOf(const std::string& address) {
  int port = 0;
  REQUIRE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port));
  return port;
}

TEST_CASE(
    "abuse: unfinished and slow handshakes and a rapid-reset flood leave "
    "the agent its verdicts, memory bounded and SIGTERM clean",
    "[abuse][e2e][pg][tpm][serial]") {
  RaiseFdLimit(8192);
  // Short limits, so a 20 s test sees them act: handshakes cut after 3 s,
  // every connection (the agent's too) asked to go after ~8 s.
  World world(
      /*tpms=*/1,
      {"--grpc-handshake-timeout", "3s", "--grpc-max-connection-age", "8s",
       "--grpc-max-connection-age-grace", "2s"});
  const std::string admin = world.Client("admin", "tenant-a", Role::kAdmin);
  const std::string flooder =
      world.Client("flooder", "tenant-a", Role::kViewer);
  AgentOnTpm& agent = world.AddAgent("tenant-a", admin, "policy", "5s");
  REQUIRE(Eventually([&] { return world.State(admin, agent) == "pass"; }));

  const pid_t verifier = world.verifier().process().pid();
  const int port = PortOf(world.verifier().address());
  const int64_t rss_before = RssKiB(verifier);
  REQUIRE(rss_before > 0);
  const int verdicts_before = agent.Verdicts();
  const auto start = Clock::now();
  const auto stop_at = start + std::chrono::seconds(20);

  // 1. 1,000 TCP connections that never send a byte.
  std::vector<int> idle;
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<int> fd = ConnectTcp(port);
    REQUIRE(fd.ok());
    idle.push_back(*fd);
  }

  // 2. 200 TLS handshakes in flight at any time, each sending its
  //    ClientHello one byte every 250 ms; the server cuts them.
  absl::StatusOr<std::string> client_hello = ClientHelloBytes();
  REQUIRE(client_hello.ok());
  std::atomic<int> slow_cut{0};
  std::thread slow([&] {
    struct Slow {
      int fd;
      size_t sent;
    };
    std::vector<Slow> conns;
    while (Clock::now() < stop_at) {
      while (conns.size() < 200) {
        absl::StatusOr<int> fd = ConnectTcp(port);
        if (!fd.ok()) break;
        conns.push_back({*fd, 0});
      }
      for (Slow& c : conns) {
        if (c.fd < 0) continue;
        if (PeerClosed(c.fd) ||
            (c.sent < client_hello->size() &&
             send(c.fd, client_hello->data() + c.sent, 1, MSG_NOSIGNAL) != 1)) {
          close(c.fd);
          c.fd = -1;
          ++slow_cut;
          continue;
        }
        ++c.sent;
      }
      conns.erase(std::remove_if(conns.begin(), conns.end(),
                                 [](const Slow& c) { return c.fd < 0; }),
                  conns.end());
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    for (const Slow& c : conns) close(c.fd);
  });

  // 3. A viewer's certificate opening and resetting streams, on the sync
  //    Admin API and the callback Attest API, reconnecting whenever the
  //    server closes.
  std::atomic<int64_t> resets{0};
  std::atomic<int> flood_connections{0};
  // Paced to ~1,000 streams a second per connection: a rate a verifier on
  // gRPC 1.51 absorbs. At full speed (several thousand a second) it does
  // not reliably: that is the exposure docs/security.md describes.
  const int kBurst = 100;
  const auto kPause = std::chrono::milliseconds(100);
  auto flood = [&](const std::string& path) {
    // OpenSSL writes with write(2): a closed connection must not raise
    // SIGPIPE. Blocked in this thread only (it is thread-directed), so no
    // child process inherits an ignored SIGPIPE.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    const ClientFiles files{flooder + "/ca.pem", flooder + "/client.pem",
                            flooder + "/client.key"};
    while (Clock::now() < stop_at) {
      absl::StatusOr<std::unique_ptr<H2Client>> h2 =
          H2Client::Connect(port, files);
      if (!h2.ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      ++flood_connections;
      while (Clock::now() < stop_at) {
        absl::StatusOr<int> sent = (*h2)->RapidReset(kBurst, path);
        if (!sent.ok()) break;
        resets += *sent;
        if (*sent < kBurst) break;  // The server closed the connection.
        std::this_thread::sleep_for(kPause);
      }
    }
  };
  std::thread flood_admin(flood, "/vouch.v1.Admin/ListAgents");
  std::thread flood_attest(flood, "/vouch.v1.Attestation/Attest");

  int64_t rss_peak = rss_before;
  int verdicts_during = 0;
  while (Clock::now() < stop_at) {
    rss_peak = std::max(rss_peak, RssKiB(verifier));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  flood_admin.join();
  flood_attest.join();
  slow.join();
  verdicts_during = agent.Verdicts() - verdicts_before;
  int idle_cut = 0;
  for (int fd : idle) {
    idle_cut += PeerClosed(fd) ? 1 : 0;
    close(fd);
  }
  const int64_t rss_after = RssKiB(verifier);
  WARN("abuse for 20 s: " << resets.load() << " HEADERS+RST_STREAM pairs on "
                          << flood_connections.load() << " connections, "
                          << slow_cut.load() << " slow handshakes cut, "
                          << idle_cut << "/1000 silent connections cut; "
                          << verdicts_during
                          << " verdicts to the agent; verifier RSS "
                          << rss_before / 1024 << " MiB before, "
                          << rss_peak / 1024 << " MiB peak, "
                          << rss_after / 1024 << " MiB after");

  // The flood did happen.
  CHECK(resets.load() >= 10000);
  // Connections were cut by their age and reopened.
  CHECK(flood_connections.load() >= 3);
  // The handshake timeout cut every silent connection and every slow
  // handshake that was older than it.
  CHECK(idle_cut == 1000);
  CHECK(slow_cut.load() >= 200);
  // The agent kept attesting (one verdict per 5 s interval when the
  // verifier keeps up), also through the connection-age reconnects.
  CHECK(verdicts_during >= 1);
  CHECK(absl::StrContains(Slurp(agent.log()), "attestation stream ended"));
  // A generous bound (Release runs measured ~470 MiB): gRPC 1.51 keeps
  // memory per reset stream, so this bounds the damage of this flood, not of
  // any. Under AddressSanitizer freed memory sits in its quarantine (256 MiB)
  // with redzones and shadow on every allocation (a measured run: 1.3 GiB),
  // so the bound there is twice as wide; it is still a bound.
  CHECK(rss_peak < rss_before + kRssBoundKiB);
  CHECK(rss_after < rss_before + kRssBoundKiB);
  // Still serving: the agent gets its next verdict after the abuse ends.
  const int verdicts_now = agent.Verdicts();
  CHECK(Eventually([&] { return agent.Verdicts() > verdicts_now; }));
  // A fresh vouchctl connection may find the verifier still shedding the
  // flood's connections: asked until it answers.
  CHECK(Eventually([&] { return world.State(admin, agent) == "pass"; }));
  // Every verdict the agent saw is committed.
  for (const std::string& id : VerdictIdsInLog(agent.log())) {
    absl::StatusOr<std::string> n = world.pg().Psql(absl::StrCat(
        "SELECT count(*) FROM attestations WHERE attestation_id = '", id, "'"));
    REQUIRE(n.ok());
    CHECK(absl::StripAsciiWhitespace(*n) == "1");
  }
  // SIGTERM ends the verifier cleanly.
  const testing::ExitStatus stopped =
      world.verifier().process().Terminate(std::chrono::seconds(20));
  INFO(stopped.ToString());
  CHECK(stopped.Success());
}

}  // namespace
}  // namespace vouch::authz
