// Fuzzes the conversion of Keylime's legacy allowlist (and exclude list)
// into a runtime policy (core/ima/runtime_policy.h: ConvertAllowlist,
// WriteRuntimePolicy), then loads what was written. Input: the allowlist,
// then optionally a NUL byte and the exclude list. Invariant: a policy
// the converter wrote is one the loader accepts (vouchctl policy convert
// must not produce a policy that enrollment then refuses). Seeds:
// fuzz/corpus/ima_allowlist.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "core/ima/runtime_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace cima = vouch::core::ima;
  const absl::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const absl::string_view allowlist = in.substr(0, nul);
  const absl::string_view excludes =
      nul == absl::string_view::npos ? absl::string_view() : in.substr(nul + 1);
  absl::StatusOr<cima::PolicyDraft> draft =
      cima::ConvertAllowlist(allowlist, excludes);
  if (!draft.ok()) return 0;
  absl::StatusOr<std::string> json = cima::WriteRuntimePolicy(*draft);
  if (!json.ok()) return 0;
  auto policy = cima::RuntimePolicy::FromJson(*json);
  if (!policy.ok()) {
    std::fprintf(stderr, "converted policy refused: %s\n",
                 policy.status().ToString().c_str());
    std::abort();
  }
  for (const auto& [path, digests] : draft->digests) {
    (void)(*policy)->digests().Contains((*policy)->HashPath(path));
    (void)(*policy)->IsExcluded(path);
  }
  return 0;
}
