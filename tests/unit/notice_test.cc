// Action notices (core/ear/notice.h): signed with the results key, checked
// for signature, audience, expiry and shape; refusals of tampered, foreign,
// misaddressed, expired and malformed notices.
#include "core/ear/notice.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/openssl_handle.h"

namespace vouch::core::ear {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

Signer NewSigner() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  REQUIRE(key);
  BioPtr bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0,
                                   nullptr, nullptr) == 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  absl::StatusOr<Signer> s =
      Signer::FromPem(std::string(data, static_cast<size_t>(len)));
  REQUIRE(s.ok());
  return *std::move(s);
}

Notice PeerFailure() {
  Notice n;
  n.event_id = "812-3";
  n.kind = NoticeKind::kPeerFailure;
  n.subject = "node-2";
  n.audience = "node-1";
  n.tenant = "default";
  n.state = "FAIL";
  n.previous_state = "PASS";
  n.changed_at = kNow - absl::Seconds(1);
  n.issued_at = kNow;
  n.expires_at = kNow + absl::Minutes(5);
  return n;
}

// `token` with its claims replaced by `claims` (signature kept).
std::string WithClaims(const std::string& token, const std::string& claims) {
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  REQUIRE(parts.size() == 3);
  std::string b64;
  absl::WebSafeBase64Escape(claims, &b64);
  return absl::StrCat(parts[0], ".", b64, ".", parts[2]);
}

TEST_CASE("a signed notice verifies for its audience", "[core][actions]") {
  Signer signer = NewSigner();
  KeySet keys({signer.public_key()});
  absl::StatusOr<std::string> token = SignNotice(signer, PeerFailure());
  REQUIRE(token.ok());
  absl::StatusOr<Notice> n = VerifyNotice(*token, keys, "node-1", kNow);
  REQUIRE(n.ok());
  CHECK(n->event_id == "812-3");
  CHECK(n->kind == NoticeKind::kPeerFailure);
  CHECK(n->subject == "node-2");
  CHECK(n->audience == "node-1");
  CHECK(n->tenant == "default");
  CHECK(n->state == "FAIL");
  CHECK(n->previous_state == "PASS");
  CHECK(n->changed_at == kNow - absl::Seconds(1));
  CHECK(n->expires_at == kNow + absl::Minutes(5));
  // The claims round-trip (what an action reads on stdin).
  absl::StatusOr<Notice> again = ParseNoticeClaims(NoticeClaimsJson(*n));
  REQUIRE(again.ok());
  CHECK(again->subject == "node-2");
}

TEST_CASE("notices are refused", "[core][actions]") {
  Signer signer = NewSigner();
  Signer other = NewSigner();
  KeySet keys({signer.public_key()});
  const std::string token = *SignNotice(signer, PeerFailure());

  SECTION("for another agent") {
    absl::StatusOr<Notice> n = VerifyNotice(token, keys, "node-3", kNow);
    CHECK(absl::IsPermissionDenied(n.status()));
  }
  SECTION("signed by another key") {
    const std::string foreign = *SignNotice(other, PeerFailure());
    CHECK(absl::IsPermissionDenied(
        VerifyNotice(foreign, keys, "node-1", kNow).status()));
  }
  SECTION("expired, or issued in the future") {
    CHECK(absl::IsPermissionDenied(
        VerifyNotice(token, keys, "node-1", kNow + absl::Minutes(5)).status()));
    CHECK(absl::IsPermissionDenied(
        VerifyNotice(token, keys, "node-1", kNow - absl::Minutes(2)).status()));
  }
  SECTION("with claims changed after signing") {
    Notice n = PeerFailure();
    n.audience = "node-3";
    const std::string tampered = WithClaims(token, NoticeClaimsJson(n));
    CHECK(absl::IsPermissionDenied(
        VerifyNotice(tampered, keys, "node-3", kNow).status()));
  }
  SECTION("an EAR result is not a notice") {
    Result r;
    r.agent_id = "node-1";
    r.tenant = "default";
    r.verifier_build = "v";
    r.issued_at = kNow;
    r.expires_at = kNow + absl::Minutes(5);
    const std::string ear = *signer.Sign(r);
    CHECK(absl::IsInvalidArgument(
        VerifyNotice(ear, keys, "node-1", kNow).status()));
  }
  SECTION("garbage") {
    for (const char* bad : {"", ".", "..", "a.b.c", "x.y", "%%%.%%%.%%%"}) {
      CHECK_FALSE(VerifyNotice(bad, keys, "node-1", kNow).ok());
    }
  }
}

TEST_CASE("notice claims are checked", "[core][actions]") {
  Notice n = PeerFailure();
  CHECK(ParseNoticeClaims(NoticeClaimsJson(n)).ok());
  SECTION("kind must match subject and audience") {
    n.kind = NoticeKind::kOwnFailure;  // but sub != aud
    CHECK(absl::IsInvalidArgument(
        ParseNoticeClaims(NoticeClaimsJson(n)).status()));
    n.subject = n.audience;
    CHECK(ParseNoticeClaims(NoticeClaimsJson(n)).ok());
  }
  SECTION("every member present and bounded") {
    n.tenant = std::string(kMaxNoticeFieldBytes + 1, 't');
    CHECK(absl::IsInvalidArgument(
        ParseNoticeClaims(NoticeClaimsJson(n)).status()));
    for (const char* json :
         {"{}", "[]", "null", R"({"vouch.kind":"own-failure"})",
          R"({"vouch.kind":"other","jti":"1","sub":"a","aud":"a"})",
          R"({"vouch.kind":"own-failure","jti":"1","sub":"a","aud":"a",
             "vouch.tenant":"t","vouch.state":"FAIL",
             "vouch.previous-state":"PASS","vouch.changed-at":-5,
             "iat":1,"exp":2})",
          "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
          "]"}) {
      CHECK_FALSE(ParseNoticeClaims(json).ok());
    }
  }
}

}  // namespace
}  // namespace vouch::core::ear
