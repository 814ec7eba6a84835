// libFuzzer target: hex decoding (used on digests in policies and logs).
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "common/bytes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto bytes = vouch::HexDecode(text);
  if (bytes.ok()) {
    // Round trip: encoding what decoded gives the input, less any "0x",
    // in lower case.
    auto again = vouch::HexDecode(vouch::HexEncode(*bytes));
    if (!again.ok() || *again != *bytes) __builtin_trap();
  }
  return 0;
}
