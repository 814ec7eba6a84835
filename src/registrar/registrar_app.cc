#include "registrar/registrar_app.h"

#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file.h"
#include "common/logging.h"
#include "common/principal.h"
#include "common/service_config.h"
#include "common/status_macros.h"
#include "common/thread_name.h"
#include "registrar/registrar_metrics.h"
#include "registrar/registrar_service.h"
#include "sdk/ca.h"
#include "server/limits.h"
#include "server/tls.h"
#include "startup/database_server.h"
#include "store/pg_verifier_store.h"
#include "store/registrar_store.h"

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
      .String("registrar", "port_file", "",
              "If set, the bound port is written here once serving (for "
              "listen = \"...:0\")")
      .Duration("registrar", "challenge_ttl", absl::Minutes(2),
                "How long a credential-activation challenge stays valid")
      .Int("registrar", "max_register_per_minute", 60,
           "Register calls accepted per peer address per minute", 1, 100000)
      .Duration("registrar", "pending_ttl", absl::Minutes(10),
                "How long a registration that has not activated is kept; "
                "it blocks nobody meanwhile")
      .Bool("registrar", "require_agent_id_is_ek_hash", false,
            "Refuse a registration whose agent_id is not the lower-case hex "
            "SHA-256 of its EK's SubjectPublicKeyInfo")
      .String("registrar", "agent_ca_dir", "",
              "Onboarding: CA directory (ca.pem + ca.key, `vouchctl ca init`) "
              "whose key signs agent certificates after activation; empty = "
              "agents need certificates from `vouchctl ca issue --agent`")
      .StringList("registrar", "ek_ca_tenants", {},
                  "Onboarding without a join token: FILE=TENANT entries; an "
                  "agent whose EK certificate chains to the CA certificate(s) "
                  "in FILE joins TENANT (first match; a join token wins)")
      .Duration("registrar", "agent_cert_lifetime", absl::Hours(24 * 30),
                "Lifetime of the agent certificates this registrar issues")
      .Duration("registrar", "prune_unseen_after", absl::ZeroDuration(),
                "Prune rule: remove the registration of an agent not seen "
                "(no Register, Activate or verdict) for this long, "
                "unenrolling it first (e.g. \"720h\" for 30 days); 0 = off");
  AddDatabaseKeys(spec.schema, /*default_max_connections=*/4);
  AddTlsKeys(spec.schema, "registrar",
             "CA that signs admin client certificates");
  AddMetricsKeys(spec.schema);
  server::AddServerLimitKeys(spec.schema);
  return spec;
}

namespace {

// Every certificate file (PEM or DER) in the EK CA directory.
absl::StatusOr<std::vector<std::string>> ReadCaDir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("registrar.ek_ca_dir: cannot open ", dir));
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (absl::EndsWith(n, ".pem") || absl::EndsWith(n, ".crt") ||
        absl::EndsWith(n, ".cer") || absl::EndsWith(n, ".der")) {
      names.push_back(n);
    }
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) {
    VOUCH_ASSIGN_OR_RETURN(std::string text,
                           ReadFileUpTo(dir + "/" + n, 1 << 20));
    out.push_back(std::move(text));
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "registrar.ek_ca_dir: no .pem/.crt/.cer/.der files in ", dir));
  }
  return out;
}

// registrar.ek_ca_tenants: "FILE=TENANT" each (split at the last '=', tenant
// names have none), FILE holding the CA certificate(s) of the mapping.
absl::StatusOr<std::vector<RegistrarOptions::EkCaTenant>> LoadEkCaTenants(
    const std::vector<std::string>& entries, bool issues_certificates) {
  std::vector<RegistrarOptions::EkCaTenant> out;
  if (!entries.empty() && !issues_certificates) {
    return absl::InvalidArgumentError(
        "registrar.ek_ca_tenants: needs registrar.agent_ca_dir (agents that "
        "join by their EK receive their certificate from this registrar)");
  }
  for (const std::string& entry : entries) {
    const size_t eq = entry.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "registrar.ek_ca_tenants: '", entry, "' is not FILE=TENANT"));
    }
    RegistrarOptions::EkCaTenant m;
    m.ca_file = entry.substr(0, eq);
    m.tenant = entry.substr(eq + 1);
    if (!ParseGrantUri(absl::StrCat("vouch://", m.tenant, "/viewer/x")).ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("registrar.ek_ca_tenants: '", m.tenant,
                       "' is not a tenant name (an RFC 1123 label)"));
    }
    absl::StatusOr<std::string> pem = ReadFileUpTo(m.ca_file, 1 << 20);
    if (!pem.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("registrar.ek_ca_tenants: ", m.ca_file, ": ",
                       pem.status().message()));
    }
    absl::StatusOr<std::unique_ptr<core::tpm::EkCertVerifier>> v =
        core::tpm::EkCertVerifier::Create({*pem});
    if (!v.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "registrar.ek_ca_tenants: ", m.ca_file, ": ", v.status().message()));
    }
    m.cas = std::shared_ptr<const core::tpm::EkCertVerifier>(std::move(*v));
    out.push_back(std::move(m));
  }
  return out;
}

