#include "agent/registration.h"

#include <grpcpp/grpcpp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/app.h"
#include "common/file.h"
#include "common/logging.h"
#include "common/openssl_handle.h"
#include "common/status_macros.h"
#include "core/agent_id.h"
#include "core/attest/limits.h"
#include "core/tpm/credential.h"
#include "core/tpm/ek_cert.h"
#include "core/tpm/public_key.h"
#include "core/tpm/tpm_wire.h"
#include "sdk/ca.h"
#include "sdk/channel.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch::agent {
namespace {

using core::attest::kMaxCredentialBlobBytes;

std::chrono::system_clock::time_point Deadline(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d);
}

absl::Status FromGrpc(const grpc::Status& st, absl::string_view rpc) {
  return absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                      absl::StrCat(rpc, ": ", st.error_message()));
}

// DER of a certificate file (PEM or DER), for ek_intermediates.
// The certificate re-encoded as plain DER: PEM becomes DER, and the padding
// some TPMs keep after the certificate in its NV index is dropped.
absl::StatusOr<std::string> CertificateDer(ByteSpan bytes) {
  VOUCH_ASSIGN_OR_RETURN(X509Ptr cert, core::tpm::ParseCertificate(bytes));
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert.get(), &der);
  if (len <= 0) return absl::InvalidArgumentError("certificate not encodable");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

absl::Status StoreIssued(const std::string& dir, const sdk::KeyAndCsr& key,
                         const std::string& chain);

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// One Register + ActivateCredential + Activate against one registrar.
absl::StatusOr<std::string> RegisterOnce(tpm::Tpm& tpm, const Identity& id,
                                         const RegistrarEndpoint& endpoint,
                                         const RegisterOptions& options,
                                         int* signal) {
  sdk::ClientOptions copts;
  copts.server = endpoint.address;
  copts.ca_file = endpoint.ca_file;
  copts.cert_file = endpoint.cert_file;
  copts.key_file = endpoint.key_file;
  std::optional<sdk::KeyAndCsr> request_key;
  const bool onboarding = !options.issued_dir.empty();
  if (onboarding) {
    VOUCH_ASSIGN_OR_RETURN(request_key, sdk::NewKeyAndCsr());
    copts.cert_file = IssuedCertFile(options.issued_dir);
    copts.key_file = IssuedKeyFile(options.issued_dir);
    // No certificate yet: join over server-authenticated TLS, with the
    // token or, without one, by the registrar's EK-CA -> tenant mapping.
    copts.no_client_cert = !FileExists(copts.cert_file);
  }
  VOUCH_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel,
                         sdk::CreateChannel(copts));
  auto stub = v1::Registrar::NewStub(channel);

  v1::RegisterRequest req;
  if (request_key) {
    req.set_csr(request_key->csr_der);
    if (copts.no_client_cert) req.set_join_token(options.join_token);
  }
  req.set_agent_id(id.agent_id);
  req.set_ek_public(std::string(AsString(id.ek_public)));
  req.set_ek_certificate(std::string(AsString(id.ek_certificate)));
  for (const std::string& c : id.ek_intermediates) req.add_ek_intermediates(c);
  req.set_aik_public(std::string(AsString(id.aik_public)));
  req.set_agent_version(options.agent_version);
  req.mutable_labels()->insert(options.labels.begin(), options.labels.end());
  v1::RegisterResponse challenge;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(options.rpc_timeout));
    grpc::Status st = stub->Register(&ctx, req, &challenge);
    if (!st.ok()) return FromGrpc(st, "Register");
  }
  if (challenge.credential_blob().size() > kMaxCredentialBlobBytes ||
      challenge.encrypted_secret().size() > kMaxCredentialBlobBytes) {
    return absl::InvalidArgumentError("Register: oversized challenge");
  }
  Log(LogLevel::kInfo, "registered; activating",
      {{"agent_id", id.agent_id}, {"registrar", endpoint.address}});
  if (!options.pause_before_activate_file.empty()) {
    Log(LogLevel::kInfo, "test hook: waiting before Activate",
        {{"file", options.pause_before_activate_file}});
    while (!FileExists(options.pause_before_activate_file)) {
      if (std::optional<int> sig = WaitForShutdownFor(absl::Milliseconds(50))) {
        *signal = *sig;
        return absl::CancelledError("stopping");
      }
    }
  }
  VOUCH_ASSIGN_OR_RETURN(
      Bytes secret,
      tpm.ActivateCredential(AsBytes(challenge.credential_blob()),
                             AsBytes(challenge.encrypted_secret())));
  VOUCH_ASSIGN_OR_RETURN(
      Bytes proof, request_key
                       ? core::tpm::ActivationProofForKey(secret, id.agent_id,
                                                          request_key->spki_der)
                       : core::tpm::ActivationProof(secret, id.agent_id));
  v1::ActivateRequest activate;
  activate.set_agent_id(id.agent_id);
  activate.set_hmac(std::string(AsString(proof)));
  v1::ActivateResponse active;
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline(options.rpc_timeout));
  grpc::Status st = stub->Activate(&ctx, activate, &active);
  if (!st.ok()) return FromGrpc(st, "Activate");
  if (request_key) {
    VOUCH_RETURN_IF_ERROR(StoreIssued(options.issued_dir, *request_key,
                                      active.certificate_chain()));
    Log(LogLevel::kInfo, "agent certificate stored",
        {{"agent_id", id.agent_id},
         {"file", IssuedCertFile(options.issued_dir)},
         {"renewal", copts.no_client_cert ? "no" : "yes"}});
  }
  return absl::BytesToHexString(active.agent().aik_name());
}

