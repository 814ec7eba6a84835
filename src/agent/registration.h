// File: agent/registration.h
// The agent's identity: the EK and AIK from the TPM, the agent_id, and the
// Register -> ActivateCredential -> Activate exchange with a registrar,
// retried with jittered exponential back-off over the configured registrars
// until it succeeds or the agent is told to stop. Registrar answers are
// untrusted (bounded by the proto). Not thread-safe: the agent's main thread
// drives it.
//
//   Backoff backoff(absl::Seconds(1), absl::Seconds(60), seed);
//   absl::Duration wait = backoff.Next();
#ifndef VOUCH_AGENT_REGISTRATION_H_
#define VOUCH_AGENT_REGISTRATION_H_

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/bytes.h"
#include "tpm/tpm.h"

namespace vouch::agent {

// Exponential back-off with "equal jitter": the n-th wait is uniform in
// [d/2, d] with d = min(max, initial * 2^n), so waits grow, never collapse
// to zero, and a fleet rebooting together spreads out.
class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max, uint64_t seed);
  absl::Duration Next();
  // `at_least` spread over [at_least, 1.5 x at_least), so agents told the
  // same retry hint do not come back at once. Counts no attempt.
  absl::Duration Spread(absl::Duration at_least);
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }

 private:
  absl::Duration initial_;
  absl::Duration max_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

struct IdentityOptions {
  std::string configured_agent_id;  // empty: derived from the EK
  tpm::EkType ek_type = tpm::EkType::kRsa2048;
  tpm::AikType aik_type = tpm::AikType::kRsa2048;
  std::string state_dir;
  std::vector<std::string> ek_intermediate_files;  // PEM or DER
};

// What Register sends, read once from the TPM at start.
struct Identity {
  std::string agent_id;
  Bytes ek_public;       // TPM2B_PUBLIC
  Bytes ek_certificate;  // DER; empty when the TPM has none
  std::vector<std::string> ek_intermediates;  // DER
  Bytes aik_public;                           // TPM2B_PUBLIC
  std::string aik_name_hex;
};

// Loads the EK (TCG template), its certificate and the AIK (created once,
// kept in state_dir). The derived agent_id is the lower-case hex SHA-256 of
// the EK's DER SubjectPublicKeyInfo (the registrar's ek_sha256).
absl::StatusOr<Identity> LoadIdentity(tpm::Tpm& tpm,
                                      const IdentityOptions& options);

struct RegistrarEndpoint {
  std::string address;  // host:port
  std::string ca_file, cert_file, key_file;
};

struct RegisterOptions {
  std::vector<RegistrarEndpoint> registrars;
  absl::Duration retry_initial = absl::Seconds(1);
  absl::Duration retry_max = absl::Seconds(60);
  absl::Duration rpc_timeout = absl::Seconds(30);
  std::string agent_version;
  // Test-only hook (docs/agent.md): after a successful Register, wait until
  // this file exists before activating. Empty: no wait.
  std::string pause_before_activate_file;
  // Onboarding (docs/agent.md): when set, the registrar issues the agent's
  // certificate: a new key and request go with each Register, and the
  // issued certificate and its key are written to
  // issued_dir/agent.pem and agent.key (0600). Without a certificate there
  // yet, the agent calls with server-authenticated TLS and join_token; with
  // one, it authenticates with it (renewal).
  std::string issued_dir;
  std::string join_token;
  // Reported at every Register; enrollment rules match them.
  std::map<std::string, std::string> labels;
};

// Where onboarding keeps the issued certificate and key.
std::string IssuedCertFile(const std::string& issued_dir);
std::string IssuedKeyFile(const std::string& issued_dir);

// When the issued certificate in issued_dir should be renewed: two thirds
// of the way from when it was stored (its file's mtime) to its notAfter.
// kNotFound when there is none (the agent must join).
absl::StatusOr<absl::Time> RenewalTime(const std::string& issued_dir);

// One Register + ActivateCredential + Activate with the registrars in turn
// until one succeeds or every one failed once (the last error), without
// waiting: what a renewal does on its schedule.
absl::Status RegisterWithEach(tpm::Tpm& tpm, const Identity& identity,
                              const RegisterOptions& options);

// Registers and activates, retrying until done. Returns the active AIK's
// Name (hex) or nullopt when a stop signal arrived first (its number in
// *signal).
std::optional<std::string> RegisterUntilActive(tpm::Tpm& tpm,
                                               const Identity& identity,
                                               const RegisterOptions& options,
                                               int* signal);

}  // namespace vouch::agent

#endif  // VOUCH_AGENT_REGISTRATION_H_
