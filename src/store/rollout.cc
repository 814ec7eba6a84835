// Roll-outs of runtime policies (verifier_store.h): what every store and
// the verifier share.
#include <algorithm>

#include "store/verifier_store.h"

namespace vouch::store {

absl::string_view RolloutKindName(RolloutKind kind) {
  return kind == RolloutKind::kWindow ? "window" : "shadow";
}

std::vector<std::string> SortedUnique(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

bool RolloutRow::Applies(const std::string& agent_id, absl::Time now) const {
  if (now < not_before || now >= not_after) return false;
  return all_agents ||
         std::binary_search(agent_ids.begin(), agent_ids.end(), agent_id);
}

}  // namespace vouch::store
