// Fuzzes the ima-sig signature field (core/ima/ima_signature.h): the
// signature_v2_hdr and the RSA / ECDSA verification behind it, against
// fixed verification keys (the test keys of fuzz/seedgen). Input: one byte
// choosing the file digest's algorithm (SHA-1, SHA-256, SHA-384, SHA-512),
// the digest (that algorithm's size), then the signature field. Seeds:
// valid RSA and ECDSA signatures with their digests
// (fuzz/corpus/ima_signature).
#include <openssl/pem.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/openssl_handle.h"
#include "core/ima/hash_alg.h"
#include "core/ima/ima_signature.h"

namespace {

namespace cima = vouch::core::ima;

// Public halves of fuzz/seedgen/ima-key.pem and ima-ec-key.pem.
#include "fuzz_ima_signature_keys.inc"

std::vector<cima::VerificationKey> Keys() {
  std::vector<cima::VerificationKey> keys;
  for (const char* pem : {kImaRsaPublicPem, kImaEcPublicPem}) {
    vouch::BioPtr bio(BIO_new_mem_buf(pem, -1));
    cima::VerificationKey k;
    k.keyring = "fuzz";
    k.key = vouch::EvpPkeyPtr(
        PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    absl::StatusOr<uint32_t> id =
        k.key ? cima::ImaKeyIdV2(k.key.get()) : absl::InternalError("key");
    if (!id.ok()) std::abort();
    k.key_id = *id;
    keys.push_back(std::move(k));
  }
  return keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<cima::VerificationKey> keys = Keys();
  if (size < 1) return 0;
  static constexpr cima::HashAlg kAlgs[] = {
      cima::HashAlg::kSha1, cima::HashAlg::kSha256, cima::HashAlg::kSha384,
      cima::HashAlg::kSha512};
  const cima::HashAlg alg = kAlgs[data[0] % 4];
  const size_t digest_size = cima::DigestSize(alg);
  if (size < 1 + digest_size) return 0;
  const absl::string_view sig(
      reinterpret_cast<const char*>(data + 1 + digest_size),
      size - 1 - digest_size);
  (void)cima::VerifyImaSignature(keys, sig, alg, data + 1, digest_size);
  return 0;
}
