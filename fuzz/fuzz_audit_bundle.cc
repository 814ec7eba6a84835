// libFuzzer target: offline audit bundles (core/audit/bundle.h), what
// `vouchctl audit verify` reads from an untrusted file: the JSON parse,
// then the whole verification (registration, policies, the evidence
// re-verified) at a fixed time. Seeds: small well-formed bundles (a
// record, a registration, evidence and a policy) in corpus/audit_bundle.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/audit/bundle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto bundle = vouch::core::audit::ParseBundle(text);
  if (!bundle.ok()) return 0;
  vouch::core::audit::AuditOptions options;
  const vouch::core::audit::AuditResult r = vouch::core::audit::VerifyBundle(
      *bundle, options, absl::FromUnixSeconds(1'800'000'000));
  // A bundle without a valid AIK, quote and nonce never passes.
  if (r.kind == vouch::core::audit::AuditResult::Kind::kPass &&
      bundle->registration().aik_public().empty()) {
    __builtin_trap();
  }
  return 0;
}
