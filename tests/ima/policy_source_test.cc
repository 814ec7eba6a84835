// The pure rules of runtime policies fetched from a URL
// (core/ima/policy_source.h): addresses, refresh periods, the downgrade
// rule, and reading a fetched document against trusted keys, with
// Keylime's own signed policy and its public key (tests/data/keylime).
#include "core/ima/policy_source.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"

namespace vouch::core::ima {
namespace {

std::string Read(const std::string& name) {
  std::ifstream in(std::string(VOUCH_TEST_DATA_DIR) + "/keylime/" + name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_CASE("policy source: only https addresses without credentials",
          "[core][policy]") {
  CHECK(ValidatePolicyUrl("https://example.org/policy.json").ok());
  CHECK(ValidatePolicyUrl("HTTPS://127.0.0.1:8443/p?x=1").ok());
  for (const char* bad :
       {"http://example.org/p", "ftp://example.org/p", "file:///etc/passwd",
        "https://", "https:///path", "https://user:pw@example.org/p",
        "https://exa mple.org/p", "https://example.org/\n", "example.org/p",
        ""}) {
    INFO(bad);
    CHECK(absl::IsInvalidArgument(ValidatePolicyUrl(bad)));
  }
  CHECK(absl::IsInvalidArgument(ValidatePolicyUrl(
      "https://example.org/" + std::string(kMaxPolicyUrlBytes, 'a'))));
  // An '@' after the host is part of the path, not credentials.
  CHECK(ValidatePolicyUrl("https://example.org/a@b").ok());
}

TEST_CASE("policy source: refresh is 0 or within the documented bounds",
          "[core][policy]") {
  CHECK(ValidatePolicyRefresh(absl::ZeroDuration()).ok());
  CHECK(ValidatePolicyRefresh(kMinPolicyRefresh).ok());
  CHECK(ValidatePolicyRefresh(absl::Hours(1)).ok());
  CHECK(ValidatePolicyRefresh(kMaxPolicyRefresh).ok());
  CHECK(
      absl::IsInvalidArgument(ValidatePolicyRefresh(absl::Milliseconds(999))));
  CHECK(absl::IsInvalidArgument(
      ValidatePolicyRefresh(kMaxPolicyRefresh + absl::Seconds(1))));
  CHECK(absl::IsInvalidArgument(ValidatePolicyRefresh(-absl::Seconds(5))));
}

TEST_CASE(
    "policy source: a lower release is a downgrade, equal or higher "
    "is accepted",
    "[core][policy]") {
  CHECK(CheckRelease(3, 2).ok());
  CHECK(CheckRelease(2, 2).ok());
  CHECK(CheckRelease(0, 0).ok());
  const absl::Status down = CheckRelease(1, 2);
  CHECK(absl::IsFailedPrecondition(down));
  CHECK(absl::StrContains(down.message(), "downgrade"));
  CHECK(absl::IsFailedPrecondition(CheckRelease(-1, 0)));
}

TEST_CASE("policy source: fetched documents are read against trusted keys",
          "[core][policy]") {
  const std::string signed_doc = Read("runtime-policy-test-signed.json");
  const std::string bad_doc = Read("runtime-policy-test-signed-bad.json");
  const std::string bare = Read("runtime-policy-test.json");
  const TrustedPolicyKey keylime{"keylime", Read("runtime-policy-pubkey.pub")};
  const TrustedPolicyKey other{"other", Read("rsa2048pub.pem")};
  REQUIRE(!signed_doc.empty());
  constexpr size_t kMax = 16 << 20;

  absl::StatusOr<FetchedPolicy> ok =
      ReadFetchedPolicy(signed_doc, {other, keylime}, true, kMax);
  REQUIRE(ok.ok());
  CHECK(ok->signed_by_key);
  CHECK(ok->key_id == "keylime");
  CHECK(ok->release == 0);
  CHECK(absl::StrContains(ok->policy, "\"digests\""));

  // The wrong key, a tampered envelope, no key at all.
  CHECK(absl::IsInvalidArgument(
      ReadFetchedPolicy(signed_doc, {other}, false, kMax).status()));
  CHECK(absl::IsInvalidArgument(
      ReadFetchedPolicy(bad_doc, {keylime}, false, kMax).status()));
  const absl::Status none =
      ReadFetchedPolicy(signed_doc, {}, false, kMax).status();
  CHECK(absl::IsInvalidArgument(none));
  CHECK(absl::StrContains(none.message(), "no policy-signing key"));

  // A bare policy: only when no signature is required.
  absl::StatusOr<FetchedPolicy> plain =
      ReadFetchedPolicy(bare, {keylime}, false, kMax);
  REQUIRE(plain.ok());
  CHECK(!plain->signed_by_key);
  CHECK(absl::IsFailedPrecondition(
      ReadFetchedPolicy(bare, {keylime}, true, kMax).status()));

  // The release number is the top-level "release".
  const std::string release7 =
      absl::StrReplaceAll(bare, {{"\"release\": 0", "\"release\": 7"}});
  REQUIRE(release7 != bare);
  absl::StatusOr<FetchedPolicy> r7 =
      ReadFetchedPolicy(release7, {}, false, kMax);
  REQUIRE(r7.ok());
  CHECK(r7->release == 7);

  // Oversized, empty and malformed documents.
  CHECK(absl::IsInvalidArgument(
      ReadFetchedPolicy(bare, {}, false, bare.size() - 1).status()));
  CHECK(
      absl::IsInvalidArgument(ReadFetchedPolicy("", {}, false, kMax).status()));
  for (const char* junk :
       {"{", "[]", "{\"meta\": {\"version\": 2}}", "not json",
        "{\"release\": \"x\", \"meta\": "
        "{\"version\": 1}}"}) {
    INFO(junk);
    CHECK(absl::IsInvalidArgument(
        ReadFetchedPolicy(junk, {}, false, kMax).status()));
  }
}

}  // namespace
}  // namespace vouch::core::ima
