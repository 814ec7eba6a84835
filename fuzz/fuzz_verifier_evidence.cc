// Fuzzes what the verifier does with an agent's Evidence
// (core/attest/evidence.h): the protobuf decoding gRPC performs, the shape
// and bound checks against an outstanding Challenge, and — for what passes
// them — the whole evaluation: quote against a pinned software AIK, IMA
// integrity and policy from the start of the log, boot log against a
// reference state learned from a real event log (verifier_evidence_fixture.h).
// Seeds (fuzz/corpus/verifier_evidence, made by fuzz/seedgen) carry quotes
// that verify, so mutations reach the IMA and boot evaluation.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/file.h"
#include "verifier_evidence_fixture.h"

namespace {

const vouch::fuzzing::EvidenceFixture& Fixture() {
  namespace vf = vouch::fuzzing;
  static const vf::EvidenceFixture* fixture = [] {
    const std::string path =
        std::string(VOUCH_TEST_DATA_DIR "/") + vf::kEvidenceReferenceLog;
    absl::StatusOr<std::string> log = vouch::ReadFileUpTo(path, 4 << 20);
    absl::StatusOr<vouch::Bytes> aik =
        vouch::HexDecode(vf::kEvidenceAikPublicHex);
    absl::StatusOr<std::unique_ptr<vf::EvidenceFixture>> fx =
        !log.ok() ? log.status()
        : !aik.ok()
            ? aik.status()
            : vf::EvidenceFixture::Create(*aik, vf::kEvidenceRuntimePolicy,
                                          vouch::AsBytes(*log));
    if (!fx.ok()) {
      std::fprintf(stderr, "fuzz_verifier_evidence: %s\n",
                   fx.status().ToString().c_str());
      std::abort();
    }
    return fx->release();
  }();
  return *fixture;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vouch::v1::Evidence ev;
  if (!ev.ParseFromArray(data, static_cast<int>(size))) return 0;
  (void)Fixture().Run(ev);
  return 0;
}
