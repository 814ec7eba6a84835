// Fuzzes EK certificate parsing (DER with NV padding, PEM), key extraction
// (including the RSAES-OAEP quirk) and chain verification against a fixed
// trust anchor (core/tpm/ek_cert.h).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "core/tpm/ek_cert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace t = vouch::core::tpm;
  const vouch::ByteSpan bytes(data, size);
  absl::StatusOr<vouch::X509Ptr> cert = t::ParseCertificate(bytes);
  if (!cert.ok()) return 0;
  (void)t::CertificateKey(cert->get());
  // The input trusts itself: chain building and key comparison run too.
  absl::StatusOr<std::unique_ptr<t::EkCertVerifier>> v =
      t::EkCertVerifier::Create({std::string(vouch::AsString(bytes))});
  if (v.ok()) {
    TPMT_PUBLIC ek{};
    (void)(*v)->Verify(bytes, {}, ek, absl::FromUnixSeconds(1800000000));
  }
  return 0;
}
