// vouch-fuzz-seeds: remakes fuzz_verifier_evidence's generated seeds
// (fuzz/corpus/verifier_evidence/<name>) and fuzz/verifier_evidence_inputs.inc
// from the test keys in fuzz/seedgen and the event logs in tests/data; see
// fuzz/README.md. Usage: vouch-fuzz-seeds [REPOSITORY_ROOT]
#include <fstream>
#include <iostream>
#include <string>

#include "seedgen/evidence_seeds.h"

namespace {

bool Write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  out.close();
  if (!out) std::cerr << "vouch-fuzz-seeds: cannot write " << path << "\n";
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string root = argc > 1 ? argv[1] : VOUCH_SOURCE_DIR;
  absl::StatusOr<vouch::fuzzing::EvidenceSeeds> seeds =
      vouch::fuzzing::MakeEvidenceSeeds(root + "/fuzz/seedgen",
                                        root + "/tests/data");
  if (!seeds.ok()) {
    std::cerr << "vouch-fuzz-seeds: " << seeds.status() << "\n";
    return 1;
  }
  bool ok =
      Write(root + "/fuzz/verifier_evidence_inputs.inc", seeds->inputs_inc);
  for (const auto& [name, bytes] : seeds->corpus) {
    ok = Write(root + "/fuzz/corpus/verifier_evidence/" + name, bytes) && ok;
    std::cout << name << ": " << bytes.size() << " bytes\n";
  }
  return ok ? 0 : 1;
}
