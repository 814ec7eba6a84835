#include "core/ear/ear.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/openssl_handle.h"
#include "common/status_macros.h"
#include "core/ear/json_internal.h"
#include "nlohmann/json.hpp"
#include "vouch/v1/common.pb.h"

namespace vouch::core::ear {
namespace {

using Json = nlohmann::json;
using internal::Integer;
using internal::Member;
using internal::ParseObject;
using internal::String;
using EcdsaSigPtr = CHandle<ECDSA_SIG, ECDSA_SIG_free>;
using ParamBldPtr = CHandle<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using ParamPtr = CHandle<OSSL_PARAM, OSSL_PARAM_free>;

constexpr size_t kCoordBytes = 32;  // P-256
constexpr char kDigestName[] = "SHA256";

std::shared_ptr<void> Share(EvpPkeyPtr key) {
  return std::shared_ptr<void>(
      key.release(), [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
}

EVP_PKEY* Pkey(const std::shared_ptr<void>& p) {
  return static_cast<EVP_PKEY*>(p.get());
}

std::string B64(absl::string_view bytes) {
  std::string out;
  absl::WebSafeBase64Escape(bytes, &out);  // unpadded (RFC 7515 2)
  return out;
}

// RFC 7515 2: base64url without padding; anything else is refused.
absl::StatusOr<std::string> UnB64(absl::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_') {
      return absl::InvalidArgumentError("token: not base64url");
    }
  }
  std::string out;
  if (!absl::WebSafeBase64Unescape(text, &out)) {
    return absl::InvalidArgumentError("token: not base64url");
  }
  return out;
}

// The vector's claims by their AR4SI names, in the order of the draft.
std::vector<std::pair<const char*, std::optional<int> TrustVector::*>>
Claims() {
  return {{"instance-identity", &TrustVector::instance_identity},
          {"configuration", &TrustVector::configuration},
          {"executables", &TrustVector::executables},
          {"file-system", &TrustVector::file_system},
          {"hardware", &TrustVector::hardware},
          {"runtime-opaque", &TrustVector::runtime_opaque},
          {"storage-opaque", &TrustVector::storage_opaque},
          {"sourced-data", &TrustVector::sourced_data}};
}

absl::StatusOr<EvpPkeyPtr> PkeyFromCoordinates(absl::string_view x,
                                               absl::string_view y) {
  if (x.size() != kCoordBytes || y.size() != kCoordBytes) {
    return absl::InvalidArgumentError("jwk: x and y must be 32 bytes");
  }
  std::string point = absl::StrCat("\x04", x, y);
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                       "prime256v1", 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY,
                                        point.data(), point.size())) {
    return absl::InternalError("OSSL_PARAM_BLD");
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) !=
          1) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError("jwk: not a point on P-256");
  }
  EvpPkeyPtr key(raw);
  // fromdata does not check that the point lies on the curve.
  EvpPkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError("jwk: not a point on P-256");
  }
  return key;
}

// The RFC 7638 thumbprint and the JWK of a P-256 key.
absl::StatusOr<PublicKey> Describe(EvpPkeyPtr key) {
  char group[64] = {};
  size_t group_len = 0;
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC ||
      EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                     group, sizeof(group), &group_len) != 1 ||
      absl::string_view(group, group_len) != "prime256v1") {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError("key: not an ECDSA P-256 key");
  }
  BIGNUM* bx = nullptr;
  BIGNUM* by = nullptr;
  EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_X, &bx);
  EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &by);
  BignumPtr x(bx), y(by);
  std::string xs(kCoordBytes, '\0'), ys(kCoordBytes, '\0');
  if (!x || !y ||
      BN_bn2binpad(x.get(), reinterpret_cast<unsigned char*>(xs.data()),
                   kCoordBytes) != static_cast<int>(kCoordBytes) ||
      BN_bn2binpad(y.get(), reinterpret_cast<unsigned char*>(ys.data()),
                   kCoordBytes) != static_cast<int>(kCoordBytes)) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError("key: no public point");
  }
  // RFC 7638 3.2: the required members, lexicographic, no whitespace.
  const std::string canonical =
      absl::StrCat(R"({"crv":"P-256","kty":"EC","x":")", B64(xs), R"(","y":")",
                   B64(ys), R"("})");
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(canonical.data()),
         canonical.size(), digest);
  PublicKey out;
  out.kid =
      B64(absl::string_view(reinterpret_cast<char*>(digest), sizeof(digest)));
  Json jwk = {{"kty", "EC"},   {"crv", "P-256"}, {"x", B64(xs)},
              {"y", B64(ys)},  {"kid", out.kid}, {"use", "sig"},
              {"alg", "ES256"}};
  out.jwk_json = jwk.dump();
  out.pkey = Share(std::move(key));
  return out;
}

