// libFuzzer target: offline audit bundles (core/audit/bundle.h), what
// `vouchctl audit verify` reads from an untrusted file: the JSON parse,
// then the whole verification (registration, policies, the evidence
// re-verified) at a fixed time, without and with a log key, and the
// transparency-log section (signed tree head, leaves, inclusion proofs) on
// its own. Seeds: small well-formed bundles (a record, a registration,
// evidence and a policy; one with a log section whose head is signed by the
// RFC 8032 test 1 key below) in corpus/audit_bundle.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/audit/bundle.h"

namespace {
// The Ed25519 key of RFC 8032 test 1 (its private key is published, so a
// log section that verifies under it proves nothing: no trap on a pass).
constexpr char kLogKeyPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
    "-----END PUBLIC KEY-----\n";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace audit = vouch::core::audit;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto bundle = audit::ParseBundle(text);
  if (!bundle.ok()) return 0;
  audit::AuditOptions options;
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  const audit::AuditResult r = audit::VerifyBundle(*bundle, options, now);
  // A bundle without a valid AIK, quote and nonce never passes.
  if (r.kind == audit::AuditResult::Kind::kPass &&
      bundle->registration().aik_public().empty()) {
    __builtin_trap();
  }
  options.log_key_pem = kLogKeyPem;
  const audit::AuditResult with_log =
      audit::VerifyBundle(*bundle, options, now);
  // Asked for the log, a bundle without one never passes.
  if (with_log.kind == audit::AuditResult::Kind::kPass && !bundle->has_log()) {
    __builtin_trap();
  }
  std::string part;
  const absl::Status s =
      audit::VerifyLogSection(bundle->log(), *bundle, kLogKeyPem, &part);
  if (!s.ok() && part.empty()) __builtin_trap();  // Always names the part.
  return 0;
}
