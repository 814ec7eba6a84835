// File: common/principal.h
// Who is calling: the identities Vouch puts in its mTLS client certificates
// and reads back on every call. A certificate names its holder with one or
// more URI SubjectAltNames of the form
//   vouch://<tenant>/<role>/<name>
// role is `agent` (name = agent_id) or `admin`, `operator`, `viewer` (name = a
// person or tool). An agent certificate carries exactly one URI, an agent
// one; an operator certificate may grant roles in several tenants. Input
// (certificates from peers) is untrusted: anything malformed is refused, never
// guessed. Pure functions; thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(Principal p, PrincipalFromCertificate(cert));
//   VOUCH_ASSIGN_OR_RETURN(std::string tenant,
//                          p.ResolveTenant(request.tenant(), Role::kViewer));
#ifndef VOUCH_COMMON_PRINCIPAL_H_
#define VOUCH_COMMON_PRINCIPAL_H_

#include <openssl/x509.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vouch {

// Roles, weakest first. kAdmin includes kOperator includes kViewer. kAgent is
// separate: it allows only the agent-facing RPCs, for its own agent_id.
enum class Role { kViewer, kOperator, kAdmin, kAgent };

absl::string_view RoleName(Role role);  // "viewer", ..., "agent"
absl::StatusOr<Role> ParseRole(absl::string_view name);

// The default tenant of a single-tenant install (`vouchctl ca issue` uses it
// when --tenant is not given).
inline constexpr absl::string_view kDefaultTenant = "default";

// One URI SAN: a role held in a tenant under a name.
struct Grant {
  std::string tenant;  // RFC 1123 label, see common.proto
  Role role = Role::kViewer;
  std::string name;  // agent_id for kAgent; else 1..128 of [A-Za-z0-9._@-]
};

// "vouch://<tenant>/<role>/<name>"; `grant` must be valid.
std::string GrantUri(const Grant& grant);
// Parses and validates one URI; kInvalidArgument naming what is wrong.
absl::StatusOr<Grant> ParseGrantUri(absl::string_view uri);

// The caller of an RPC, from its verified client certificate.
struct Principal {
  std::vector<Grant> grants;  // never empty

  // The agent this certificate is, or nullopt when it is not an agent
  // certificate.
  std::optional<Grant> Agent() const;

  // The tenant a request acts on, by common.proto's rule: `requested` empty
  // means the caller's only tenant in which it holds at least `min_role`
  // (kInvalidArgument "tenant required" when there are several); otherwise
  // the caller must hold at least `min_role` in `requested`
  // (kPermissionDenied). kPermissionDenied too when the role is too weak.
  // Agents hold no operator role anywhere.
  absl::StatusOr<std::string> ResolveTenant(absl::string_view requested,
                                            Role min_role) const;
};

// Reads every `vouch://` URI SAN of `cert` (other SANs are ignored). The
// caller has already verified the certificate chain (the TLS stack did).
// kPermissionDenied when there is no valid vouch:// URI, or an agent URI
// together with any other URI; kInvalidArgument when one is malformed.
absl::StatusOr<Principal> PrincipalFromCertificate(X509* cert);
// Same from a PEM certificate (as gRPC's auth context gives it).
absl::StatusOr<Principal> PrincipalFromPem(absl::string_view pem);

}  // namespace vouch

#endif  // VOUCH_COMMON_PRINCIPAL_H_
