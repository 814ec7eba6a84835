#include "common/principal.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/openssl_handle.h"

namespace vouch {
namespace {

constexpr absl::string_view kScheme = "vouch://";
constexpr size_t kMaxUriBytes = 512;
constexpr int kMaxSans = 64;

// common.proto: a tenant is an RFC 1123 label, 1..63 of [a-z0-9-], first and
// last byte [a-z0-9].
bool ValidTenant(absl::string_view t) {
  if (t.empty() || t.size() > 63) return false;
  for (char c : t) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-')) {
      return false;
    }
  }
  return t.front() != '-' && t.back() != '-';
}

// agent_id (common.proto) and operator names: 1..128 of [A-Za-z0-9._-]
// (operators may also use '@'), first byte alphanumeric.
bool ValidName(absl::string_view n, bool allow_at) {
  if (n.empty() || n.size() > 128 || !absl::ascii_isalnum(n.front())) {
    return false;
  }
  for (char c : n) {
    if (!(absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-' ||
          (allow_at && c == '@'))) {
      return false;
    }
  }
  return true;
}

bool Satisfies(Role held, Role wanted) {
  if (held == Role::kAgent || wanted == Role::kAgent) return held == wanted;
  return static_cast<int>(held) >= static_cast<int>(wanted);
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
    case Role::kAgent:
      return "agent";
  }
  return "unknown";
}

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  for (Role r : {Role::kViewer, Role::kOperator, Role::kAdmin, Role::kAgent}) {
    if (name == RoleName(r)) return r;
  }
  return absl::InvalidArgumentError(
      "role must be one of viewer, operator, admin, agent");
}

std::string GrantUri(const Grant& grant) {
  return absl::StrCat(kScheme, grant.tenant, "/", RoleName(grant.role), "/",
                      grant.name);
}

absl::StatusOr<Grant> ParseGrantUri(absl::string_view uri) {
  if (uri.size() > kMaxUriBytes || !absl::StartsWith(uri, kScheme)) {
    return absl::InvalidArgumentError(
        "identity URI must be vouch://<tenant>/<role>/<name>");
  }
  std::vector<absl::string_view> parts =
      absl::StrSplit(uri.substr(kScheme.size()), '/');
  if (parts.size() != 3) {
    return absl::InvalidArgumentError(
        "identity URI must be vouch://<tenant>/<role>/<name>");
  }
  Grant grant;
  if (!ValidTenant(parts[0])) {
    return absl::InvalidArgumentError(
        "identity URI: tenant must be 1..63 of [a-z0-9-]");
  }
  grant.tenant = std::string(parts[0]);
  absl::StatusOr<Role> role = ParseRole(parts[1]);
  if (!role.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("identity URI: ", role.status().message()));
  }
  grant.role = *role;
  if (!ValidName(parts[2], grant.role != Role::kAgent)) {
    return absl::InvalidArgumentError(
        "identity URI: name must be 1..128 of [A-Za-z0-9._-], starting "
        "alphanumeric");
  }
  grant.name = std::string(parts[2]);
  return grant;
}

std::optional<Grant> Principal::Agent() const {
  if (grants.size() == 1 && grants[0].role == Role::kAgent) return grants[0];
  return std::nullopt;
}

absl::StatusOr<std::string> Principal::ResolveTenant(
    absl::string_view requested, Role min_role) const {
  if (!requested.empty()) {
    for (const Grant& g : grants) {
      if (g.tenant == requested && Satisfies(g.role, min_role)) {
        return std::string(requested);
      }
    }
    return absl::PermissionDeniedError(
        absl::StrCat("caller holds no ", RoleName(min_role),
                     " role in the requested tenant"));
  }
  std::string found;
  for (const Grant& g : grants) {
    if (!Satisfies(g.role, min_role)) continue;
    if (!found.empty() && found != g.tenant) {
      return absl::InvalidArgumentError(
          "tenant required: the caller holds roles in several tenants");
    }
    found = g.tenant;
  }
  if (found.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat("caller holds no ", RoleName(min_role), " role"));
  }
  return found;
}

absl::StatusOr<Principal> PrincipalFromCertificate(X509* cert) {
  if (cert == nullptr) return absl::UnauthenticatedError("no certificate");
  using GeneralNamesPtr = CHandle<GENERAL_NAMES, GENERAL_NAMES_free>;
  GeneralNamesPtr sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  Principal principal;
  const int count = sans ? sk_GENERAL_NAME_num(sans.get()) : 0;
  if (count > kMaxSans) {
    return absl::InvalidArgumentError("certificate has too many SANs");
  }
  for (int i = 0; i < count; ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans.get(), i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* ia5 = name->d.uniformResourceIdentifier;
    absl::string_view uri(
        reinterpret_cast<const char*>(ASN1_STRING_get0_data(ia5)),
        static_cast<size_t>(ASN1_STRING_length(ia5)));
    if (!absl::StartsWith(uri, kScheme)) continue;
    absl::StatusOr<Grant> grant = ParseGrantUri(uri);
    if (!grant.ok()) return grant.status();
    principal.grants.push_back(*std::move(grant));
  }
  if (principal.grants.empty()) {
    return absl::PermissionDeniedError(
        "client certificate names no vouch:// identity");
  }
  bool any_agent = false;
  for (const Grant& g : principal.grants) any_agent |= g.role == Role::kAgent;
  if (any_agent && principal.grants.size() != 1) {
    return absl::PermissionDeniedError(
        "an agent certificate must name exactly one identity");
  }
  return principal;
}

absl::StatusOr<Principal> PrincipalFromPem(absl::string_view pem) {
  if (pem.size() > 64 * 1024) {
    return absl::InvalidArgumentError("certificate too large");
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return absl::InternalError("BIO_new_mem_buf failed");
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return absl::UnauthenticatedError("peer certificate is not readable");
  }
  return PrincipalFromCertificate(cert.get());
}

}  // namespace vouch
