// File: core/label_selector.h
// Label selectors, the subset of Kubernetes' syntax that vouchctl's fleet
// operations take (`agents list -l`, `agents update|delete --selector`):
//
//   role=web            role==web         the label is set to the value
//   role!=web                             not set to it (or not set at all)
//   env in (prod,stage) env notin (dev)   set to one of / to none of the values
//   gpu                 !gpu              the label is set / is not set
//
// Requirements are comma-separated and all must hold (AND). Keys and values
// follow the label syntax (below). The text is operator input
// that crosses the network (Admin API), so it is hostile: at most
// kMaxSelectorBytes, kMaxRequirements requirements, kMaxSetValues values in
// a set; anything else is kInvalidArgument "<field>: ..." naming the
// position. Fuzzed by fuzz_label_selector. Pure; thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(Selector s, ParseSelector("role=web,env!=dev",
//                                                    "label_selector"));
//   bool hit = s.Matches({{"role", "web"}});
#ifndef VOUCH_CORE_LABEL_SELECTOR_H_
#define VOUCH_CORE_LABEL_SELECTOR_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vouch::core {

// Label syntax (registrar.proto): keys 1..63 bytes of [a-z0-9._/-]
// starting with [a-z0-9]; values 0..63 bytes of [A-Za-z0-9._-].
bool ValidLabelKey(absl::string_view key);
bool ValidLabelValue(absl::string_view value);

inline constexpr size_t kMaxSelectorBytes = 1024;
inline constexpr size_t kMaxRequirements = 16;
inline constexpr size_t kMaxSetValues = 16;

struct Requirement {
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kNotExists };
  std::string key;
  Op op = Op::kEquals;
  // One value for kEquals and kNotEquals, one or more for the sets (sorted,
  // no repeats), none for kExists and kNotExists.
  std::vector<std::string> values;

  bool operator==(const Requirement& o) const {
    return key == o.key && op == o.op && values == o.values;
  }
};

class Selector {
 public:
  const std::vector<Requirement>& requirements() const { return reqs_; }
  bool empty() const { return reqs_.empty(); }
  // Whether `labels` satisfy every requirement (an empty selector matches).
  bool Matches(const std::map<std::string, std::string>& labels) const;
  // The canonical text (each requirement as written above, comma-separated);
  // parsing it gives the same selector.
  std::string ToString() const;

 private:
  friend absl::StatusOr<Selector> ParseSelector(absl::string_view,
                                                absl::string_view);
  std::vector<Requirement> reqs_;
};

// Parses `text` (blanks around tokens are ignored; empty text is the empty
// selector). `field` prefixes error messages.
absl::StatusOr<Selector> ParseSelector(absl::string_view text,
                                       absl::string_view field);

}  // namespace vouch::core

#endif  // VOUCH_CORE_LABEL_SELECTOR_H_