// Expired pending registrations are found a quarter of pending_ttl late at
// most (1 s .. 1 min).
absl::Duration CleanupPeriod(absl::Duration pending_ttl) {
  return std::clamp(pending_ttl / 4, absl::Seconds(1), absl::Minutes(1));
}

// Removed by the prune rule per round at most (the next round, a period
// later, goes on).
constexpr int kPruneBatch = 500;

// Deletes expired pending registrations, and with `prune_unseen` > 0 the
// registrations of agents not seen for that long, every `period` until
// `stop`; off the signal-waiting thread, so a slow database never delays
// shutdown.
void DeleteExpiredUntil(store::PgRegistrarStore& store, absl::Duration period,
                        absl::Duration prune_unseen, absl::Notification& stop) {
  do {
    absl::StatusOr<int64_t> n = store.DeleteExpired();
    if (!n.ok()) {
      Log(LogLevel::kWarning, "expired registration cleanup failed",
          {{"error", n.status().message()}});
    } else if (*n > 0) {
      Log(LogLevel::kInfo, "expired pending registrations deleted",
          {{"count", *n}});
    }
    if (prune_unseen <= absl::ZeroDuration()) continue;
    absl::StatusOr<std::vector<std::pair<std::string, std::string>>> pruned =
        store.PruneUnseen(prune_unseen, kPruneBatch);
    if (!pruned.ok()) {
      Log(LogLevel::kWarning, "prune of unseen agents failed",
          {{"error", pruned.status().message()}});
      continue;
    }
    for (const auto& [tenant, agent_id] : *pruned) {
      Log(LogLevel::kInfo, "registration pruned: agent not seen",
          {{"tenant", tenant},
           {"agent_id", agent_id},
           {"unseen_after_s", absl::ToInt64Seconds(prune_unseen)}});
    }
  } while (!stop.WaitForNotificationWithTimeout(period));
}

// [registrar] agent_ca_dir and agent_cert_lifetime: the onboarding CA
// (`issuer` stays null without one); nullopt when fine, else the exit code
// (logged).
std::optional<int> LoadAgentIssuer(const Config& cfg,
                                   std::unique_ptr<sdk::AgentIssuer>& issuer,
                                   absl::Duration& cert_lifetime) {
  const std::string agent_ca_dir = cfg.GetString("registrar", "agent_ca_dir");
  if (!agent_ca_dir.empty()) {
    absl::StatusOr<std::unique_ptr<sdk::AgentIssuer>> loaded =
        sdk::AgentIssuer::Load(agent_ca_dir);
    if (!loaded.ok()) {
      Log(LogLevel::kError, "registrar.agent_ca_dir: cannot load the CA",
          {{"error", loaded.status().message()}});
      return 2;
    }
    issuer = *std::move(loaded);
  }
  cert_lifetime = cfg.GetDuration("registrar", "agent_cert_lifetime");
  if (cert_lifetime < absl::Seconds(10)) {
    Log(LogLevel::kError, "registrar.agent_cert_lifetime must be >= 10s");
    return 2;
  }
  return std::nullopt;
}

}  // namespace

