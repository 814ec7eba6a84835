// Onboarding's pieces without servers ([core][onboarding]): an agent's key
// and certificate request (sdk/ca.h) and the registrar's checks of it
// (core/attest/join.h), the keyed activation proof (core/tpm/credential.h),
// and the agent-issuing CA's certificates (sdk::AgentIssuer).
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "common/bytes.h"
#include "common/openssl_handle.h"
#include "core/attest/join.h"
#include "core/tpm/credential.h"
#include "harness/temp_dir.h"
#include "sdk/ca.h"

namespace vouch {
namespace {

using core::attest::CsrPublicKey;
using core::attest::ValidateJoinToken;
using core::attest::ValidateLabels;

TEST_CASE(
    "onboarding: a certificate request yields its key only when its "
    "signature verifies",
    "[core][onboarding]") {
  absl::StatusOr<sdk::KeyAndCsr> made = sdk::NewKeyAndCsr();
  REQUIRE(made.ok());
  absl::StatusOr<std::string> spki = CsrPublicKey(made->csr_der);
  REQUIRE(spki.ok());
  CHECK(*spki == made->spki_der);

  // The last byte is inside the signature: it no longer verifies.
  std::string tampered = made->csr_der;
  tampered.back() ^= 0x01;
  absl::StatusOr<std::string> bad = CsrPublicKey(tampered);
  CHECK(absl::IsInvalidArgument(bad.status()));
  // Trailing bytes, garbage, empty, oversized.
  CHECK(absl::IsInvalidArgument(CsrPublicKey(made->csr_der + "x").status()));
  CHECK(absl::IsInvalidArgument(CsrPublicKey("garbage").status()));
  CHECK(absl::IsInvalidArgument(CsrPublicKey("").status()));
  CHECK(absl::IsInvalidArgument(
      CsrPublicKey(std::string(core::attest::kMaxCsrBytes + 1, '0')).status()));
  CHECK(absl::StartsWith(bad.status().message(), "csr: "));
}

TEST_CASE("onboarding: join tokens and labels are bounded",
          "[core][onboarding]") {
  CHECK(ValidateJoinToken("vjt_0123abcd").ok());
  CHECK(!ValidateJoinToken("").ok());
  CHECK(!ValidateJoinToken("has space").ok());
  CHECK(!ValidateJoinToken(std::string(129, 'a')).ok());

  CHECK(ValidateLabels({{"role", "web"}, {"zone/eu", ""}}, "labels").ok());
  CHECK(!ValidateLabels({{"Role", "web"}}, "labels").ok());
  CHECK(!ValidateLabels({{"", "web"}}, "labels").ok());
  CHECK(!ValidateLabels({{"role", "a=b"}}, "labels").ok());
  CHECK(!ValidateLabels({{"role", "a,b"}}, "labels").ok());
  CHECK(!ValidateLabels({{"role", std::string(64, 'a')}}, "labels").ok());
  std::map<std::string, std::string> many;
  for (int i = 0; i < 17; ++i) many["k" + std::to_string(i)] = "v";
  absl::Status s = ValidateLabels(many, "selector");
  CHECK(absl::StartsWith(s.message(), "selector: "));
  CHECK(core::attest::LabelsJson({{"a", "1"}, {"b", ""}}) ==
        "{\"a\":\"1\",\"b\":\"\"}");
}

TEST_CASE("onboarding: the activation proof names the requested key",
          "[core][onboarding]") {
  const Bytes secret(32, 7);
  absl::StatusOr<Bytes> plain = core::tpm::ActivationProof(secret, "node-1");
  absl::StatusOr<Bytes> k1 =
      core::tpm::ActivationProofForKey(secret, "node-1", "spki-one");
  absl::StatusOr<Bytes> k2 =
      core::tpm::ActivationProofForKey(secret, "node-1", "spki-two");
  REQUIRE((plain.ok() && k1.ok() && k2.ok()));
  CHECK(k1->size() == 32);
  CHECK(*k1 != *plain);
  CHECK(*k1 != *k2);
  CHECK(*core::tpm::ActivationProofForKey(secret, "node-1", "spki-one") == *k1);
}

TEST_CASE(
    "onboarding: the agent-issuing CA certifies exactly the key it "
    "was given, for one agent",
    "[core][onboarding]") {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("issuer");
  REQUIRE(dir.ok());
  sdk::CaInitOptions init;
  init.dir = dir->Join("agent-ca");
  REQUIRE(sdk::InitCa(init).ok());
  absl::StatusOr<std::unique_ptr<sdk::AgentIssuer>> issuer =
      sdk::AgentIssuer::Load(init.dir);
  REQUIRE(issuer.ok());
  CHECK(!sdk::AgentIssuer::Load(dir->Join("missing")).ok());
  absl::StatusOr<sdk::KeyAndCsr> key = sdk::NewKeyAndCsr();
  REQUIRE(key.ok());
  const absl::Time now = absl::Now();
  absl::StatusOr<sdk::IssuedCertificate> cert =
      (*issuer)->Issue(key->spki_der, "t1", "node-1", absl::Seconds(30), now);
  REQUIRE(cert.ok());
  CHECK(cert->not_after == now + absl::Seconds(30));
  absl::StatusOr<std::pair<absl::Time, absl::Time>> validity =
      sdk::CertificateValidity(cert->chain_pem);
  REQUIRE(validity.ok());
  CHECK(validity->second - validity->first <= absl::Seconds(91));

  BioPtr bio(BIO_new_mem_buf(cert->chain_pem.data(),
                             static_cast<int>(cert->chain_pem.size())));
  X509Ptr leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  X509Ptr ca(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE((leaf && ca));
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(X509_get0_pubkey(leaf.get()), &der);
  REQUIRE(len > 0);
  CHECK(std::string(reinterpret_cast<char*>(der), len) == key->spki_der);
  OPENSSL_free(der);
  absl::StatusOr<Principal> who = PrincipalFromCertificate(leaf.get());
  REQUIRE(who.ok());
  REQUIRE(who->Agent().has_value());
  CHECK(who->Agent()->tenant == "t1");
  CHECK(who->Agent()->name == "node-1");
  // It chains to the agent CA.
  X509StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca.get());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  REQUIRE(X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr) ==
          1);
  CHECK(X509_verify_cert(ctx.get()) == 1);
  // Not a key at all: refused.
  CHECK(!(*issuer)->Issue("junk", "t1", "node-1", absl::Seconds(30), now).ok());
}

}  // namespace
}  // namespace vouch
