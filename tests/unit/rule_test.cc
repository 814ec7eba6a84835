// core::Rule: every rule has one stable, distinct name, and kAllRules lists
// them all (so loops over it, here and in other tests, miss none).
#include "core/rule.h"

#include <catch2/catch.hpp>
#include <iterator>
#include <set>
#include <sstream>
#include <string>

namespace vouch::core {
namespace {

TEST_CASE("every rule has a unique, non-empty, stable name", "[core]") {
  std::set<std::string> names;
  for (Rule rule : kAllRules) {
    const std::string name(RuleName(rule));
    INFO("rule #" << static_cast<int>(rule) << " " << name);
    CHECK_FALSE(name.empty());
    // "<area>.<check>" in lower case, as logs and JSON have always had it.
    CHECK(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_.") ==
          std::string::npos);
    CHECK(name.find('.') != std::string::npos);
    CHECK(names.insert(name).second);
  }
  CHECK(names.size() == std::size(kAllRules));
}

TEST_CASE("kAllRules ends at the last enumerator", "[core]") {
  // Values run 0, 1, ... (checked at compile time in rule.cc); a value past
  // the list is no enumerator, so a rule added without a kAllRules entry
  // would have a name here.
  CHECK(RuleName(static_cast<Rule>(std::size(kAllRules))).empty());
}

TEST_CASE("rule names are today's strings", "[core]") {
  // A sample from each area: these strings are an interface (vouchctl text
  // and JSON, logs) and must never change.
  CHECK(RuleName(Rule::kQuoteNonce) == "quote.nonce");
  CHECK(RuleName(Rule::kQuoteClockResetCount) == "quote.clock.reset_count");
  CHECK(RuleName(Rule::kAikSensitiveDataOrigin) == "aik.sensitive_data_origin");
  CHECK(RuleName(Rule::kEkCertChain) == "ek_cert.chain");
  CHECK(RuleName(Rule::kBootPk) == "boot.pk");
  CHECK(RuleName(Rule::kBootVendorDb) == "boot.vendor_db");
  CHECK(RuleName(Rule::kImaKeyringNotAllowed) == "ima.keyring_not_allowed");
  std::ostringstream os;
  os << Rule::kBootScrtmAndBios;
  CHECK(os.str() == "boot.scrtm_and_bios");
}

}  // namespace
}  // namespace vouch::core
