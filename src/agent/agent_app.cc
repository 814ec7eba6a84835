#include "agent/agent_app.h"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agent/attest_loop.h"
#include "agent/registration.h"
#include "common/bytes.h"
#include "common/file.h"
#include "common/logging.h"
#include "common/service_config.h"
#include "common/status_macros.h"
#include "common/thread_name.h"
#include "core/ear/ear.h"
#include "server/metrics.h"
#include "server/service_notify.h"
#include "tpm/esys_tpm.h"

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
      .String("agent", "ek_type", "rsa2048",
              "Endorsement key template: rsa2048 or ecc-p256")
      .String("agent", "aik_type", "rsa2048", "AIK type: rsa2048 or ecc-p256")
      .StringList("agent", "ek_intermediates", {},
                  "Certificate files (PEM/DER) between the EK certificate "
                  "and the manufacturer CA, sent at registration")
      .Duration("agent", "retry_initial", absl::Seconds(1),
                "First registration retry wait (doubles, jittered)")
      .Duration("agent", "retry_max", absl::Seconds(60),
                "Longest registration retry wait")
      .Bool("agent", "print_id", false,
            "Print this machine's agent_id (derived from the EK unless "
            "agent.id is set) and exit")
      .WithNames("--print-agent-id", "VOUCH_AGENT_PRINT_ID")
      .Duration("agent", "min_push_interval", absl::Seconds(1),
                "Rate limit for pushes triggered by new IMA entries; the "
                "larger of this and the verifier's Challenge.min_interval "
                "applies")
      .Duration("agent", "reply_timeout", absl::Seconds(30),
                "No verdict within this after a push: the verifier is "
                "considered gone and the agent reconnects to another")
      .Duration("agent", "keepalive", absl::Seconds(10),
                "HTTP/2 keepalive ping period on the attestation stream")
      .Duration("agent", "stream_retry_max", absl::Minutes(5),
                "Longest wait between attempts to reopen the attestation "
                "stream (1 s doubling, jittered)")
      .String("agent", "result_file", "",
              "Where the verifier's signed attestation result (EAR JWT) of "
              "each verdict is written, atomically replaced, for local "
              "consumers; empty: not written")
      .String("agent", "results_jwks", "",
              "JWKS file of the pool's results public keys (`vouchctl "
              "results jwks -f`): action notices must be signed by one of "
              "them; empty: notices are ignored and no action runs")
      .String("agent", "actions_dir", "",
              "Directory of local actions (e.g. /etc/vouch/actions.d): for "
              "each verified action notice its executables run in name "
              "order with the event as JSON on stdin (docs/actions.md); "
              "empty: none")
      .Duration("agent", "action_timeout", absl::Seconds(30),
                "An action still running after this is killed (with its "
                "process group)")
      .Bool("agent", "keep_tpm_open", true,
            "Hold the TPM connection between pushes; false opens it for each "
            "push (needed when the TPM is a swtpm shared with other tools, "
            "as in the demo: swtpm serves one connection at a time)")
      .Bool("agent", "release_idle_memory", true,
            "After each verdict, drop the mappings of the read-only code "
            "and data pages and return free heap to the kernel; the next "
            "push faults back in only what it runs (docs/agent.md)")
      .Bool("agent", "onboard", false,
            "Let the registrar issue this agent's certificate after "
            "activation (kept in state_dir/agent.pem and agent.key, renewed "
            "at two thirds of its lifetime); tls.cert_file and key_file are "
            "then not used")
      .StringList("agent", "labels", {},
                  "This agent's labels, key=value each, reported at "
                  "registration (enrollment rules match them)")
      .String("agent", "join_token", "",
              "With onboard: the join token (`vouchctl tokens create`) used "
              "while the agent has no certificate yet; it picks the tenant "
              "(empty: the registrar's EK-CA mapping must)");
  AddTlsKeys(spec.schema, "agent", "CA certificate that signs the servers");
  AddMetricsKeys(spec.schema);
  return spec;
}