int RunRegistrar(AppContext& ctx) {
  const Config& cfg = ctx.config;
  const std::string listen = cfg.GetString("registrar", "listen");
  Log(LogLevel::kInfo, "registrar starting",
      {{"listen", listen},
       {"open_files", server::RaiseOpenFileLimit()},
       {"require_ek_cert", cfg.GetBool("registrar", "require_ek_cert")}});
  if (std::optional<int> exit = startup::CheckDatabaseConfig(cfg)) {
    return *exit;
  }
  std::unique_ptr<core::tpm::EkCertVerifier> ek_cas;
  const std::string ca_dir = cfg.GetString("registrar", "ek_ca_dir");
  absl::StatusOr<std::vector<std::string>> cas = ReadCaDir(ca_dir);
  if (cas.ok()) {
    absl::StatusOr<std::unique_ptr<core::tpm::EkCertVerifier>> v =
        core::tpm::EkCertVerifier::Create(*cas);
    if (!v.ok()) {
      Log(LogLevel::kError, "cannot load the EK CAs",
          {{"dir", ca_dir}, {"error", v.status().message()}});
      return 2;
    }
    ek_cas = *std::move(v);
  } else if (cfg.GetBool("registrar", "require_ek_cert")) {
    Log(LogLevel::kError, "EK CAs required",
        {{"error", cas.status().message()}});
    return 2;
  }
  // Onboarding: with an agent-issuing CA, agents without a certificate may
  // call (a join token admits them); every other RPC still needs one.
  std::unique_ptr<sdk::AgentIssuer> issuer;
  absl::Duration cert_lifetime;
  if (std::optional<int> exit = LoadAgentIssuer(cfg, issuer, cert_lifetime)) {
    return *exit;
  }
  absl::StatusOr<server::ListenSetup> setup = server::ListenSetupFromConfig(
      cfg, issuer != nullptr ? server::ClientCerts::kOptional
                             : server::ClientCerts::kRequired);
  if (!setup.ok()) {
    Log(LogLevel::kError, "TLS or [grpc] setup failed",
        {{"error", setup.status().message()}});
    return 2;
  }
  startup::DatabaseServer db;
  if (std::optional<int> exit = startup::StartDatabaseServer(
          cfg, "vouch-registrar",
          static_cast<int>(cfg.GetInt("database", "max_connections")), db)) {
    return *exit;
  }
  const absl::Duration pending_ttl =
      cfg.GetDuration("registrar", "pending_ttl");
  if (pending_ttl <= absl::ZeroDuration()) {
    Log(LogLevel::kError, "registrar.pending_ttl must be positive");
    return 2;
  }
  store::PgRegistrarStore store(db.pool.get(), pending_ttl);
  RegistrarOptions options;
  options.require_ek_cert = cfg.GetBool("registrar", "require_ek_cert");
  options.challenge_ttl = cfg.GetDuration("registrar", "challenge_ttl");
  options.max_register_per_minute =
      static_cast<int>(cfg.GetInt("registrar", "max_register_per_minute"));
  options.require_agent_id_is_ek_hash =
      cfg.GetBool("registrar", "require_agent_id_is_ek_hash");
  options.agent_issuer = issuer.get();
  // Enrollment rules write the verifier pool's agent_state (same database).
  store::PgVerifierStore enroller(db.pool.get(), /*timeout_intervals=*/3);
  options.enroller = &enroller;
  options.agent_cert_lifetime = cert_lifetime;
  absl::StatusOr<std::vector<RegistrarOptions::EkCaTenant>> mapping =
      LoadEkCaTenants(cfg.GetStringList("registrar", "ek_ca_tenants"),
                      issuer != nullptr);
  if (!mapping.ok()) {
    Log(LogLevel::kError, std::string(mapping.status().message()));
    return 2;
  }
  options.ek_ca_tenants = *std::move(mapping);
  for (const auto& m : options.ek_ca_tenants) {
    Log(LogLevel::kInfo, "EK CA mapped to a tenant",
        {{"ca_file", m.ca_file}, {"tenant", m.tenant}});
  }
  RegistrarService service(&store, std::move(ek_cas), options);

  std::unique_ptr<RegistrarMetrics> rm;
  if (db.metrics != nullptr)
    rm = std::make_unique<RegistrarMetrics>(db.metrics.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, setup->credentials, &port);
  builder.SetMaxReceiveMessageSize(128 * 1024);  // registrar.proto
  server::ApplyServerLimits(setup->limits, builder);
  if (rm != nullptr)
    builder.experimental().SetInterceptorCreators(rm->Interceptors());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = server::StartServing(
      builder, port, listen, cfg.GetString("registrar", "port_file"),
      "registrar");
  if (server == nullptr) return 1;
  absl::Notification stop;
  std::thread cleaner([&, prune_unseen = cfg.GetDuration(
                              "registrar", "prune_unseen_after")] {
    SetThreadName("vouch-cleaner");
    DeleteExpiredUntil(store, CleanupPeriod(pending_ttl), prune_unseen, stop);
  });
  db.Serving(port);
  const int sig = WaitForShutdown();
  Log(LogLevel::kInfo, "registrar stopping", {{"signal", sig}});
  db.Stopping();
  stop.Notify();
  server->GetHealthCheckService()->Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  cleaner.join();
  return 0;
}

}  // namespace vouch::registrar