// The registrar's certificate chain for `key`: bounded, and its first
// certificate must carry our key; then key and chain replace the old pair.
// (A stream that opens between the two renames fails its handshake and is
// retried.)
absl::Status StoreIssued(const std::string& dir, const sdk::KeyAndCsr& key,
                         const std::string& chain) {
  if (chain.empty() || chain.size() > 64 * 1024) {
    return absl::InvalidArgumentError(
        "Activate: no certificate (or one over 64 KiB) in the answer");
  }
  BioPtr bio(BIO_new_mem_buf(chain.data(), static_cast<int>(chain.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  unsigned char* der = nullptr;
  const int len = cert ? i2d_PUBKEY(X509_get0_pubkey(cert.get()), &der) : -1;
  const bool same =
      len > 0 && std::string(reinterpret_cast<char*>(der),
                             static_cast<size_t>(len)) == key.spki_der;
  OPENSSL_free(der);
  if (!same) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "Activate: the issued certificate is not for the requested key");
  }
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(IssuedKeyFile(dir), key.key_pem, 0600));
  return WriteFileAtomic(IssuedCertFile(dir), chain, 0644);
}

}  // namespace

std::string IssuedCertFile(const std::string& issued_dir) {
  return issued_dir + "/agent.pem";
}
std::string IssuedKeyFile(const std::string& issued_dir) {
  return issued_dir + "/agent.key";
}

absl::StatusOr<absl::Time> RenewalTime(const std::string& issued_dir) {
  if (!FileExists(IssuedCertFile(issued_dir))) {
    return absl::NotFoundError("no issued certificate");
  }
  VOUCH_ASSIGN_OR_RETURN(std::string pem,
                         ReadFileUpTo(IssuedCertFile(issued_dir), 64 * 1024));
  VOUCH_ASSIGN_OR_RETURN(auto validity, sdk::CertificateValidity(pem));
  // From when it was stored (the registrar backdates notBefore a little for
  // clock skew, which is not lifetime).
  struct stat st;
  if (stat(IssuedCertFile(issued_dir).c_str(), &st) != 0) {
    return absl::NotFoundError("no issued certificate");
  }
  const absl::Time stored =
      std::max(validity.first, absl::FromTimeT(st.st_mtime));
  return stored + (validity.second - stored) * 2 / 3;
}

absl::Status RegisterWithEach(tpm::Tpm& tpm, const Identity& identity,
                              const RegisterOptions& options) {
  absl::Status last = absl::FailedPreconditionError("no registrars");
  for (const RegistrarEndpoint& endpoint : options.registrars) {
    int signal = 0;
    absl::StatusOr<std::string> done =
        RegisterOnce(tpm, identity, endpoint, options, &signal);
    if (done.ok()) return absl::OkStatus();
    last = done.status();
  }
  return last;
}

Backoff::Backoff(absl::Duration initial, absl::Duration max, uint64_t seed)
    : initial_(initial), max_(std::max(max, initial)), rng_(seed) {}

absl::Duration Backoff::Next() {
  absl::Duration d = initial_;
  for (int i = 0; i < attempt_ && d < max_; ++i) d *= 2;
  d = std::min(d, max_);
  ++attempt_;
  std::uniform_real_distribution<double> half(0.5, 1.0);
  return d * half(rng_);
}