absl::StatusOr<PublicKey> FromJwk(const Json& jwk) {
  if (!jwk.is_object() || String(jwk, "kty") != "EC" ||
      String(jwk, "crv") != "P-256") {
    return absl::InvalidArgumentError("jwk: not an EC P-256 key");
  }
  std::optional<std::string> x = String(jwk, "x");
  std::optional<std::string> y = String(jwk, "y");
  if (!x || !y) return absl::InvalidArgumentError("jwk: x and y missing");
  VOUCH_ASSIGN_OR_RETURN(std::string xb, UnB64(*x));
  VOUCH_ASSIGN_OR_RETURN(std::string yb, UnB64(*y));
  VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr key, PkeyFromCoordinates(xb, yb));
  VOUCH_ASSIGN_OR_RETURN(PublicKey out, Describe(std::move(key)));
  // A kid that is not the thumbprint would let one key pose as another.
  std::optional<std::string> kid = String(jwk, "kid");
  if (kid && *kid != out.kid) {
    return absl::InvalidArgumentError("jwk: kid is not the key's thumbprint");
  }
  return out;
}

int64_t Seconds(absl::Time t) { return absl::ToUnixSeconds(t); }

}  // namespace

absl::string_view StatusName(Status status) {
  switch (status) {
    case Status::kAffirming:
      return "affirming";
    case Status::kWarning:
      return "warning";
    case Status::kContraindicated:
      return "contraindicated";
    case Status::kNone:
      break;
  }
  return "none";
}

std::optional<Status> ParseStatus(absl::string_view name) {
  for (Status s : {Status::kNone, Status::kAffirming, Status::kWarning,
                   Status::kContraindicated}) {
    if (StatusName(s) == name) return s;
  }
  return std::nullopt;
}

std::optional<Status> TierOf(int value) {
  if (value >= -1 && value <= 1) return Status::kNone;
  if (value >= 2 && value <= 31) return Status::kAffirming;
  if (value >= 32 && value <= 95) return Status::kWarning;
  if (value >= 96 && value <= 127) return Status::kContraindicated;
  return std::nullopt;
}

Appraisal Appraise(int state, const std::vector<int>& failure_codes,
                   bool runtime_policy, bool boot_policy) {
  Appraisal a;
  if (state == v1::ATTESTATION_STATE_PASS) {
    a.status = Status::kAffirming;
    a.vector.instance_identity = kAffirming;
    if (runtime_policy) a.vector.executables = kAffirming;
    if (boot_policy) a.vector.hardware = kAffirming;
    return a;
  }
  if (state != v1::ATTESTATION_STATE_FAIL) return a;  // none, no claims
  a.status = Status::kContraindicated;
  bool quote_failed = false;
  for (int code : failure_codes) {
    if (code >= 100 && code < 200) {
      quote_failed = true;
      // Clock failures are recognised evidence in a contraindicated state;
      // the rest failed cryptographic validation.
      a.vector.instance_identity =
          code == v1::FAILURE_CODE_CLOCK_NOT_SAFE ||
                  code == v1::FAILURE_CODE_CLOCK_ROLLBACK
              ? kContraindicated
              : kCryptoFailed;
    } else if (code >= 200 && code < 300) {
      a.vector.hardware = kContraindicated;  // PCR values: firmware, boot
    } else if (code >= 300 && code < 400) {
      a.vector.executables = kContraindicated;
    } else if (code >= 400 && code < 500) {
      a.vector.hardware = kContraindicated;
    }
  }
  if (!quote_failed) a.vector.instance_identity = kAffirming;
  return a;
}

