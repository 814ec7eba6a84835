// libFuzzer: a Hello from an agent (the first message of every Attest
// stream) through core::attest::ValidateHello, as the agent it claims to be
// and as another. Seeds: Hellos in protobuf form (fuzz/corpus/attest_hello).
#include <cstddef>
#include <cstdint>

#include "core/attest/hello.h"
#include "vouch/v1/attestation.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vouch::v1::Hello hello;
  if (!hello.ParseFromArray(data, static_cast<int>(size))) return 0;
  (void)vouch::core::attest::ValidateHello(hello, hello.agent_id());
  (void)vouch::core::attest::ValidateHello(hello, "node-1");
  return 0;
}
