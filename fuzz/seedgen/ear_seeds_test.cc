// The checked-in seeds of fuzz_ear_token reach what they were made for: the
// token seeds verify against the target's JWKS at its fixed time (so the
// fuzzer starts past the signature, inside the claims), the JWKS seed
// parses, and a flipped signature bit is refused.
#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "common/file.h"
#include "core/ear/ear.h"
#include "core/ear/notice.h"

namespace vouch::fuzzing {
namespace {

#include "fuzz_ear_token_jwks.inc"

const std::string kCorpus =
    std::string(VOUCH_SOURCE_DIR) + "/fuzz/corpus/ear_token/";
const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);  // the target's

std::string Seed(const std::string& name) {
  absl::StatusOr<std::string> text = ReadFileUpTo(kCorpus + name, 1 << 16);
  INFO(name << ": " << text.status().ToString());
  REQUIRE(text.ok());
  return *text;
}

TEST_CASE("fuzz seeds: ear_token seeds verify into their claims", "[core]") {
  absl::StatusOr<core::ear::KeySet> keys =
      core::ear::KeySet::FromJwks(kEarFuzzJwks);
  REQUIRE(keys.ok());
  REQUIRE(keys->keys().size() == 1);
  absl::StatusOr<core::ear::KeySet> seed_keys =
      core::ear::KeySet::FromJwks(Seed("jwks"));
  REQUIRE(seed_keys.ok());
  CHECK(seed_keys->keys().size() == 1);
  CHECK(core::ear::ParseClaims(Seed("claims")).ok());
  for (const char* name :
       {"token-affirming", "token-contraindicated", "token-none"}) {
    INFO(name << ": rerun fuzz/seedgen/make_ear_seeds.py");
    absl::StatusOr<core::ear::Result> r =
        core::ear::Verify(Seed(name), *keys, kNow);
    INFO(r.status().ToString());
    CHECK(r.ok());
  }
  std::string token = Seed("token-affirming");
  token[token.size() - 2] = token[token.size() - 2] == 'A' ? 'B' : 'A';
  CHECK(
      absl::IsPermissionDenied(core::ear::Verify(token, *keys, kNow).status()));
}

// The seeds of fuzz_action_notice (fuzz/seedgen/make_notice_seeds.py), the
// same way: they verify for node-1 at the target's time.
TEST_CASE("fuzz seeds: action_notice seeds verify into their claims",
          "[core][actions]") {
  absl::StatusOr<core::ear::KeySet> keys =
      core::ear::KeySet::FromJwks(kEarFuzzJwks);
  REQUIRE(keys.ok());
  const std::string dir =
      std::string(VOUCH_SOURCE_DIR) + "/fuzz/corpus/action_notice/";
  absl::StatusOr<std::string> claims = ReadFileUpTo(dir + "claims", 1 << 16);
  REQUIRE(claims.ok());
  CHECK(core::ear::ParseNoticeClaims(*claims).ok());
  for (const char* name : {"own-failure", "peer-failure"}) {
    INFO(name << ": rerun fuzz/seedgen/make_notice_seeds.py");
    absl::StatusOr<std::string> token = ReadFileUpTo(dir + name, 1 << 16);
    REQUIRE(token.ok());
    absl::StatusOr<core::ear::Notice> n =
        core::ear::VerifyNotice(*token, *keys, "node-1", kNow);
    INFO(n.status().ToString());
    CHECK(n.ok());
  }
}

}  // namespace
}  // namespace vouch::fuzzing
