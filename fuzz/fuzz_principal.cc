// Fuzzes the certificate identity: the vouch://<tenant>/<role>/<name> URI
// SAN parser and everything read from a peer's certificate
// (common/principal.h) — as a URI, as a PEM certificate and as a DER one —
// then tenant resolution for what parsed. Invariant: a parsed grant written
// back with GrantUri parses to the same grant. Seeds: URIs and certificates
// with URI SANs (fuzz/corpus/principal, README.md there).
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "common/openssl_handle.h"
#include "common/principal.h"

namespace {

void Resolve(const vouch::Principal& p) {
  (void)p.Agent();
  for (vouch::Role role : {vouch::Role::kViewer, vouch::Role::kOperator,
                           vouch::Role::kAdmin, vouch::Role::kAgent}) {
    (void)p.ResolveTenant("", role);
    (void)p.ResolveTenant(vouch::kDefaultTenant, role);
    if (!p.grants.empty()) (void)p.ResolveTenant(p.grants[0].tenant, role);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<vouch::Grant> grant = vouch::ParseGrantUri(in);
  if (grant.ok()) {
    absl::StatusOr<vouch::Grant> again =
        vouch::ParseGrantUri(vouch::GrantUri(*grant));
    if (!again.ok() || again->tenant != grant->tenant ||
        again->role != grant->role || again->name != grant->name) {
      std::abort();  // GrantUri and ParseGrantUri disagree.
    }
    Resolve(vouch::Principal{{*grant}});
  }
  absl::StatusOr<vouch::Principal> pem = vouch::PrincipalFromPem(in);
  if (pem.ok()) Resolve(*pem);
  const unsigned char* p = data;
  vouch::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(size)));
  if (cert) {
    absl::StatusOr<vouch::Principal> der =
        vouch::PrincipalFromCertificate(cert.get());
    if (der.ok()) Resolve(*der);
  }
  vouch::DrainOpenSslErrors();
  return 0;
}