absl::Duration Backoff::Spread(absl::Duration at_least) {
  std::uniform_real_distribution<double> spread(1.0, 1.5);
  return at_least * spread(rng_);
}

absl::StatusOr<Identity> LoadIdentity(tpm::Tpm& tpm,
                                      const IdentityOptions& options) {
  Identity id;
  VOUCH_ASSIGN_OR_RETURN(id.ek_public, tpm.LoadEk(options.ek_type));
  absl::StatusOr<Bytes> cert = tpm.ReadEkCertificate(options.ek_type);
  if (cert.ok()) {
    // Unparseable bytes go as read: the registrar decides about them.
    absl::StatusOr<std::string> der = CertificateDer(*cert);
    id.ek_certificate = der.ok() ? ToBytes(*der) : *cert;
  } else if (!absl::IsNotFound(cert.status())) {
    return cert.status();
  }
  for (const std::string& f : options.ek_intermediate_files) {
    VOUCH_ASSIGN_OR_RETURN(std::string text, ReadFileUpTo(f, 64 * 1024));
    absl::StatusOr<std::string> der = CertificateDer(AsBytes(text));
    if (!der.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "agent.ek_intermediates: ", f, ": ", der.status().message()));
    }
    id.ek_intermediates.push_back(*std::move(der));
  }
  VOUCH_ASSIGN_OR_RETURN(core::tpm::PublicArea ek,
                         core::tpm::ParsePublic(id.ek_public));
  if (options.configured_agent_id.empty()) {
    VOUCH_ASSIGN_OR_RETURN(Bytes sha, core::tpm::SpkiSha256(ek.public_area));
    id.agent_id = core::AgentIdFromEk(AsString(sha));
  } else {
    id.agent_id = options.configured_agent_id;
  }
  // The state dir holds the AIK's blobs: private to the agent (0700).
  if (mkdir(options.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InvalidArgumentError(
        absl::StrCat("agent.state_dir: cannot create ", options.state_dir));
  }
  VOUCH_ASSIGN_OR_RETURN(
      id.aik_public, tpm.LoadOrCreateAik(options.state_dir, options.aik_type));
  VOUCH_ASSIGN_OR_RETURN(core::tpm::PublicArea aik,
                         core::tpm::ParsePublic(id.aik_public));
  VOUCH_ASSIGN_OR_RETURN(Bytes name, core::tpm::ObjectName(aik));
  id.aik_name_hex = HexEncode(name);
  return id;
}

std::optional<std::string> RegisterUntilActive(tpm::Tpm& tpm,
                                               const Identity& identity,
                                               const RegisterOptions& options,
                                               int* signal) {
  Backoff backoff(options.retry_initial, options.retry_max,
                  std::random_device{}());
  for (size_t attempt = 0;; ++attempt) {
    const RegistrarEndpoint& endpoint =
        options.registrars[attempt % options.registrars.size()];
    absl::StatusOr<std::string> aik_name =
        RegisterOnce(tpm, identity, endpoint, options, signal);
    if (aik_name.ok()) return *aik_name;
    if (absl::IsCancelled(aik_name.status())) return std::nullopt;
    // Refusals an operator must fix wait the longest; everything else
    // (registrar or database down, challenge expired or lost) retries with
    // growing waits.
    const absl::StatusCode code = aik_name.status().code();
    const bool operator_action = code == absl::StatusCode::kInvalidArgument ||
                                 code == absl::StatusCode::kPermissionDenied ||
                                 code == absl::StatusCode::kAlreadyExists ||
                                 code == absl::StatusCode::kUnauthenticated;
    const absl::Duration wait =
        operator_action ? options.retry_max : backoff.Next();
    Log(operator_action ? LogLevel::kError : LogLevel::kWarning,
        operator_action ? "registration refused; an operator must act "
                          "(see the error), retrying"
                        : "registration attempt failed",
        {{"attempt", static_cast<int64_t>(attempt + 1)},
         {"registrar", endpoint.address},
         {"code", absl::StatusCodeToString(code)},
         {"error", aik_name.status().message()},
         {"retry_in", absl::FormatDuration(wait)}});
    if (std::optional<int> sig = WaitForShutdownFor(wait)) {
      *signal = *sig;
      return std::nullopt;
    }
  }
}

}  // namespace vouch::agent
