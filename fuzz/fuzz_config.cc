// libFuzzer target: the TOML config parser (operator input, but it must
// still never crash or hang on any bytes).
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/config.h"

namespace {

const vouch::ConfigSchema& Schema() {
  static const vouch::ConfigSchema* schema = [] {
    auto* s = new vouch::ConfigSchema();
    s->String("agent", "tcti", "device:/dev/tpmrm0", "")
        .Int("agent", "retries", 3, "", 0, 100)
        .Bool("agent", "strict", true, "")
        .Duration("agent", "interval", absl::Seconds(30), "")
        .StringList("agent", "verifiers", {}, "")
        .String("log", "level", "info", "");
    return s;
  }();
  return *schema;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = vouch::ParseConfigText(Schema(), text, "fuzz.toml");
  if (config.ok()) {
    // Whatever parsed must print and parse back.
    auto again = vouch::ParseConfigText(Schema(), config->ToToml(), "again");
    if (!again.ok()) __builtin_trap();
    if (again->GetString("agent", "tcti") != config->GetString("agent", "tcti"))
      __builtin_trap();
  }
  return 0;
}
