// Fuzzes TPM2B_PUBLIC parsing and everything done with a public area: the
// AIK verifier (key decoding, Name, admission rules) and MakeCredential's EK
// checks (core/tpm).
#include <cstddef>
#include <cstdint>

#include "core/tpm/credential.h"
#include "core/tpm/public_key.h"
#include "core/tpm/quote.h"
#include "core/tpm/tpm_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace t = vouch::core::tpm;
  const vouch::ByteSpan bytes(data, size);
  (void)t::AikVerifier::Create(bytes);
  absl::StatusOr<t::PublicArea> area = t::ParsePublic(bytes);
  if (!area.ok()) area = t::ParseTpmtPublic(bytes);
  if (!area.ok()) return 0;
  (void)t::PublicKeyFromTpm(area->public_area);
  (void)t::ObjectName(*area);
  (void)t::CheckAikAttributes(area->public_area);
  (void)t::MarshalPublic(area->public_area);
  const size_t need = t::CredentialRandomBytes(area->public_area);
  if (need > 0) {
    const vouch::Bytes random(need, 0x5a), name(34, 0x0b), secret(16, 1);
    (void)t::MakeCredential(*area, name, secret, random);
  }
  return 0;
}