namespace {

absl::StatusOr<tpm::EkType> EkTypeFrom(const std::string& v) {
  if (v == "rsa2048") return tpm::EkType::kRsa2048;
  if (v == "ecc-p256") return tpm::EkType::kEccP256;
  return absl::InvalidArgumentError("agent.ek_type: rsa2048 or ecc-p256");
}

absl::StatusOr<tpm::AikType> AikTypeFrom(const std::string& v) {
  if (v == "rsa2048") return tpm::AikType::kRsa2048;
  if (v == "ecc-p256") return tpm::AikType::kEccP256;
  return absl::InvalidArgumentError("agent.aik_type: rsa2048 or ecc-p256");
}

// Opens the TPM and flushes transient objects a stopped process left in it
// (see EsysTpm::FlushTransientObjects): the agent is the TPM's only user of
// transient objects, and without this an agent killed mid-quote on a TPM
// reached without a resource manager could never load its keys again.
absl::StatusOr<std::unique_ptr<tpm::EsysTpm>> OpenTpm(const std::string& tcti) {
  absl::StatusOr<std::unique_ptr<tpm::EsysTpm>> t = tpm::EsysTpm::Open(tcti);
  if (!t.ok()) return t.status();
  absl::StatusOr<int> flushed = (*t)->FlushTransientObjects();
  if (!flushed.ok()) return flushed.status();
  if (*flushed > 0) {
    Log(LogLevel::kWarning, "flushed transient objects left in the TPM",
        {{"count", *flushed}});
  }
  return t;
}

// The TPM, its identity, and the agent's settings for them, read once.
struct TpmSettings {
  std::string tcti;
  std::string state_dir;
  tpm::EkType ek_type = tpm::EkType::kRsa2048;
  tpm::AikType aik_type = tpm::AikType::kRsa2048;
};

// Opens the TPM and loads the identity, retrying with back-off: the TPM may
// not be up yet at boot. Returns the exit code when the agent must end
// instead (a stop signal, or --print-agent-id failing).
std::optional<int> LoadIdentityUntilReady(const Config& cfg,
                                          const TpmSettings& t, bool print_id,
                                          std::unique_ptr<tpm::EsysTpm>* device,
                                          Identity* identity) {
  Backoff tpm_backoff(cfg.GetDuration("agent", "retry_initial"),
                      cfg.GetDuration("agent", "retry_max"), 1);
  while (true) {
    absl::Status status = [&]() -> absl::Status {
      absl::StatusOr<std::unique_ptr<tpm::EsysTpm>> opened = OpenTpm(t.tcti);
      if (!opened.ok()) return opened.status();
      IdentityOptions opts;
      opts.configured_agent_id = cfg.GetString("agent", "id");
      opts.ek_type = t.ek_type;
      opts.aik_type = t.aik_type;
      opts.state_dir = t.state_dir;
      opts.ek_intermediate_files =
          cfg.GetStringList("agent", "ek_intermediates");
      absl::StatusOr<Identity> id = LoadIdentity(**opened, opts);
      if (!id.ok()) return id.status();
      *device = *std::move(opened);
      *identity = *std::move(id);
      return absl::OkStatus();
    }();
    if (status.ok()) return std::nullopt;
    if (print_id) {
      std::cerr << "vouch-agent: " << status.message() << "\n";
      return 1;
    }
    const absl::Duration wait = tpm_backoff.Next();
    Log(LogLevel::kWarning, "TPM not usable; retrying",
        {{"tcti", t.tcti},
         {"error", status.message()},
         {"retry_in", absl::FormatDuration(wait)}});
    if (std::optional<int> sig = WaitForShutdownFor(wait)) {
      Log(LogLevel::kInfo, "agent stopping", {{"signal", *sig}});
      return 0;
    }
  }
}

RegisterOptions RegistrationOptions(const Config& cfg) {
  RegisterOptions reg;
  for (const std::string& address : cfg.GetStringList("agent", "registrars")) {
    reg.registrars.push_back({address, cfg.GetString("tls", "ca_file"),
                              cfg.GetString("tls", "cert_file"),
                              cfg.GetString("tls", "key_file")});
  }
  reg.retry_initial = cfg.GetDuration("agent", "retry_initial");
  reg.retry_max = cfg.GetDuration("agent", "retry_max");
  reg.agent_version = VersionString("vouch-agent").substr(0, 64);
  for (const std::string& kv : cfg.GetStringList("agent", "labels")) {
    const size_t eq = kv.find('=');
    reg.labels[kv.substr(0, eq)] =
        eq == std::string::npos ? "" : kv.substr(eq + 1);
  }
  if (cfg.GetBool("agent", "onboard")) {
    reg.issued_dir = cfg.GetString("agent", "state_dir");
    reg.join_token = cfg.GetString("agent", "join_token");
  }
  if (const char* hook =
          std::getenv("VOUCH_AGENT_TEST_PAUSE_BEFORE_ACTIVATE")) {
    reg.pause_before_activate_file = hook;
  }
  return reg;
}

// The keys action notices must be signed by (agent.results_jwks); nullptr
// when unset.
absl::StatusOr<std::shared_ptr<const core::ear::KeySet>> NoticeKeys(
    const Config& cfg) {
  const std::string path = cfg.GetString("agent", "results_jwks");
  if (path.empty()) return nullptr;
  absl::StatusOr<std::string> text =
      ReadFileUpTo(path, core::ear::kMaxJwksBytes);
  if (!text.ok()) return text.status();
  absl::StatusOr<core::ear::KeySet> keys = core::ear::KeySet::FromJwks(*text);
  if (!keys.ok()) return keys.status();
  if (keys->keys().empty()) {
    return absl::InvalidArgumentError(path + ": no EC P-256 key");
  }
  return std::make_shared<const core::ear::KeySet>(*std::move(keys));
}

// `aik_name` is the AIK's binary TPM Name.
AttestOptions AttestationOptions(const Config& cfg, const Identity& identity,
                                 const std::string& aik_name,
                                 const std::string& agent_version) {
  AttestOptions att;
  att.agent_id = identity.agent_id;
  att.aik_name = aik_name;
  att.verifiers = cfg.GetStringList("agent", "verifiers");
  att.ca_file = cfg.GetString("tls", "ca_file");
  att.cert_file = cfg.GetString("tls", "cert_file");
  att.key_file = cfg.GetString("tls", "key_file");
  if (cfg.GetBool("agent", "onboard")) {
    att.cert_file = IssuedCertFile(cfg.GetString("agent", "state_dir"));
    att.key_file = IssuedKeyFile(cfg.GetString("agent", "state_dir"));
  }
  att.ima_log = cfg.GetString("agent", "ima_log");
  att.boot_log = cfg.GetString("agent", "boot_log");
  att.agent_version = agent_version;
  absl::StatusOr<std::string> boot_id =
      ReadFileUpTo("/proc/sys/kernel/random/boot_id", 64);
  if (boot_id.ok()) {
    att.boot_id = std::string(absl::StripAsciiWhitespace(*boot_id));
  }
  att.retry_initial = cfg.GetDuration("agent", "retry_initial");
  att.retry_max = cfg.GetDuration("agent", "stream_retry_max");
  att.min_push_interval = cfg.GetDuration("agent", "min_push_interval");
  att.reply_timeout = cfg.GetDuration("agent", "reply_timeout");
  att.keepalive = cfg.GetDuration("agent", "keepalive");
  att.keep_tpm_open = cfg.GetBool("agent", "keep_tpm_open");
  att.release_idle_memory = cfg.GetBool("agent", "release_idle_memory");
  att.result_file = cfg.GetString("agent", "result_file");
  att.actions.dir = cfg.GetString("agent", "actions_dir");
  att.actions.timeout = cfg.GetDuration("agent", "action_timeout");
  return att;
}

// Opens the TPM with the EK and AIK loaded, for each push or once.
TpmOpener AttestTpmOpener(const TpmSettings& t) {
  return [t]() -> absl::StatusOr<std::unique_ptr<tpm::Tpm>> {
    absl::StatusOr<std::unique_ptr<tpm::EsysTpm>> opened = OpenTpm(t.tcti);
    if (!opened.ok()) return opened.status();
    if (absl::StatusOr<Bytes> e = (*opened)->LoadEk(t.ek_type); !e.ok()) {
      return e.status();
    }
    if (absl::StatusOr<Bytes> a =
            (*opened)->LoadOrCreateAik(t.state_dir, t.aik_type);
        !a.ok()) {
      return a.status();
    }
    return std::unique_ptr<tpm::Tpm>(*std::move(opened));
  };
}

// A TPM session that holds `mu` for its whole life. The attestation loop
// (per push, when keep_tpm_open is false) and the certificate renewal open
// the TPM from two threads; opening flushes transient objects left behind,
// so without the lock one would flush the other's EK and AIK mid-use.
class ExclusiveTpm final : public tpm::Tpm {
 public:
  ExclusiveTpm(std::unique_lock<std::mutex> lock, std::unique_ptr<tpm::Tpm> tpm)
      : lock_(std::move(lock)), tpm_(std::move(tpm)) {}
  ~ExclusiveTpm() override { tpm_.reset(); }  // closed before unlocking
  absl::StatusOr<Bytes> GetRandom(size_t count) override {
    return tpm_->GetRandom(count);
  }
  absl::StatusOr<Bytes> ReadNv(uint32_t nv_index) override {
    return tpm_->ReadNv(nv_index);
  }
  absl::StatusOr<Bytes> LoadEk(tpm::EkType type) override {
    return tpm_->LoadEk(type);
  }
  absl::StatusOr<Bytes> ReadEkCertificate(tpm::EkType type) override {
    return tpm_->ReadEkCertificate(type);
  }
  absl::StatusOr<Bytes> LoadOrCreateAik(const std::string& state_dir,
                                        tpm::AikType type) override {
    return tpm_->LoadOrCreateAik(state_dir, type);
  }
  absl::StatusOr<Bytes> ActivateCredential(ByteSpan blob,
                                           ByteSpan secret) override {
    return tpm_->ActivateCredential(blob, secret);
  }
  absl::StatusOr<tpm::QuoteBlob> Quote(
      ByteSpan nonce, const TPML_PCR_SELECTION& selection) override {
    return tpm_->Quote(nonce, selection);
  }
  absl::StatusOr<core::tpm::PcrValues> PcrRead(
      const TPML_PCR_SELECTION& selection) override {
    return tpm_->PcrRead(selection);
  }
  absl::Status PcrExtend(uint32_t pcr, TPMI_ALG_HASH alg,
                         ByteSpan digest) override {
    return tpm_->PcrExtend(pcr, alg, digest);
  }

