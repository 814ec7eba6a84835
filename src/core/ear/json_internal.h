// File: core/ear/json_internal.h
// JSON helpers shared by the token parsers of core/ear (EAR results and
// action notices); not for use outside this folder. Input is untrusted:
// depth-bounded before nlohmann parses it (without exceptions), typed
// accessors that return nullopt/nullptr on a missing or mistyped member.
#ifndef VOUCH_CORE_EAR_JSON_INTERNAL_H_
#define VOUCH_CORE_EAR_JSON_INTERNAL_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace vouch::core::ear::internal {

// Parses a JSON object no deeper than kMaxJsonDepth; kInvalidArgument
// naming `what` otherwise.
absl::StatusOr<nlohmann::json> ParseObject(absl::string_view text,
                                           const char* what);
const nlohmann::json* Member(const nlohmann::json& obj, const char* key);
std::optional<std::string> String(const nlohmann::json& obj, const char* key);
std::optional<int64_t> Integer(const nlohmann::json& obj, const char* key);

}  // namespace vouch::core::ear::internal

#endif  // VOUCH_CORE_EAR_JSON_INTERNAL_H_
