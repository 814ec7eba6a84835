// libFuzzer target: IMA ASCII measurement lists (ascii_runtime_measurements)
// through the parser and evaluator.
#include "fuzz_ima_log_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vouch::core::ima::FuzzImaLog(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
