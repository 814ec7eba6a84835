#include "registrar/registrar_app.h"

#include "absl/time/time.h"
#include "common/logging.h"
#include "common/service_config.h"

namespace vouch::registrar {

AppSpec RegistrarAppSpec() {
  AppSpec spec;
  spec.name = "vouch-registrar";
  spec.description =
      "Vouch registrar: checks each agent's EK certificate and binds its AIK "
      "by credential activation.";
  spec.default_config_path = "/etc/vouch/registrar.toml";
  spec.daemon = true;
  spec.schema.String("registrar", "listen", "[::]:8990", "gRPC listen address")
      .Bool("registrar", "require_ek_cert", true,
            "Refuse agents whose EK certificate does not chain to ek_ca_dir")
      .String("registrar", "ek_ca_dir", "/etc/vouch/ek-ca",
              "Directory of trusted TPM manufacturer CA certificates (PEM)")
      .Duration("registrar", "challenge_ttl", absl::Minutes(2),
                "How long a credential-activation challenge stays valid")
      .Int("registrar", "max_register_per_minute", 60,
           "Register calls accepted per peer address per minute", 1, 100000);
  AddDatabaseKeys(spec.schema, /*default_max_connections=*/4);
  AddTlsKeys(spec.schema, "registrar",
             "CA that signs admin client certificates");
  AddMetricsKeys(spec.schema);
  return spec;
}

int RunRegistrar(AppContext& ctx) {
  const Config& cfg = ctx.config;
  Log(LogLevel::kInfo, "registrar starting",
      {{"listen", cfg.GetString("registrar", "listen")},
       {"require_ek_cert", cfg.GetBool("registrar", "require_ek_cert")},
       {"database_configured", !cfg.GetString("database", "url").empty()}});
  // The Registrar service lands with issue #6.
  Log(LogLevel::kInfo,
      "registrar ready; no service is served yet, waiting "
      "for a stop signal");
  const int sig = WaitForShutdown();
  Log(LogLevel::kInfo, "registrar stopping", {{"signal", sig}});
  return 0;
}

}  // namespace vouch::registrar
