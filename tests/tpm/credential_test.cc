// [core] tests of software MakeCredential's inputs and KDFs. The proof that
// a TPM accepts what it makes is the [tpm] round trip in esys_tpm_test.cc.
#include "core/tpm/credential.h"

#include <openssl/hmac.h>

#include <catch2/catch.hpp>

#include "core/tpm/tpm_wire.h"

namespace vouch::core::tpm {
namespace {

// A TCG template L-1 style EK public area with a fixed (made-up but valid)
// modulus: enough for the input checks and determinism.
PublicArea TestRsaEk() {
  PublicArea ek{};
  TPMT_PUBLIC& p = ek.public_area;
  p.type = TPM2_ALG_RSA;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                       TPMA_OBJECT_SENSITIVEDATAORIGIN |
                       TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED |
                       TPMA_OBJECT_DECRYPT;
  p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
  p.parameters.rsaDetail.symmetric.keyBits.aes = 128;
  p.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
  p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
  p.parameters.rsaDetail.keyBits = 2048;
  p.unique.rsa.size = 256;
  for (int i = 0; i < 256; ++i) p.unique.rsa.buffer[i] = 0xc3 ^ i;
  p.unique.rsa.buffer[255] |= 1;  // Odd.
  return ek;
}

TEST_CASE("KDFa matches SP 800-108 counter mode written out", "[core]") {
  const Bytes key(32, 0x11), u{1, 2, 3}, v{4, 5};
  auto got = KdfA(TPM2_ALG_SHA256, key, "STORAGE", u, v, 384);
  REQUIRE(got.ok());
  Bytes want;
  for (uint8_t i = 1; want.size() < 48; ++i) {
    Bytes in{0, 0, 0, i, 'S', 'T', 'O', 'R', 'A',  'G', 'E',
             0, 1, 2, 3, 4,   5,   0,   0,   0x01, 0x80};
    uint8_t mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), 32, in.data(), in.size(), mac, &len);
    want.insert(want.end(), mac, mac + len);
  }
  want.resize(48);
  CHECK(*got == want);
  CHECK_FALSE(KdfA(0x1234, key, "X", {}, {}, 128).ok());
  CHECK_FALSE(KdfA(TPM2_ALG_SHA256, key, "X", {}, {}, 0).ok());
}

TEST_CASE("KDFe matches SP 800-56A concatenation written out", "[core]") {
  const Bytes z(32, 0x22), u{9}, v{8, 7};
  auto got = KdfE(TPM2_ALG_SHA256, z, "IDENTITY", u, v, 256);
  REQUIRE(got.ok());
  // Built by appending to a reserved buffer: GCC 12 at -O2 reports a false
  // -Warray-bounds for a range insert into a 4-byte initialised vector.
  Bytes in;
  in.reserve(4 + z.size() + 9 + 4);
  for (uint8_t b : {0, 0, 0, 1}) in.push_back(b);
  for (uint8_t b : z) in.push_back(b);
  for (char c : std::string("IDENTITY")) in.push_back(c);
  for (uint8_t b : {0, 9, 8, 7}) in.push_back(b);
  auto want = Digest(TPM2_ALG_SHA256, in);
  REQUIRE(want.ok());
  CHECK(*got == *want);
}

TEST_CASE("MakeCredential checks its inputs and is deterministic", "[core]") {
  const PublicArea ek = TestRsaEk();
  const size_t n = CredentialRandomBytes(ek.public_area);
  REQUIRE(n == 64);
  const Bytes name(34, 0x0b), secret(32, 0x5a), random(n, 0x42);
  auto a = MakeCredential(ek, name, secret, random);
  auto b = MakeCredential(ek, name, secret, random);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->credential_blob == b->credential_blob);
  CHECK(a->encrypted_secret == b->encrypted_secret);
  // TPM2B_ID_OBJECT: size, TPM2B_DIGEST(HMAC-SHA256), encIdentity(2+32).
  CHECK(a->credential_blob.size() == 2 + 2 + 32 + 2 + 32);
  CHECK(a->encrypted_secret.size() == 2 + 256);
  Bytes other = random;
  other[0] ^= 1;
  auto c = MakeCredential(ek, name, secret, other);
  REQUIRE(c.ok());
  CHECK(c->encrypted_secret != a->encrypted_secret);

  CHECK_FALSE(MakeCredential(ek, name, Bytes(33, 1), random).ok());
  CHECK_FALSE(MakeCredential(ek, name, {}, random).ok());
  CHECK_FALSE(MakeCredential(ek, name, secret, Bytes(n - 1, 0)).ok());
  CHECK_FALSE(MakeCredential(ek, Bytes(1, 0), secret, random).ok());
  PublicArea signing = ek;
  signing.public_area.objectAttributes |= TPMA_OBJECT_SIGN_ENCRYPT;
  CHECK(CredentialRandomBytes(signing.public_area) == 0);
  CHECK_FALSE(MakeCredential(signing, name, secret, random).ok());
  PublicArea no_aes = ek;
  no_aes.public_area.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
  CHECK_FALSE(MakeCredential(no_aes, name, secret, random).ok());
}

TEST_CASE("MakeCredential refuses an ECC EK point off its curve", "[core]") {
  PublicArea ek = TestRsaEk();
  TPMT_PUBLIC& p = ek.public_area;
  p.type = TPM2_ALG_ECC;
  p.parameters.eccDetail.symmetric = p.parameters.rsaDetail.symmetric;
  p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
  p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  p.unique.ecc.x.size = 32;
  p.unique.ecc.y.size = 32;
  for (int i = 0; i < 32; ++i) {
    p.unique.ecc.x.buffer[i] = static_cast<uint8_t>(i);
    p.unique.ecc.y.buffer[i] = static_cast<uint8_t>(i * 3);
  }
  const Bytes random(CredentialRandomBytes(p), 1);
  REQUIRE(random.size() == 48);
  auto c = MakeCredential(ek, Bytes(34, 1), Bytes(16, 2), random);
  CHECK(c.status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vouch::core::tpm