absl::Status ValidateNonce(absl::string_view nonce) {
  if (nonce.size() < kMinNonceBytes || nonce.size() > kMaxNonceBytes ||
      !std::all_of(nonce.begin(), nonce.end(),
                   [](char c) { return c > 0x20 && c < 0x7f; })) {
    return absl::InvalidArgumentError(
        "nonce: 8..64 printable ASCII characters");
  }
  return absl::OkStatus();
}

std::string ClaimsJson(const Result& r) {
  Json vector = Json::object();
  for (const auto& [name, member] : Claims()) {
    if (r.appraisal.vector.*member)
      vector[name] = *(r.appraisal.vector.*member);
  }
  Json submod = {{"ear.status", std::string(StatusName(r.appraisal.status))},
                 {"ear.trustworthiness-vector", vector},
                 {"vouch.state", r.state}};
  if (r.verdict_at) submod["vouch.verdict-at"] = Seconds(*r.verdict_at);
  if (!r.attestation_id.empty()) {
    submod["vouch.attestation-id"] = r.attestation_id;
  }
  Json claims = {
      {"eat_profile", kProfile},
      {"iat", Seconds(r.issued_at)},
      {"exp", Seconds(r.expires_at)},
      {"sub", r.agent_id},
      {"vouch.tenant", r.tenant},
      {"ear.verifier-id",
       {{"developer", kDeveloper}, {"build", r.verifier_build}}},
      {"submods", {{r.agent_id, submod}}},
  };
  if (!r.nonce.empty()) claims["eat_nonce"] = r.nonce;
  // Strings from parsed input are valid UTF-8; replace, never throw.
  return claims.dump(-1, ' ', false, Json::error_handler_t::replace);
}

absl::StatusOr<Result> ParseClaims(absl::string_view json) {
  if (json.size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError("claims: too large");
  }
  VOUCH_ASSIGN_OR_RETURN(Json j, ParseObject(json, "claims"));
  if (String(j, "eat_profile") != kProfile) {
    return absl::InvalidArgumentError("claims: eat_profile is not EAR");
  }
  Result r;
  std::optional<int64_t> iat = Integer(j, "iat");
  std::optional<int64_t> exp = Integer(j, "exp");
  std::optional<std::string> sub = String(j, "sub");
  if (!iat || !exp || !sub || sub->empty()) {
    return absl::InvalidArgumentError("claims: iat, exp and sub required");
  }
  r.issued_at = absl::FromUnixSeconds(*iat);
  r.expires_at = absl::FromUnixSeconds(*exp);
  r.agent_id = *sub;
  r.tenant = String(j, "vouch.tenant").value_or("");
  if (const Json* nonce = Member(j, "eat_nonce")) {
    if (!nonce->is_string()) {
      return absl::InvalidArgumentError("claims: eat_nonce not a string");
    }
    r.nonce = nonce->get<std::string>();
  }
  const Json* vid = Member(j, "ear.verifier-id");
  if (vid == nullptr || !vid->is_object() || !String(*vid, "build") ||
      !String(*vid, "developer")) {
    return absl::InvalidArgumentError("claims: ear.verifier-id required");
  }
  r.verifier_build = *String(*vid, "build");
  const Json* submods = Member(j, "submods");
  if (submods == nullptr || !submods->is_object() || submods->size() != 1 ||
      submods->begin().key() != r.agent_id ||
      !submods->begin().value().is_object()) {
    return absl::InvalidArgumentError(
        "claims: submods must hold one appraisal named by sub");
  }
  const Json& appraisal = submods->begin().value();
  std::optional<std::string> status = String(appraisal, "ear.status");
  std::optional<Status> parsed = status ? ParseStatus(*status) : std::nullopt;
  if (!parsed) return absl::InvalidArgumentError("claims: bad ear.status");
  r.appraisal.status = *parsed;
  if (const Json* tv = Member(appraisal, "ear.trustworthiness-vector")) {
    if (!tv->is_object()) {
      return absl::InvalidArgumentError("claims: bad trustworthiness vector");
    }
    for (const auto& [name, member] : Claims()) {
      const Json* v = Member(*tv, name);
      if (v == nullptr) continue;
      if (!v->is_number_integer() || v->get<int64_t>() < -128 ||
          v->get<int64_t>() > 127) {
        return absl::InvalidArgumentError(
            absl::StrCat("claims: bad trust claim ", name));
      }
      r.appraisal.vector.*member = static_cast<int>(v->get<int64_t>());
    }
  }
  r.state = String(appraisal, "vouch.state").value_or("");
  if (std::optional<int64_t> at = Integer(appraisal, "vouch.verdict-at")) {
    r.verdict_at = absl::FromUnixSeconds(*at);
  }
  r.attestation_id = String(appraisal, "vouch.attestation-id").value_or("");
  return r;
}

