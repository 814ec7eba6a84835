// Fuzzes the registrar's MakeCredential (core/tpm/credential.h) with every
// input an agent influences: the EK public area (TPM2B_PUBLIC, from
// RegisterRequest.ek_public), the AIK Name, and — standing in for what the
// registrar draws itself — the secret and the random bytes; then the
// activation proof over the Name as an agent_id. Input: be16 length + EK
// TPM2B_PUBLIC, u8 length + AIK Name, u8 length + secret, then the random
// bytes. Random bytes of the wrong length are tried as given (refused) and
// then cycled to the length the EK needs, so the fuzzer reaches the
// OAEP/ECDH and KDF code either way. Seeds: EK public areas of the TCG EK
// templates (RSA 2048, ECC P-256, P-384; fuzz/corpus/tpm_credential).
#include <cstddef>
#include <cstdint>

#include "common/bytes.h"
#include "core/tpm/credential.h"
#include "core/tpm/tpm_wire.h"

namespace {

// The next `n`-byte field after a big-endian length of `len_bytes` bytes;
// false when the input ends first.
bool Take(vouch::ByteSpan& in, size_t len_bytes, vouch::ByteSpan& out) {
  if (in.size() < len_bytes) return false;
  size_t n = 0;
  for (size_t i = 0; i < len_bytes; ++i) n = n << 8 | in[i];
  in.remove_prefix(len_bytes);
  if (in.size() < n) return false;
  out = in.subspan(0, n);
  in.remove_prefix(n);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace t = vouch::core::tpm;
  vouch::ByteSpan in(data, size);
  vouch::ByteSpan ek_bytes, name, secret;
  if (!Take(in, 2, ek_bytes) || !Take(in, 1, name) || !Take(in, 1, secret)) {
    return 0;
  }
  absl::StatusOr<t::PublicArea> ek = t::ParsePublic(ek_bytes);
  if (!ek.ok()) return 0;
  (void)t::MakeCredential(*ek, name, secret, in);
  const size_t need = t::CredentialRandomBytes(ek->public_area);
  if (need > 0 && in.size() != need) {
    vouch::Bytes random(need);
    for (size_t i = 0; i < need; ++i) {
      random[i] = in.empty() ? static_cast<uint8_t>(i) : in[i % in.size()];
    }
    (void)t::MakeCredential(*ek, name, secret, random);
  }
  (void)t::ActivationProof(
      secret, absl::string_view(reinterpret_cast<const char*>(name.data()),
                                name.size()));
  return 0;
}
