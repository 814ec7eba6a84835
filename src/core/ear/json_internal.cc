#include "core/ear/json_internal.h"

#include "absl/strings/str_cat.h"
#include "core/ear/ear.h"

namespace vouch::core::ear::internal {
namespace {

using Json = nlohmann::json;

// Nesting depth of a JSON text, counted outside strings; nlohmann parses
// recursively, so deep input is refused before it is parsed.
bool ShallowEnough(absl::string_view text) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) return false;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<Json> ParseObject(absl::string_view text, const char* what) {
  if (!ShallowEnough(text)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": nested too deep"));
  }
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not a JSON object"));
  }
  return j;
}

const Json* Member(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::optional<std::string> String(const Json& obj, const char* key) {
  const Json* v = Member(obj, key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return v->get<std::string>();
}

std::optional<int64_t> Integer(const Json& obj, const char* key) {
  const Json* v = Member(obj, key);
  if (v == nullptr || !v->is_number_integer()) return std::nullopt;
  return v->get<int64_t>();
}

}  // namespace vouch::core::ear::internal