absl::StatusOr<PublicKey> PublicKeyFromPem(absl::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return absl::InternalError("BIO_new_mem_buf");
  EvpPkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    BIO_reset(bio.get());
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert) key.reset(X509_get_pubkey(cert.get()));
  }
  if (!key) {
    BIO_reset(bio.get());
    key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  }
  DrainOpenSslErrors();
  if (!key) return absl::InvalidArgumentError("key: not a PEM key");
  return Describe(std::move(key));
}

absl::StatusOr<KeySet> KeySet::FromJwks(absl::string_view json) {
  if (json.size() > kMaxJwksBytes) {
    return absl::InvalidArgumentError("jwks: larger than 64 KiB");
  }
  VOUCH_ASSIGN_OR_RETURN(Json j, ParseObject(json, "jwks"));
  const Json* keys = Member(j, "keys");
  if (keys == nullptr || !keys->is_array()) {
    return absl::InvalidArgumentError("jwks: no \"keys\" array");
  }
  if (keys->size() > kMaxJwksKeys) {
    return absl::InvalidArgumentError("jwks: more than 16 keys");
  }
  std::vector<PublicKey> out;
  for (const Json& k : *keys) {
    if (!k.is_object() || String(k, "kty") != "EC") continue;  // not ours
    VOUCH_ASSIGN_OR_RETURN(PublicKey key, FromJwk(k));
    out.push_back(std::move(key));
  }
  return KeySet(std::move(out));
}

std::string KeySet::ToJwks() const {
  Json keys = Json::array();
  for (const PublicKey& k : keys_) {
    keys.push_back(Json::parse(k.jwk_json, nullptr, false));
  }
  return Json{{"keys", keys}}.dump();
}

const PublicKey* KeySet::Find(absl::string_view kid) const {
  for (const PublicKey& k : keys_) {
    if (k.kid == kid) return &k;
  }
  return nullptr;
}

absl::StatusOr<Signer> Signer::FromPem(absl::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return absl::InternalError("BIO_new_mem_buf");
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  DrainOpenSslErrors();
  if (!key) return absl::InvalidArgumentError("results key: not a PEM key");
  Signer s;
  EVP_PKEY_up_ref(key.get());
  s.pkey_ = Share(EvpPkeyPtr(key.get()));
  VOUCH_ASSIGN_OR_RETURN(s.public_, Describe(std::move(key)));
  return s;
}

absl::StatusOr<std::string> Signer::Sign(const Result& r) const {
  return SignClaims(ClaimsJson(r));
}