 private:
  std::unique_lock<std::mutex> lock_;
  std::unique_ptr<tpm::Tpm> tpm_;
};

// `open` with each session holding `mu` (ExclusiveTpm).
TpmOpener Exclusive(TpmOpener open, std::shared_ptr<std::mutex> mu) {
  return [open = std::move(open),
          mu = std::move(mu)]() -> absl::StatusOr<std::unique_ptr<tpm::Tpm>> {
    std::unique_lock<std::mutex> lock(*mu);
    absl::StatusOr<std::unique_ptr<tpm::Tpm>> opened = open();
    if (!opened.ok()) return opened.status();
    return std::unique_ptr<tpm::Tpm>(
        new ExclusiveTpm(std::move(lock), *std::move(opened)));
  };
}

// Onboarding: renews the issued certificate at two thirds of its lifetime
// with a fresh TPM proof (Register + Activate with a new key, authenticated
// by the current certificate), retrying every tenth of the remaining time
// (1 s .. 5 min) on failure, until `stop`. The attestation stream is left
// alone: its next connection uses the new certificate.
void RenewUntil(const TpmOpener& open_tpm, const Identity& identity,
                const RegisterOptions& reg, absl::Notification& stop) {
  while (true) {
    absl::StatusOr<absl::Time> due = RenewalTime(reg.issued_dir);
    absl::Duration wait = absl::Minutes(1);
    if (due.ok()) wait = std::max(*due - absl::Now(), absl::ZeroDuration());
    if (stop.WaitForNotificationWithTimeout(wait)) return;
    absl::Status done = [&]() -> absl::Status {
      VOUCH_ASSIGN_OR_RETURN(std::unique_ptr<tpm::Tpm> device, open_tpm());
      return RegisterWithEach(*device, identity, reg);
    }();
    if (done.ok()) {
      Log(LogLevel::kInfo, "agent certificate renewed",
          {{"agent_id", identity.agent_id}});
      continue;
    }
    absl::Duration retry = absl::Seconds(1);
    if (absl::StatusOr<absl::Time> d = RenewalTime(reg.issued_dir); d.ok()) {
      retry = std::clamp((*d - absl::Now()) / 10, absl::Seconds(1),
                         absl::Minutes(5));
    }
    Log(LogLevel::kError, "agent certificate renewal failed",
        {{"agent_id", identity.agent_id},
         {"code", absl::StatusCodeToString(done.code())},
         {"error", done.message()},
         {"retry_in", absl::FormatDuration(retry)}});
    if (stop.WaitForNotificationWithTimeout(retry)) return;
  }
}

// The [agent] TPM keys: tcti, state_dir, ek_type, aik_type.
absl::StatusOr<TpmSettings> TpmSettingsFrom(const Config& cfg) {
  VOUCH_ASSIGN_OR_RETURN(tpm::EkType ek_type,
                         EkTypeFrom(cfg.GetString("agent", "ek_type")));
  VOUCH_ASSIGN_OR_RETURN(tpm::AikType aik_type,
                         AikTypeFrom(cfg.GetString("agent", "aik_type")));
  return TpmSettings{cfg.GetString("agent", "tcti"),
                     cfg.GetString("agent", "state_dir"), ek_type, aik_type};
}

// With onboarding (an issued certificate in reg.issued_dir), starts the
// certificate renewal on its own thread until `stop`, and makes
// `*attest_tpm` share the TPM with it. Otherwise returns no thread.
std::thread StartRenewal(const TpmSettings& tpm_settings,
                         const Identity& identity, const RegisterOptions& reg,
                         bool keep_tpm_open, TpmOpener* attest_tpm,
                         absl::Notification& stop) {
  if (reg.issued_dir.empty()) return std::thread();
  // Opening per push, the loop and the renewal take turns at the TPM.
  // Holding it open (keep_tpm_open), the loop never lets go: the two then
  // share the TPM through its resource manager (/dev/tpmrm0), which a
  // bare swtpm lacks (docs/agent.md).
  TpmOpener renew_tpm = AttestTpmOpener(tpm_settings);
  if (!keep_tpm_open) {
    auto mu = std::make_shared<std::mutex>();
    *attest_tpm = Exclusive(std::move(*attest_tpm), mu);
    renew_tpm = Exclusive(std::move(renew_tpm), mu);
  }
  RegisterOptions renew = reg;
  renew.pause_before_activate_file.clear();
  return std::thread(
      [&stop, &identity, renew, open_tpm = std::move(renew_tpm)] {
        SetThreadName("vouch-renew");
        RenewUntil(open_tpm, identity, renew, stop);
      });
}

}  // namespace

