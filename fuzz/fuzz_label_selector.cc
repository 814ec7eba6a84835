// libFuzzer: label selectors (core/label_selector.h). A selector that
// parses prints as text that parses to the same selector.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/label_selector.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  auto s = vouch::core::ParseSelector(input, "selector");
  if (!s.ok()) return 0;
  (void)s->Matches({{"role", "web"}, {"env", "prod"}});
  auto again = vouch::core::ParseSelector(s->ToString(), "selector");
  if (!again.ok() || again->requirements() != s->requirements()) std::abort();
  return 0;
}