absl::StatusOr<std::string> Signer::SignClaims(
    absl::string_view claims_json) const {
  const std::string header =
      Json{{"alg", "ES256"}, {"typ", "JWT"}, {"kid", public_.kid}}.dump();
  const std::string input = absl::StrCat(B64(header), ".", B64(claims_json));
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  size_t der_len = 0;
  if (!md ||
      EVP_DigestSignInit_ex(md.get(), nullptr, kDigestName, nullptr, nullptr,
                            Pkey(pkey_), nullptr) != 1 ||
      EVP_DigestSign(md.get(), nullptr, &der_len,
                     reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1) {
    DrainOpenSslErrors();
    return absl::InternalError("ES256 sign");
  }
  std::string der(der_len, '\0');
  if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(der.data()),
                     &der_len,
                     reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1) {
    DrainOpenSslErrors();
    return absl::InternalError("ES256 sign");
  }
  // RFC 7518 3.4: the JWS signature is r || s, each 32 bytes big-endian.
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  std::string raw(2 * kCoordBytes, '\0');
  unsigned char* out = reinterpret_cast<unsigned char*>(raw.data());
  if (!sig ||
      BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, kCoordBytes) !=
          static_cast<int>(kCoordBytes) ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + kCoordBytes,
                   kCoordBytes) != static_cast<int>(kCoordBytes)) {
    DrainOpenSslErrors();
    return absl::InternalError("ES256 signature encoding");
  }
  return absl::StrCat(input, ".", B64(raw));
}

absl::StatusOr<Result> Verify(absl::string_view token, const KeySet& keys,
                              absl::Time now) {
  VOUCH_ASSIGN_OR_RETURN(std::string claims_text, VerifySignature(token, keys));
  VOUCH_ASSIGN_OR_RETURN(Result result, ParseClaims(claims_text));
  if (result.expires_at <= now) {
    return absl::PermissionDeniedError("token: expired");
  }
  if (result.issued_at > now + absl::Minutes(1)) {
    return absl::PermissionDeniedError("token: issued in the future");
  }
  return result;
}

absl::StatusOr<std::string> VerifySignature(absl::string_view token,
                                            const KeySet& keys) {
  if (token.size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError("token: larger than 16 KiB");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) {
    return absl::InvalidArgumentError("token: not a compact JWS");
  }
  VOUCH_ASSIGN_OR_RETURN(std::string header_text, UnB64(parts[0]));
  VOUCH_ASSIGN_OR_RETURN(Json header, ParseObject(header_text, "header"));
  // RFC 8725 3.1: the algorithm is fixed, never taken from the token.
  if (String(header, "alg") != "ES256") {
    return absl::InvalidArgumentError("token: alg is not ES256");
  }
  if (Member(header, "crit") != nullptr) {
    return absl::InvalidArgumentError("token: unsupported crit header");
  }
  std::optional<std::string> kid = String(header, "kid");
  const PublicKey* key = kid ? keys.Find(*kid) : nullptr;
  if (key == nullptr) {
    return absl::PermissionDeniedError("token: signed by an unknown key");
  }
  VOUCH_ASSIGN_OR_RETURN(std::string raw, UnB64(parts[2]));
  if (raw.size() != 2 * kCoordBytes) {
    return absl::InvalidArgumentError("token: ES256 signature is 64 bytes");
  }
  const auto* rs = reinterpret_cast<const unsigned char*>(raw.data());
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(rs, kCoordBytes, nullptr);
  BIGNUM* s = BN_bin2bn(rs + kCoordBytes, kCoordBytes, nullptr);
  if (!sig || r == nullptr || s == nullptr ||
      ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return absl::InternalError("ECDSA_SIG");
  }
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0) return absl::InternalError("i2d_ECDSA_SIG");
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> der_owner(
      der, [](unsigned char* p) { OPENSSL_free(p); });
  const absl::string_view input =
      token.substr(0, parts[0].size() + 1 + parts[1].size());
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  const bool good =
      md &&
      EVP_DigestVerifyInit_ex(md.get(), nullptr, kDigestName, nullptr, nullptr,
                              Pkey(key->pkey), nullptr) == 1 &&
      EVP_DigestVerify(md.get(), der, static_cast<size_t>(der_len),
                       reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) == 1;
  DrainOpenSslErrors();
  if (!good) return absl::PermissionDeniedError("token: bad signature");
  return UnB64(parts[1]);
}

}  // namespace vouch::core::ear
