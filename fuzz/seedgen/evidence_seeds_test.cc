// The checked-in seeds of fuzz_verifier_evidence are what the generator
// makes, and each still does what it was made for against the fixture the
// fuzz target is compiled with (so a change to the evidence checks that
// sends the seeds back to failing at the quote shows up here, not as a
// silent loss of fuzzing depth).
#include "seedgen/evidence_seeds.h"

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "common/file.h"

namespace vouch::fuzzing {
namespace {

const std::string kRoot = VOUCH_SOURCE_DIR;

std::string CheckedIn(const std::string& rel) {
  absl::StatusOr<std::string> text = ReadFileUpTo(kRoot + "/" + rel, 4 << 20);
  INFO(rel << ": " << text.status().ToString());
  REQUIRE(text.ok());
  return *text;
}

std::unique_ptr<EvidenceFixture> CompiledFixture() {
  absl::StatusOr<Bytes> aik = HexDecode(kEvidenceAikPublicHex);
  REQUIRE(aik.ok());
  const std::string log =
      CheckedIn(absl::StrCat("tests/data/", kEvidenceReferenceLog));
  auto fx = EvidenceFixture::Create(*aik, kEvidenceRuntimePolicy, AsBytes(log));
  INFO(fx.status().ToString());
  REQUIRE(fx.ok());
  return *std::move(fx);
}

const EvidenceSeeds& Generated() {
  static const EvidenceSeeds* seeds = [] {
    auto s = MakeEvidenceSeeds(kRoot + "/fuzz/seedgen", kRoot + "/tests/data");
    INFO(s.status().ToString());
    REQUIRE(s.ok());
    return new EvidenceSeeds(*std::move(s));
  }();
  return *seeds;
}

TEST_CASE(
    "fuzz seeds: the checked-in verifier_evidence seeds are regenerated "
    "byte for byte",
    "[core]") {
  const EvidenceSeeds& seeds = Generated();
  CHECK(seeds.corpus.size() >= 10);
  CHECK(CheckedIn("fuzz/verifier_evidence_inputs.inc") == seeds.inputs_inc);
  for (const auto& [name, bytes] : seeds.corpus) {
    INFO(name << ": run build/release/bin/vouch-fuzz-seeds");
    CHECK(CheckedIn("fuzz/corpus/verifier_evidence/" + name) == bytes);
  }
}

TEST_CASE(
    "fuzz seeds: verifier_evidence seeds get past the quote into IMA "
    "and boot evaluation",
    "[core]") {
  std::unique_ptr<EvidenceFixture> fx = CompiledFixture();
  int passed = 0, boot_logs = 0;
  for (const auto& [name, want] : Generated().expected) {
    v1::Evidence ev;
    REQUIRE(
        ev.ParseFromString(CheckedIn("fuzz/corpus/verifier_evidence/" + name)));
    std::optional<core::attest::EvidenceOutcome> out = fx->Run(ev);
    absl::Status ok = CheckSeedOutcome(out, want);
    INFO(name << ": " << ok.ToString());
    CHECK(ok.ok());
    passed += out && out->passed;
    boot_logs += !ev.boot_log().empty();
  }
  CHECK(passed >= 5);
  CHECK(boot_logs >= 3);

  // The check can fail: one flipped signature bit stops a seed at the quote.
  v1::Evidence ev;
  REQUIRE(
      ev.ParseFromString(CheckedIn("fuzz/corpus/verifier_evidence/boot-pass")));
  std::string sig = ev.signature();
  sig[sig.size() - 1] ^= 1;
  ev.set_signature(sig);
  absl::Status forged =
      CheckSeedOutcome(fx->Run(ev), Generated().expected.at("boot-pass"));
  CHECK(absl::IsFailedPrecondition(forged));
  CHECK(forged.message().find("QUOTE_SIGNATURE_INVALID") != std::string::npos);
}

}  // namespace
}  // namespace vouch::fuzzing