int RunAgent(AppContext& ctx) {
  const Config& cfg = ctx.config;
  const bool print_id = cfg.GetBool("agent", "print_id");
  absl::StatusOr<TpmSettings> settings = TpmSettingsFrom(cfg);
  if (!settings.ok()) {
    Log(LogLevel::kError, "bad configuration",
        {{"error", settings.status().message()}});
    return 2;
  }
  const TpmSettings& tpm_settings = *settings;
  if (!print_id) {
    Log(LogLevel::kInfo, "agent starting",
        {{"tcti", tpm_settings.tcti},
         {"state_dir", tpm_settings.state_dir},
         {"registrars",
          absl::StrJoin(cfg.GetStringList("agent", "registrars"), ",")}});
  }
  std::unique_ptr<tpm::EsysTpm> device;
  Identity identity;
  if (std::optional<int> code = LoadIdentityUntilReady(
          cfg, tpm_settings, print_id, &device, &identity)) {
    return *code;
  }
  if (print_id) {
    std::cout << identity.agent_id << "\n";
    return 0;
  }
  Log(LogLevel::kInfo, "TPM identity loaded",
      {{"agent_id", identity.agent_id},
       {"aik_name", identity.aik_name_hex},
       {"ek_certificate", !identity.ek_certificate.empty()}});
  // Ready: the TPM answered and the identity is loaded. Registration waits
  // for the registrar as long as it takes, so it is progress, not start-up.
  server::NotifyReady("registering").IgnoreError();

  const RegisterOptions reg = RegistrationOptions(cfg);
  if (reg.registrars.empty()) {
    Log(LogLevel::kError, "agent.registrars is empty");
    return 2;
  }
  int sig = 0;
  std::optional<std::string> aik_name =
      RegisterUntilActive(*device, identity, reg, &sig);
  if (!aik_name) {
    Log(LogLevel::kInfo, "agent stopping", {{"signal", sig}});
    server::NotifyStopping().IgnoreError();
    return 0;
  }
  server::NotifyStatus("attesting").IgnoreError();
  Log(LogLevel::kInfo, "agent ready to attest",
      {{"agent_id", identity.agent_id}, {"aik_name", *aik_name}});

  absl::StatusOr<Bytes> name = HexDecode(*aik_name);
  if (!name.ok()) {
    Log(LogLevel::kError, "bad AIK name", {{"error", name.status().message()}});
    return 1;
  }
  AttestOptions att = AttestationOptions(
      cfg, identity, std::string(AsString(*name)), reg.agent_version);
  absl::StatusOr<std::shared_ptr<const core::ear::KeySet>> notice_keys =
      NoticeKeys(cfg);
  if (!notice_keys.ok()) {
    Log(LogLevel::kError, "agent.results_jwks unusable",
        {{"error", notice_keys.status().message()}});
    return 2;
  }
  att.notice_keys = *std::move(notice_keys);
  device.reset();  // Reopened per push, or once, by the loop.
  std::shared_ptr<server::Metrics> metrics =
      server::MetricsFromConfig(cfg, "vouch-agent");
  std::unique_ptr<AgentMetrics> am;
  if (metrics != nullptr) am = std::make_unique<AgentMetrics>(metrics.get());
  att.metrics = am.get();
  absl::StatusOr<std::unique_ptr<server::MetricsServer>> http =
      server::ServeMetricsFromConfig(
          cfg, metrics, [m = am.get()]() -> absl::Status {
            if (m->streaming()) return absl::OkStatus();
            return absl::UnavailableError("no attestation stream open");
          });
  if (!http.ok()) return 1;
  if (*http != nullptr) (*http)->SetServing();
  absl::Notification stop_renewal;
  TpmOpener attest_tpm = AttestTpmOpener(tpm_settings);
  std::thread renewer =
      StartRenewal(tpm_settings, identity, reg, att.keep_tpm_open, &attest_tpm,
                   stop_renewal);
  const int code = RunAttestLoop(attest_tpm, att);
  stop_renewal.Notify();
  if (renewer.joinable()) renewer.join();
  server::NotifyStopping().IgnoreError();
  return code;
}

}  // namespace vouch::agent
