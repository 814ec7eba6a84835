// File: fuzz/seedgen/evidence_seeds.h
// Makes the seed corpus of fuzz_verifier_evidence: Evidence messages whose
// quotes verify against fuzz/verifier_evidence_fixture.h — signed with a
// software AIK from a checked-in test key (fuzz/seedgen/aik-key.pem) over
// PCR values replayed from real event logs (tests/data) and a generated IMA
// log — so the fuzzer starts past the quote check, in the IMA and boot
// evaluation. Also writes verifier_evidence_inputs.inc (the pinned AIK and
// the runtime policy the seeds were made for). Deterministic: RSASSA
// signatures and the log writer draw no randomness, so a second run writes
// the same bytes (a test checks the checked-in files against it). Each seed
// is checked against its expected outcome before it is returned. Test code.
//
//   absl::StatusOr<EvidenceSeeds> s = MakeEvidenceSeeds("fuzz/seedgen",
//                                                      "tests/data");
#ifndef VOUCH_FUZZ_SEEDGEN_EVIDENCE_SEEDS_H_
#define VOUCH_FUZZ_SEEDGEN_EVIDENCE_SEEDS_H_

#include <map>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "verifier_evidence_fixture.h"
#include "vouch/v1/common.pb.h"

namespace vouch::fuzzing {

// What a seed must do with the fixture.
struct SeedExpectation {
  core::attest::EvidenceOutcome::Kind kind =
      core::attest::EvidenceOutcome::Kind::kVerdict;
  bool passed = false;
  // Each of these codes must be among the verdict's failures.
  std::set<v1::FailureCode> codes;
  // IMA entries the replay position must have reached (the verdict's).
  uint64_t ima_next_entry = 0;
};

struct EvidenceSeeds {
  std::map<std::string, std::string> corpus;  // file name -> Evidence bytes
  std::map<std::string, SeedExpectation> expected;
  std::string inputs_inc;  // verifier_evidence_inputs.inc
};

// `keys_dir` holds aik-key.pem and ima-key.pem; `data_dir` is tests/data.
absl::StatusOr<EvidenceSeeds> MakeEvidenceSeeds(const std::string& keys_dir,
                                                const std::string& data_dir);

// kFailedPrecondition describing how `outcome` (nullopt: refused by
// ValidateEvidence) differs from `want`.
absl::Status CheckSeedOutcome(
    const std::optional<core::attest::EvidenceOutcome>& outcome,
    const SeedExpectation& want);

}  // namespace vouch::fuzzing

#endif  // VOUCH_FUZZ_SEEDGEN_EVIDENCE_SEEDS_H_
