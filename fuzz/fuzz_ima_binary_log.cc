// libFuzzer target: IMA binary measurement lists
// (binary_runtime_measurements[_sha256]) through the parser and evaluator.
// Inputs that would be detected as ASCII get a leading PCR byte so the
// binary parser is what runs.
#include <string>

#include "fuzz_ima_log_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  if (!in.empty() && in[0] >= '0' && in[0] <= '9') {
    std::string shifted = "\n" + std::string(in.substr(1));
    vouch::core::ima::FuzzImaLog(shifted);
    return 0;
  }
  vouch::core::ima::FuzzImaLog(in);
  return 0;
}
