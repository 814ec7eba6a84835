// libFuzzer target: the TCG event log an agent sends (untrusted). Whatever
// parses is replayed, every event is described, and a small Keylime-shaped
// policy judges it, so the EFI decoders and the evaluator see hostile bytes
// too, and what create-policy learns from it must load as a policy again.
// Nothing may crash, leak or read out of bounds.
#include <cstddef>
#include <cstdint>

#include "core/boot/boot_policy.h"
#include "core/boot/efi.h"
#include "core/boot/event_log.h"
#include "core/boot/replay.h"

namespace {

using vouch::core::boot::BootPolicy;

const BootPolicy& Policy() {
  static const BootPolicy* policy = [] {
    auto parsed = BootPolicy::FromJson(R"({
      "has_secureboot": true,
      "scrtm_and_bios": [{"scrtm": {"sha256": "0x)" +
                                       std::string(64, '1') +
                                       R"("}, "platform_firmware": []}],
      "pk": [], "kek": [], "db": [], "dbx": [], "mokdig": [], "mokxdig": [],
      "kernels": [{"shim_authcode_sha256": "0x)" +
                                       std::string(64, '2') + R"(",
                   "grub_authcode_sha256": "0x)" +
                                       std::string(64, '3') + R"(",
                   "kernel_authcode_sha256": "0x)" +
                                       std::string(64, '4') +
                                       R"(",
                   "initrd_plain_sha256": "0x)" +
                                       std::string(64, '5') + R"(",
                   "kernel_cmdline": "ro quiet.*"}],
      "pcrs": {"0": ["0x)" + std::string(64, '6') +
                                       R"("]}})");
    if (!parsed.ok()) __builtin_trap();
    return new BootPolicy(*std::move(parsed));
  }();
  return *policy;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace boot = vouch::core::boot;
  auto log = boot::ParseEventLog(vouch::ByteSpan(data, size));
  if (!log.ok()) return 0;
  for (const boot::Event& e : log->events) {
    std::string text = boot::DescribeEventData(e);
    if (text.size() > 64 * 1024 + 16 * e.data.size()) __builtin_trap();
  }
  auto banks = boot::Replay(*log);
  if (!banks.ok()) __builtin_trap();  // Replay of a parsed log cannot fail.
  auto verdict = Policy().Evaluate(*log, *banks);
  if (verdict.passed()) __builtin_trap();  // Nothing random passes.
  // What create-policy learns must load again.
  auto learned = boot::CreateReferenceState(*log);
  if (learned.ok()) {
    auto policy = BootPolicy::FromJson(*learned);
    if (!policy.ok()) __builtin_trap();
    (void)policy->Evaluate(*log, *banks);
  }
  return 0;
}
