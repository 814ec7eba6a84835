// Replay against a real (software) TPM: extending a fresh swtpm with every
// event of a real log must leave exactly the PCR values Replay computes.
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "boot/test_data.h"
#include "core/boot/replay.h"
#include "harness/process.h"
#include "harness/swtpm.h"

namespace vouch::core::boot {
namespace {

// `tpm2_pcrread` output: "  sha256:\n    0 : 0xABC...\n" -> bank -> pcr -> hex.
std::map<std::string, std::map<uint32_t, std::string>> ParsePcrRead(
    const std::string& text) {
  std::map<std::string, std::map<uint32_t, std::string>> out;
  std::string bank;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::string_view t = absl::StripAsciiWhitespace(line);
    if (t.empty()) continue;
    if (absl::EndsWith(t, ":")) {
      bank = std::string(absl::StripSuffix(t, ":"));
      continue;
    }
    std::vector<std::string> kv = absl::StrSplit(t, ':');
    uint32_t pcr = 0;
    if (kv.size() != 2 ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(kv[0]), &pcr)) {
      continue;
    }
    absl::string_view value = absl::StripAsciiWhitespace(kv[1]);
    absl::ConsumePrefix(&value, "0x");
    out[bank][pcr] = absl::AsciiStrToLower(value);
  }
  return out;
}

TEST_CASE("boot: a real TPM extended with a log holds the replayed PCRs",
          "[tpm]") {
  // No StartupLocality in this log (swtpm starts at locality 0) and three
  // banks.
  const std::string name =
      "go-attestation/ubuntu_2104_shielded_vm_no_secure_boot_eventlog";
  EventLog log = testing::MustParse(testing::ReadTestLog(name));
  REQUIRE_FALSE(log.startup_locality.has_value());
  absl::StatusOr<PcrBanks> replayed = Replay(log);
  REQUIRE(replayed.ok());

  vouch::testing::SwtpmOptions options;
  options.pcr_banks = "sha1,sha256,sha384";
  options.create_platform_cert = false;
  auto tpm = vouch::testing::Swtpm::Start(options);
  INFO(tpm.status().ToString());
  REQUIRE(tpm.ok());

  // One tpm2_pcrextend per 32 events: "<pcr>:sha1=..,sha256=..,sha384=..".
  std::vector<std::string> argv = {"tpm2_pcrextend", "-T", (*tpm)->tcti()};
  auto flush = [&] {
    if (argv.size() == 3) return;
    absl::StatusOr<std::string> out = vouch::testing::RunCommand(argv);
    INFO(out.status().ToString());
    REQUIRE(out.ok());
    argv.resize(3);
  };
  for (const Event& e : log.events) {
    if (e.type == kEvNoAction) continue;
    std::vector<std::string> digests;
    for (const EventDigest& d : e.digests) {
      digests.push_back(
          absl::StrCat(HashAlgName(d.alg), "=", HexEncode(d.value)));
    }
    argv.push_back(absl::StrCat(e.pcr, ":", absl::StrJoin(digests, ",")));
    if (argv.size() >= 35) flush();
  }
  flush();

  absl::StatusOr<std::string> read = vouch::testing::RunCommand(
      {"tpm2_pcrread", "-T", (*tpm)->tcti(), "sha1:all+sha256:all+sha384:all"});
  INFO(read.status().ToString());
  REQUIRE(read.ok());
  auto banks = ParsePcrRead(*read);
  size_t compared = 0;
  for (const auto& [alg, pcrs] : *replayed) {
    for (const auto& [pcr, value] : pcrs) {
      INFO(HashAlgName(alg) << " PCR " << pcr);
      CHECK(banks[HashAlgName(alg)][pcr] == HexEncode(value));
      ++compared;
    }
  }
  CHECK(compared == 3 * 11);  // PCRs 0-9 and 14 in each bank.
}

}  // namespace
}  // namespace vouch::core::boot
