#include "agent/agent_app.h"

#include <csignal>

#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "common/service_config.h"

namespace vouch::agent {

AppSpec AgentAppSpec() {
  AppSpec spec;
  spec.name = "vouch-agent";
  spec.description =
      "Vouch agent: proves this machine's TPM identity to the registrar and "
      "pushes quotes, boot and IMA logs to the verifier pool.";
  spec.default_config_path = "/etc/vouch/agent.toml";
  spec.daemon = true;
  spec.schema
      .String("agent", "id", "",
              "Agent identifier; empty derives it from the EK: lower-case "
              "hex SHA-256 of its DER SubjectPublicKeyInfo (ek_sha256)")
      .String("agent", "tcti", "device:/dev/tpmrm0",
              "TPM access: device:/dev/tpmrm0, or swtpm:host=H,port=P")
      .String("agent", "state_dir", "/var/lib/vouch",
              "Where the AIK context and agent state are kept")
      .StringList("agent", "registrars", {},
                  "Registrar addresses (host:port), tried in order")
      .StringList("agent", "verifiers", {},
                  "Verifier addresses (host:port) or one DNS name")
      .String("agent", "ima_log",
              "/sys/kernel/security/ima/binary_runtime_measurements",
              "IMA measurement list to push")
      .String("agent", "boot_log",
              "/sys/kernel/security/tpm0/binary_bios_measurements",
              "Measured-boot (TCG) event log to push")
      .Duration("agent", "min_push_interval", absl::Seconds(1),
                "Rate limit for pushes triggered by new IMA entries; the "
                "larger of this and the verifier's Challenge.min_interval "
                "applies");
  AddTlsKeys(spec.schema, "agent", "CA certificate that signs the servers");
  return spec;
}

int RunAgent(AppContext& ctx) {
  const Config& cfg = ctx.config;
  Log(LogLevel::kInfo, "agent starting",
      {{"tcti", cfg.GetString("agent", "tcti")},
       {"state_dir", cfg.GetString("agent", "state_dir")},
       {"registrars",
        absl::StrJoin(cfg.GetStringList("agent", "registrars"), ",")},
       {"verifiers",
        absl::StrJoin(cfg.GetStringList("agent", "verifiers"), ",")}});
  // Registration lands with issue #6 and the push stream with issue #7;
  // until then the agent only proves its configuration loads and stops
  // cleanly.
  Log(LogLevel::kInfo,
      "agent ready; registration and attestation are not "
      "implemented yet, waiting for a stop signal");
  const int sig = WaitForShutdown();
  Log(LogLevel::kInfo, "agent stopping", {{"signal", sig}});
  return 0;
}

}  // namespace vouch::agent
