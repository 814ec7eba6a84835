// libFuzzer target: attestation history page tokens
// (core/audit/history_query.h), what a client sends back as
// GetAttestationHistoryRequest.page_token. Decoded against a fixed query;
// a token accepted must be exactly the one the server would write for the
// position it names (no second spelling, no position the query did not
// hand out a token for but one with a valid check value). Seeds: tokens of
// that query in corpus/history_token.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/audit/history_query.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view token(reinterpret_cast<const char*>(data), size);
  vouch::core::audit::HistoryQuery q;
  q.tenant = "default";
  q.agent_id = "node-1";
  q.from = absl::FromUnixSeconds(1700000000);
  q.to = absl::FromUnixSeconds(1700086400);
  q.states = {vouch::v1::ATTESTATION_STATE_FAIL};
  auto p = vouch::core::audit::HistoryPositionOf(token, q);
  if (!p.ok() || !p->has_value()) return 0;
  if ((*p)->attestation_id.empty() || (*p)->attestation_id.size() > 64 ||
      vouch::core::audit::HistoryToken(q, **p) != token) {
    __builtin_trap();
  }
  return 0;
}
