// File: sdk/ca.h
// A small certificate authority for one Vouch install, what `vouchctl ca`
// runs: a self-signed ECDSA P-256 CA, and ECDSA P-256 certificates for
// servers (DNS/IP SANs), operators (client) and agents, each naming its
// holder by a `vouch://` URI (common/principal.h). Writes PEM files; private
// keys are created 0600 and never overwritten. Not thread-safe for the same
// directory.
//
//   IssueOptions opts;  // (GCC's -Wmissing-field-initializers rejects
//   opts.ca_dir = dir;  //  designated initializers that skip fields)
//   opts.kind = CertKind::kServer;
//   opts.name = "registrar.example";
//   VOUCH_RETURN_IF_ERROR(IssueCertificate(opts));
#ifndef VOUCH_SDK_CA_H_
#define VOUCH_SDK_CA_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/openssl_handle.h"
#include "common/principal.h"

namespace vouch::sdk {

struct CaInitOptions {
  std::string dir;  // created if missing (0700)
  std::string common_name = "Vouch CA";
  absl::Duration validity = absl::Hours(24 * 3650);
  std::optional<absl::Time> now;  // default: the current time
};

// Writes DIR/ca.pem and DIR/ca.key. kAlreadyExists if ca.key exists.
absl::Status InitCa(const CaInitOptions& options);

enum class CertKind { kServer, kClient, kAgent };

struct IssueOptions {
  std::string ca_dir;  // holds ca.pem and ca.key (InitCa)
  CertKind kind = CertKind::kClient;
  // kServer: the certificate's CN and file stem; kClient: the person/tool
  // name in the URI; kAgent: the agent_id.
  std::string name;
  std::string tenant = std::string(kDefaultTenant);
  // kClient only: the roles granted in `tenant` (default admin).
  std::vector<Role> roles;
  // kServer only: DNS names and IP addresses (both v4 and v6 recognised);
  // `name` is added as a DNS SAN when it is not an IP address.
  std::vector<std::string> sans;
  absl::Duration validity = absl::Hours(24 * 825);
  std::optional<absl::Time> not_before;  // default: now - 5 min (clock skew)
  // Where to write; default CA_DIR/servers/NAME, CA_DIR/clients/NAME or
  // CA_DIR/agents/NAME. Written there: ca.pem (a copy of the CA certificate)
  // and server.pem/server.key, client.pem/client.key or agent.pem/agent.key,
  // so a client directory is directly a `--tls-dir`.
  std::string out_dir;
};

// Issues one certificate, signed by the CA in ca_dir. kAlreadyExists if the
// key file exists in out_dir; kInvalidArgument for a bad name, tenant or SAN.
absl::Status IssueCertificate(const IssueOptions& options);

// The file stem IssueCertificate uses for `kind`: "server", "client", "agent".
const char* CertFileStem(CertKind kind);

// Where IssueCertificate writes: options.out_dir, or its default.
std::string IssuedDir(const IssueOptions& options);

// The registrar's agent-issuing CA (onboarding, docs/registrar.md): a CA
// directory made by InitCa whose key only the registrar reads. Issues agent
// client certificates (vouch://TENANT/agent/AGENT_ID) for public keys the
// registrar has checked. Immutable after Load; thread-safe.
struct IssuedCertificate {
  std::string chain_pem;  // the certificate, then the CA certificate
  absl::Time not_after;
};
class AgentIssuer {
 public:
  // Reads CA_DIR/ca.pem and CA_DIR/ca.key; kInvalidArgument when absent.
  static absl::StatusOr<std::unique_ptr<AgentIssuer>> Load(
      const std::string& ca_dir);
  ~AgentIssuer();
  // `spki_der`: a DER SubjectPublicKeyInfo; valid from `now` for `validity`.
  absl::StatusOr<IssuedCertificate> Issue(const std::string& spki_der,
                                          const std::string& tenant,
                                          const std::string& agent_id,
                                          absl::Duration validity,
                                          absl::Time now) const;

 private:
  AgentIssuer(X509Ptr cert, EvpPkeyPtr key, std::string cert_pem);
  X509Ptr cert_;
  EvpPkeyPtr key_;
  std::string cert_pem_;
};

// A new ECDSA P-256 key and a PKCS#10 request (RFC 2986) signed by it, for
// an agent that asks the registrar for its certificate.
struct KeyAndCsr {
  std::string key_pem;   // PKCS#8 private key
  std::string csr_der;   // the request
  std::string spki_der;  // its public key (DER SubjectPublicKeyInfo)
};
absl::StatusOr<KeyAndCsr> NewKeyAndCsr();

// The notBefore and notAfter of the first certificate in a PEM file's text.
absl::StatusOr<std::pair<absl::Time, absl::Time>> CertificateValidity(
    const std::string& pem);

// Writes a new ECDSA P-256 results key (the key that signs attestation
// results, docs/results.md): the private key to `key_path` (0600, never
// overwritten: kAlreadyExists) and its public key to `public_path`.
absl::Status CreateResultsKey(const std::string& key_path,
                              const std::string& public_path);

}  // namespace vouch::sdk

#endif  // VOUCH_SDK_CA_H_
