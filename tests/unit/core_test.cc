// Unit tests for the pure foundation pieces of src/core.
#include <catch2/catch.hpp>
#include <string>

#include "core/agent_id.h"
#include "core/verdict.h"

namespace vouch::core {
namespace {

TEST_CASE("agent ids are bounded and plain", "[core]") {
  CHECK(ValidateAgentId("node-01.example_a").ok());
  CHECK(ValidateAgentId(std::string(kMaxAgentIdLength, 'a')).ok());
  CHECK_FALSE(ValidateAgentId("").ok());
  CHECK_FALSE(ValidateAgentId(std::string(kMaxAgentIdLength + 1, 'a')).ok());
  CHECK_FALSE(ValidateAgentId("-rf").ok());
  CHECK_FALSE(ValidateAgentId("..").ok());
  CHECK_FALSE(ValidateAgentId("a b").ok());
  CHECK_FALSE(ValidateAgentId("a/b").ok());
  CHECK_FALSE(ValidateAgentId(std::string("a\0b", 3)).ok());
  CHECK_FALSE(ValidateAgentId("caf\xc3\xa9").ok());
  // The message never echoes the (untrusted) id.
  auto st = ValidateAgentId("evil\nid");
  CHECK(std::string(st.message()).find("evil") == std::string::npos);
}

TEST_CASE("verdicts fail closed", "[core]") {
  Verdict fresh;
  CHECK_FALSE(fresh.passed());  // Nothing evaluated is not a pass.

  Verdict ok;
  ok.MarkComplete();
  CHECK(ok.passed());

  Verdict failed;
  failed.AddFailure(Rule::kQuoteNonce, "extraData differs");
  failed.MarkComplete();
  CHECK_FALSE(failed.passed());
  REQUIRE(failed.failures().size() == 1);
  CHECK(failed.failures()[0].rule == Rule::kQuoteNonce);

  Verdict incomplete;
  Verdict merged = ok;
  merged.Merge(incomplete);
  CHECK_FALSE(merged.passed());
}

}  // namespace
}  // namespace vouch::core
