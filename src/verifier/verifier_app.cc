#include "verifier/verifier_app.h"

#include "absl/time/time.h"
#include "common/logging.h"
#include "common/service_config.h"

namespace vouch::verifier {

AppSpec VerifierAppSpec() {
  AppSpec spec;
  spec.name = "vouch-verifier";
  spec.description =
      "Vouch verifier: takes agents' attestation streams, verifies quotes, "
      "boot and IMA logs, and shares state with its pool in PostgreSQL.";
  spec.default_config_path = "/etc/vouch/verifier.toml";
  spec.daemon = true;
  spec.schema
      .String("verifier", "listen", "[::]:8991",
              "gRPC listen address (Attestation and Admin services)")
      .String("verifier", "id", "",
              "Pool member name; empty uses the host name and process id")
      .Duration("verifier", "interval", absl::Seconds(60),
                "Default attestation interval asked of agents (5s..1h, as "
                "Challenge.interval in the protocol)")
      .Int("verifier", "timeout_intervals", 3,
           "An agent silent for this many intervals is marked timeout", 1, 100)
      .Int("verifier", "max_agent_message_bytes", 6 << 20,
           "Largest AgentMessage accepted (the protocol's bound is 6 MiB)",
           4096, 6 << 20)
      .Int("verifier", "workers", 0,
           "Threads for verification and database work; 0 = one per core", 0,
           256);
  AddDatabaseKeys(spec.schema, /*default_max_connections=*/8);
  AddTlsKeys(spec.schema, "verifier",
             "CA that signs agent and client certificates");
  AddMetricsKeys(spec.schema);
  return spec;
}

int RunVerifier(AppContext& ctx) {
  const Config& cfg = ctx.config;
  Log(LogLevel::kInfo, "verifier starting",
      {{"listen", cfg.GetString("verifier", "listen")},
       {"interval",
        absl::FormatDuration(cfg.GetDuration("verifier", "interval"))},
       {"database_configured", !cfg.GetString("database", "url").empty()}});
  // The Attestation stream lands with issue #7, Admin with issue #8.
  Log(LogLevel::kInfo,
      "verifier ready; no service is served yet, waiting for "
      "a stop signal");
  const int sig = WaitForShutdown();
  Log(LogLevel::kInfo, "verifier stopping", {{"signal", sig}});
  return 0;
}

}  // namespace vouch::verifier
