// Label selectors ([core][tenant]): the kubectl-like subset that fleet
// operations take (core/label_selector.h): every form, what each matches,
// the canonical text, and the refusals of hostile input by position.
#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "core/label_selector.h"

namespace vouch {
namespace {

using core::ParseSelector;
using core::Requirement;
using core::Selector;
using Labels = std::map<std::string, std::string>;

Selector Parse(const std::string& text) {
  auto s = ParseSelector(text, "label_selector");
  INFO(text << ": " << s.status().ToString());
  REQUIRE(s.ok());
  return *s;
}

TEST_CASE("selector: every form parses and matches like kubectl's",
          "[core][tenant]") {
  const Labels web = {{"role", "web"}, {"env", "prod"}, {"gpu", ""}};
  const Labels db = {{"role", "db"}, {"env", "dev"}};
  const Labels bare = {};

  CHECK(Parse("").empty());
  CHECK(Parse("  ").Matches(bare));
  CHECK(Parse("role=web").Matches(web));
  CHECK_FALSE(Parse("role=web").Matches(db));
  CHECK_FALSE(Parse("role=web").Matches(bare));
  CHECK(Parse("role==web").Matches(web));
  // != also matches agents without the label (as in Kubernetes).
  CHECK(Parse("role!=web").Matches(db));
  CHECK(Parse("role!=web").Matches(bare));
  CHECK_FALSE(Parse("role!=web").Matches(web));
  CHECK(Parse("env in (prod, stage)").Matches(web));
  CHECK_FALSE(Parse("env in (prod,stage)").Matches(db));
  CHECK_FALSE(Parse("env in (prod,stage)").Matches(bare));
  CHECK(Parse("env notin (prod)").Matches(db));
  CHECK(Parse("env notin (prod)").Matches(bare));
  CHECK_FALSE(Parse("env notin (prod)").Matches(web));
  CHECK(Parse("gpu").Matches(web));
  CHECK_FALSE(Parse("gpu").Matches(db));
  CHECK(Parse("!gpu").Matches(db));
  CHECK_FALSE(Parse("!gpu").Matches(web));
  // All requirements hold (AND).
  CHECK(Parse("role=web, env=prod ,gpu").Matches(web));
  CHECK_FALSE(Parse("role=web,env=dev").Matches(web));
  // A key may be named like an operator.
  CHECK(Parse("in=x").Matches({{"in", "x"}}));
  CHECK(Parse("in in (x)").Matches({{"in", "x"}}));
  // Empty values are values.
  CHECK(Parse("gpu=").Matches(web));
  CHECK(Parse("example.com/zone=eu-1").Matches({{"example.com/zone", "eu-1"}}));
}

TEST_CASE("selector: the canonical text parses to the same selector",
          "[core][tenant]") {
  for (const char* text :
       {"role=web", "role==web,env!=dev", "env in (stage,prod,prod)",
        "tier notin (db)", "gpu,!spot", "a=,b in (x)"}) {
    const Selector s = Parse(text);
    const Selector again = Parse(s.ToString());
    CHECK(again.requirements() == s.requirements());
  }
  CHECK(Parse("env in (b,a,b)").ToString() == "env in (a,b)");
  CHECK(Parse(" role == web ").ToString() == "role=web");
}

TEST_CASE("selector: hostile or malformed text is refused by position",
          "[core][tenant]") {
  struct Bad {
    std::string text;
    std::string says;
  };
  const std::string many_reqs = [] {
    std::string s;
    for (int i = 0; i < 17; ++i) s += "k" + std::to_string(i) + "=v,";
    return s.substr(0, s.size() - 1);
  }();
  const std::string many_values = [] {
    std::string s = "k in (";
    for (int i = 0; i < 17; ++i) s += "v" + std::to_string(i) + ",";
    s.back() = ')';
    return s;
  }();
  for (const Bad& bad : std::initializer_list<Bad>{
           {"=web", "expected a label key"},
           {"Role=web", "expected a label key"},
           {"role=w b", "expected ',' or the end"},
           {"role=web,", "expected a label key"},
           {"role=web,,env=x", "expected a label key"},
           {"role=we$b", "expected ',' or the end"},
           {"role=a/b", "label values"},
           {"role in prod", "expected =, ==, !=, in"},
           {"role in (prod", "expected ',' or ')'"},
           {"role in ()", "expected a value"},
           {"role notin (a,)", "expected a value"},
           {"role=web)", "expected ',' or the end"},
           {"!role=web", "expected ',' or the end"},
           {"role>1", "expected =, ==, !="},
           {"role=" + std::string(64, 'v'), "label values"},
           {std::string(64, 'k') + "=v", "expected a label key"},
           {many_reqs, "at most 16 requirements"},
           {many_values, "at most 16 values"},
           {std::string(1025, 'a'), "at most 1024 bytes"},
           {std::string("role=\0web", 9), "expected ',' or the end"},
       }) {
    auto s = ParseSelector(bad.text, "label_selector");
    INFO(bad.text);
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(absl::StartsWith(s.status().message(), "label_selector: "));
    CHECK(absl::StrContains(s.status().message(), bad.says));
  }
}

}  // namespace
}  // namespace vouch
