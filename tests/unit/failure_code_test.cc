// core::attest::FailureCodeFor: every core rule maps to a real FailureCode (the
// switch is exhaustive at compile time; this checks no case says
// UNSPECIFIED), and the rules that used to be mapped by name prefix keep
// their codes.
#include <catch2/catch.hpp>
#include <string>

#include "core/attest/evidence.h"
#include "core/rule.h"
#include "vouch/v1/common.pb.h"

namespace vouch::core::attest {
namespace {

using core::Rule;

TEST_CASE("every rule has a failure code", "[core]") {
  for (Rule rule : core::kAllRules) {
    INFO(core::RuleName(rule));
    const v1::FailureCode code = FailureCodeFor(rule);
    CHECK(code != v1::FAILURE_CODE_UNSPECIFIED);
    CHECK(v1::FailureCode_IsValid(code));
  }
}

TEST_CASE("failure codes are those the rule names used to select", "[core]") {
  // Exact names before.
  CHECK(FailureCodeFor(Rule::kQuoteNonce) == v1::FAILURE_CODE_NONCE_MISMATCH);
  CHECK(FailureCodeFor(Rule::kQuoteClockSafe) ==
        v1::FAILURE_CODE_CLOCK_NOT_SAFE);
  CHECK(FailureCodeFor(Rule::kImaPcrMismatch) ==
        v1::FAILURE_CODE_IMA_REPLAY_MISMATCH);
  CHECK(FailureCodeFor(Rule::kBootDbx) ==
        v1::FAILURE_CODE_BOOT_VARIABLE_NOT_ALLOWED);
  // "quote.clock." prefix.
  for (Rule r : {Rule::kQuoteClockResetCount, Rule::kQuoteClockRestartCount,
                 Rule::kQuoteClockClock}) {
    CHECK(FailureCodeFor(r) == v1::FAILURE_CODE_CLOCK_ROLLBACK);
  }
  // "ima." prefix.
  for (Rule r : {Rule::kImaWrongPcr, Rule::kImaViolation}) {
    CHECK(FailureCodeFor(r) == v1::FAILURE_CODE_IMA_LOG_MALFORMED);
  }
  // "boot." prefix.
  for (Rule r :
       {Rule::kBootPcrs, Rule::kBootEventUnexpected, Rule::kBootEventRepeated,
        Rule::kBootEventDigest, Rule::kBootEventData, Rule::kBootSeparator,
        Rule::kBootEfiAction, Rule::kBootScrtmAndBios, Rule::kBootVendorDb,
        Rule::kBootMokdig, Rule::kBootMokxdig}) {
    CHECK(FailureCodeFor(r) == v1::FAILURE_CODE_BOOT_POLICY_VIOLATION);
  }
  // No name matched these before (UNSPECIFIED); VerifyQuote never reports
  // them, and a conforming server never sends UNSPECIFIED.
  CHECK(FailureCodeFor(Rule::kAikRestricted) ==
        v1::FAILURE_CODE_QUOTE_SIGNATURE_INVALID);
  CHECK(FailureCodeFor(Rule::kEkCertChain) ==
        v1::FAILURE_CODE_QUOTE_SIGNATURE_INVALID);
}

}  // namespace
}  // namespace vouch::core::attest
