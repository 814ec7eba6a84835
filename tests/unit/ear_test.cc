// The EAR token builder and verifier (core/ear): claims, the state ->
// appraisal mapping, ES256 signing and verification, JWKS, and refusals of
// malformed, tampered, expired and foreign tokens.
#include "core/ear/ear.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/openssl_handle.h"
#include "nlohmann/json.hpp"
#include "vouch/v1/common.pb.h"

namespace vouch::core::ear {
namespace {

std::string NewKeyPem(const char* curve = "P-256") {
  EvpPkeyPtr key(EVP_EC_gen(curve));
  REQUIRE(key);
  BioPtr bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0,
                                   nullptr, nullptr) == 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

Result Passing() {
  Result r;
  r.agent_id = "node-1";
  r.tenant = "default";
  r.appraisal = Appraise(v1::ATTESTATION_STATE_PASS, {}, true, true);
  r.state = "pass";
  r.verifier_build = "vouch-verifier test v1";
  r.verdict_at = kNow - absl::Seconds(3);
  r.attestation_id = "att-1";
  r.issued_at = kNow;
  r.expires_at = kNow + absl::Minutes(5);
  return r;
}

std::string Part(const std::string& token, int i) {
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  REQUIRE(parts.size() == 3);
  std::string out;
  REQUIRE(absl::WebSafeBase64Unescape(parts[i], &out));
  return out;
}

TEST_CASE("appraisals follow the committed state", "[core][ear]") {
  Appraisal pass = Appraise(v1::ATTESTATION_STATE_PASS, {}, true, false);
  CHECK(pass.status == Status::kAffirming);
  CHECK(pass.vector.instance_identity == 2);
  CHECK(pass.vector.executables == 2);
  CHECK_FALSE(pass.vector.hardware.has_value());

  for (int state : std::vector<int>{v1::ATTESTATION_STATE_PENDING,
                                    v1::ATTESTATION_STATE_TIMEOUT,
                                    v1::ATTESTATION_STATE_UNENROLLED,
                                    v1::ATTESTATION_STATE_UNSPECIFIED, 77}) {
    Appraisal a = Appraise(state, {}, true, true);
    CHECK(a.status == Status::kNone);
    CHECK(a.vector == TrustVector{});
  }

  Appraisal ima =
      Appraise(v1::ATTESTATION_STATE_FAIL,
               {v1::FAILURE_CODE_IMA_DIGEST_NOT_ALLOWED}, true, true);
  CHECK(ima.status == Status::kContraindicated);
  CHECK(ima.vector.executables == 96);
  CHECK(ima.vector.instance_identity == 2);
  CHECK_FALSE(ima.vector.hardware.has_value());

  Appraisal quote = Appraise(v1::ATTESTATION_STATE_FAIL,
                             {v1::FAILURE_CODE_QUOTE_SIGNATURE_INVALID,
                              v1::FAILURE_CODE_BOOT_LOG_REPLAY_MISMATCH},
                             true, true);
  CHECK(quote.vector.instance_identity == 99);
  CHECK(quote.vector.hardware == 96);
  // A failure that names no claim is still contraindicated.
  CHECK(Appraise(v1::ATTESTATION_STATE_FAIL,
                 {v1::FAILURE_CODE_EVIDENCE_MISSING}, false, false)
            .status == Status::kContraindicated);

  CHECK(TierOf(0) == Status::kNone);
  CHECK(TierOf(31) == Status::kAffirming);
  CHECK(TierOf(32) == Status::kWarning);
  CHECK(TierOf(127) == Status::kContraindicated);
  CHECK_FALSE(TierOf(128).has_value());
}

TEST_CASE("a signed result verifies and carries the EAR claims",
          "[core][ear]") {
  absl::StatusOr<Signer> signer = Signer::FromPem(NewKeyPem());
  REQUIRE(signer.ok());
  Result in = Passing();
  in.nonce = "relying-party-nonce-1";
  absl::StatusOr<std::string> token = signer->Sign(in);
  REQUIRE(token.ok());

  nlohmann::json header = nlohmann::json::parse(Part(*token, 0));
  CHECK(header["alg"] == "ES256");
  CHECK(header["kid"] == signer->public_key().kid);
  // RFC 7518 3.4: raw r || s.
  CHECK(Part(*token, 2).size() == 64);
  nlohmann::json claims = nlohmann::json::parse(Part(*token, 1));
  CHECK(claims["eat_profile"] == kProfile);
  CHECK(claims["sub"] == "node-1");
  CHECK(claims["eat_nonce"] == "relying-party-nonce-1");
  CHECK(claims["ear.verifier-id"]["developer"] == "vouch");
  CHECK(claims["iat"] == absl::ToUnixSeconds(kNow));
  CHECK(claims["exp"] == absl::ToUnixSeconds(kNow) + 300);
  const nlohmann::json& sub = claims["submods"]["node-1"];
  CHECK(sub["ear.status"] == "affirming");
  CHECK(sub["ear.trustworthiness-vector"]["instance-identity"] == 2);
  CHECK(sub["ear.trustworthiness-vector"]["executables"] == 2);
  CHECK(sub["ear.trustworthiness-vector"]["hardware"] == 2);
  CHECK(sub["vouch.verdict-at"] == absl::ToUnixSeconds(kNow) - 3);

  KeySet keys({signer->public_key()});
  absl::StatusOr<KeySet> reparsed = KeySet::FromJwks(keys.ToJwks());
  REQUIRE(reparsed.ok());
  absl::StatusOr<Result> out = Verify(*token, *reparsed, kNow);
  REQUIRE(out.ok());
  CHECK(out->agent_id == "node-1");
  CHECK(out->tenant == "default");
  CHECK(out->nonce == in.nonce);
  CHECK(out->appraisal.status == Status::kAffirming);
  CHECK(out->appraisal.vector == in.appraisal.vector);
  CHECK(out->verdict_at == in.verdict_at);
  CHECK(out->attestation_id == "att-1");
}

TEST_CASE("tokens that are expired, foreign or tampered are refused",
          "[core][ear]") {
  absl::StatusOr<Signer> signer = Signer::FromPem(NewKeyPem());
  absl::StatusOr<Signer> other = Signer::FromPem(NewKeyPem());
  REQUIRE(signer.ok());
  REQUIRE(other.ok());
  KeySet keys({signer->public_key()});
  const std::string token = *signer->Sign(Passing());

  CHECK(absl::IsPermissionDenied(
      Verify(token, keys, kNow + absl::Minutes(5)).status()));
  CHECK(absl::IsPermissionDenied(
      Verify(token, keys, kNow - absl::Minutes(2)).status()));
  CHECK(absl::IsPermissionDenied(
      Verify(*other->Sign(Passing()), keys, kNow).status()));
  // Another key that claims the trusted kid.
  std::vector<std::string> forged =
      absl::StrSplit(*other->Sign(Passing()), '.');
  std::vector<std::string> good = absl::StrSplit(token, '.');
  CHECK(absl::IsPermissionDenied(
      Verify(absl::StrCat(good[0], ".", good[1], ".", forged[2]), keys, kNow)
          .status()));
  // A changed payload: contraindicated rewritten to affirming, say.
  Result changed = Passing();
  changed.agent_id = "node-2";
  std::vector<std::string> moved = absl::StrSplit(*signer->Sign(changed), '.');
  CHECK(absl::IsPermissionDenied(
      Verify(absl::StrCat(good[0], ".", moved[1], ".", good[2]), keys, kNow)
          .status()));
  // alg none / HS256 are never accepted.
  std::string none;
  absl::WebSafeBase64Escape(R"({"alg":"none"})", &none);
  CHECK(absl::IsInvalidArgument(
      Verify(absl::StrCat(none, ".", good[1], "."), keys, kNow).status()));
  for (const char* bad : {"", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.e30"}) {
    CHECK_FALSE(Verify(bad, keys, kNow).ok());
  }
  CHECK(absl::IsInvalidArgument(
      Verify(std::string(kMaxTokenBytes + 1, 'a'), keys, kNow).status()));
}

TEST_CASE("keys: P-256 only, kid is the thumbprint, JWKS bounded",
          "[core][ear]") {
  CHECK(absl::IsInvalidArgument(Signer::FromPem(NewKeyPem("P-384")).status()));
  CHECK(absl::IsInvalidArgument(Signer::FromPem("not a key").status()));
  absl::StatusOr<Signer> signer = Signer::FromPem(NewKeyPem());
  REQUIRE(signer.ok());
  // The same key read from its private PEM twice has the same kid.
  CHECK(signer->public_key().kid.size() == 43);
  nlohmann::json jwk = nlohmann::json::parse(signer->public_key().jwk_json);
  CHECK(jwk["kty"] == "EC");
  CHECK(jwk["crv"] == "P-256");
  jwk["kid"] = "someone-else";
  CHECK_FALSE(KeySet::FromJwks(nlohmann::json{{"keys", {jwk}}}.dump()).ok());
  jwk.erase("kid");
  jwk["x"] = jwk["y"];  // not on the curve (almost surely)
  CHECK_FALSE(KeySet::FromJwks(nlohmann::json{{"keys", {jwk}}}.dump()).ok());
  // Non-EC keys are skipped, garbage is refused, depth and count bounded.
  absl::StatusOr<KeySet> rsa =
      KeySet::FromJwks(R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]})");
  REQUIRE(rsa.ok());
  CHECK(rsa->keys().empty());
  CHECK_FALSE(KeySet::FromJwks("[]").ok());
  CHECK_FALSE(KeySet::FromJwks(R"({"keys":{}})").ok());
  CHECK_FALSE(KeySet::FromJwks(std::string(100, '[')).ok());
  nlohmann::json many = {{"keys", nlohmann::json::array()}};
  for (int i = 0; i < 17; ++i) many["keys"].push_back({{"kty", "oct"}});
  CHECK_FALSE(KeySet::FromJwks(many.dump()).ok());
}

TEST_CASE("relying-party nonces are bounded", "[core][ear]") {
  CHECK(ValidateNonce("12345678").ok());
  CHECK(ValidateNonce(std::string(64, 'n')).ok());
  CHECK_FALSE(ValidateNonce("1234567").ok());
  CHECK_FALSE(ValidateNonce(std::string(65, 'n')).ok());
  CHECK_FALSE(ValidateNonce("with space").ok());
  CHECK_FALSE(ValidateNonce(std::string("nul\0byte!", 9)).ok());
}

}  // namespace
}  // namespace vouch::core::ear
