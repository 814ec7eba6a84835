// core::boot::PcrPolicy: parsing (Keylime tpm_policy shape and per-bank
// values) and evaluation against quoted PCR values. Pure logic.
#include "core/boot/pcr_policy.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/boot/event_log.h"

namespace vouch::core::boot {
namespace {

std::string Hex(char c, size_t bytes) { return std::string(bytes * 2, c); }
Bytes Value(uint8_t b, size_t bytes) { return Bytes(bytes, b); }

PcrPolicy Parse(const std::string& json) {
  absl::StatusOr<PcrPolicy> p = PcrPolicy::FromJson(json);
  INFO(json);
  INFO(p.status().message());
  REQUIRE(p.ok());
  return *std::move(p);
}

TEST_CASE("PcrPolicy passes when every named PCR holds an allowed value",
          "[core]") {
  PcrPolicy p = Parse(absl::StrCat(R"({"0": [")", Hex('0', 32), R"(", ")",
                                   Hex('f', 32), R"("], "7": ")", Hex('a', 32),
                                   R"(", "mask": "0x81"})"));
  PcrBanks quoted;
  quoted[kAlgSha256][0] = Value(0xff, 32);
  quoted[kAlgSha256][7] = Value(0xaa, 32);
  quoted[kAlgSha256][10] = Value(0x12, 32);  // Not named: not judged.
  CHECK(p.Evaluate(kAlgSha256, quoted).empty());
  quoted[kAlgSha256][0] = Value(0x00, 32);  // The other allowed value.
  CHECK(p.Evaluate(kAlgSha256, quoted).empty());
  auto sel = p.Selection(kAlgSha256);
  REQUIRE(sel.size() == 1);
  CHECK(sel[kAlgSha256] == std::vector<uint32_t>{0, 7});
}

TEST_CASE("PcrPolicy fails each PCR that differs or is not quoted", "[core]") {
  PcrPolicy p = Parse(absl::StrCat(R"({"0": [")", Hex('0', 32),
                                   R"("], "9": [")", Hex('1', 32),
                                   R"("], "14": [")", Hex('2', 32), R"("]})"));
  PcrBanks quoted;
  quoted[kAlgSha256][0] = Value(0x00, 32);
  quoted[kAlgSha256][9] = Value(0x12, 32);  // Extended since.
  // PCR 14 not quoted.
  std::vector<PcrMismatch> m = p.Evaluate(kAlgSha256, quoted);
  REQUIRE(m.size() == 2);
  CHECK(m[0].pcr == 9);
  CHECK(m[0].alg == kAlgSha256);
  CHECK(absl::StrContains(m[0].reason, "not an allowed value"));
  CHECK(absl::StrContains(m[0].reason, "1212"));         // Observed.
  CHECK(!absl::StrContains(m[0].reason, Hex('1', 32)));  // Not expected.
  CHECK(m[1].pcr == 14);
  CHECK(absl::StrContains(m[1].reason, "not quoted"));
  // Nothing quoted at all: every PCR fails, never a pass.
  CHECK(p.Evaluate(kAlgSha256, {}).size() == 3);
  // The top level applies to the challenged bank only.
  PcrBanks sha1;
  sha1[kAlgSha1][0] = Value(0x00, 20);
  CHECK(p.Evaluate(kAlgSha1, sha1).size() == 3);
}

TEST_CASE("PcrPolicy per-bank values apply to that bank", "[core]") {
  PcrPolicy p = Parse(absl::StrCat(R"({"sha1": {"0": [")", Hex('0', 20),
                                   R"("]}, "sha256": {"0": ["0x)", Hex('b', 32),
                                   R"("]}})"));
  PcrBanks quoted;
  quoted[kAlgSha1][0] = Value(0x00, 20);
  quoted[kAlgSha256][0] = Value(0xbb, 32);
  CHECK(p.Evaluate(kAlgSha256, quoted).empty());
  quoted[kAlgSha1][0] = Value(0x01, 20);
  std::vector<PcrMismatch> m = p.Evaluate(kAlgSha256, quoted);
  REQUIRE(m.size() == 1);
  CHECK(m[0].alg == kAlgSha1);
  auto sel = p.Selection(kAlgSha256);
  CHECK(sel.size() == 2);
  // A value of another length never matches (a sha1 value for sha256).
  PcrPolicy top = Parse(absl::StrCat(R"({"0": [")", Hex('0', 20), R"("]})"));
  PcrBanks wide;
  wide[kAlgSha256][0] = Value(0x00, 32);
  CHECK(top.Evaluate(kAlgSha256, wide).size() == 1);
}

TEST_CASE("PcrPolicy refuses malformed and hostile documents", "[core]") {
  const std::string z = Hex('0', 32);
  for (const std::string& bad : {
           std::string(""),
           std::string("[]"),
           std::string("{}"),
           std::string(R"({"mask": "0x1"})"),
           absl::StrCat(R"({"24": [")", z, R"("]})"),
           absl::StrCat(R"({"-1": [")", z, R"("]})"),
           absl::StrCat(R"({"+1": [")", z, R"("]})"),
           absl::StrCat(R"({"007": [")", z, R"("]})"),
           absl::StrCat(R"({"pcr0": [")", z, R"("]})"),
           std::string(R"({"0": []})"),
           std::string(R"({"0": [1]})"),
           std::string(R"({"0": {}})"),
           std::string(R"({"0": ["xyz"]})"),
           std::string(R"({"0": ["00"]})"),                // Not a digest.
           absl::StrCat(R"({"0": [")", z, "0", R"("]})"),  // Odd length.
           absl::StrCat(R"({"0": [")", z, R"(", ")", Hex('0', 20),
                        R"("]})"),  // Mixed lengths.
           absl::StrCat(R"({"sha256": {"0": [")", Hex('0', 20), R"("]}})"),
           std::string(R"({"sha256": {}})"),
           std::string(R"({"sha256": ["00"]})"),
           absl::StrCat(R"({"sha256": {"sha1": [")", z, R"("]}})"),
           absl::StrCat(R"({"sm3_256": {"0": [")", z, R"("]}})"),
       }) {
    INFO(bad);
    absl::StatusOr<PcrPolicy> p = PcrPolicy::FromJson(bad);
    CHECK(p.status().code() == absl::StatusCode::kInvalidArgument);
  }
  std::string many = R"({"0": [)";
  for (size_t i = 0; i <= kMaxPcrPolicyValues; ++i) {
    absl::StrAppend(&many, i ? "," : "", "\"", z, "\"");
  }
  absl::StrAppend(&many, "]}");
  CHECK(PcrPolicy::FromJson(many).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(PcrPolicy::FromJson(std::string(kMaxPcrPolicyBytes + 1, ' '))
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("PcrPolicy seeds of the fuzz corpus: the valid ones load", "[core]") {
  for (const char* name :
       {"keylime.json", "single_string.json", "banks.json"}) {
    INFO(name);
    std::ifstream in(std::string(VOUCH_SOURCE_DIR) +
                     "/fuzz/corpus/pcr_policy/" + name);
    std::stringstream text;
    text << in.rdbuf();
    REQUIRE(!text.str().empty());
    CHECK(PcrPolicy::FromJson(text.str()).ok());
  }
}

}  // namespace
}  // namespace vouch::core::boot
