// Reading PostgreSQL result columns (text format) into C++ values, the one
// set of decoders every store uses. A column that does not decode is our own
// schema's fault, so these return INTERNAL, never a default.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "store/pg_connection.h"

namespace vouch::store {

using Row = std::vector<std::optional<std::string>>;

// A bytea column; NULL as empty.
inline absl::StatusOr<std::string> Bytea(const std::optional<std::string>& v) {
  if (!v) return std::string();
  return FromBytea(*v);
}

// An integer column; NULL or garbage is an error.
template <typename T>
absl::StatusOr<T> Int(const std::optional<std::string>& v) {
  T out{};
  if (!v || !absl::SimpleAtoi(*v, &out)) {
    return absl::InternalError("bad integer column");
  }
  return out;
}

// A time the SELECT wrote as Unix microseconds (see UnixMicros).
inline absl::StatusOr<absl::Time> Micros(const std::optional<std::string>& v) {
  absl::StatusOr<int64_t> us = Int<int64_t>(v);
  if (!us.ok()) return absl::InternalError("bad timestamp column");
  return absl::FromUnixMicros(*us);
}

// The same, NULL as nullopt.
inline absl::StatusOr<std::optional<absl::Time>> OptionalMicros(
    const std::optional<std::string>& v) {
  if (!v) return std::optional<absl::Time>();
  absl::StatusOr<absl::Time> t = Micros(v);
  if (!t.ok()) return t.status();
  return std::optional<absl::Time>(*t);
}

// SQL selecting timestamptz `column` as Unix microseconds.
inline std::string UnixMicros(absl::string_view column) {
  return absl::StrCat("(extract(epoch from ", column, ") * 1000000)::bigint");
}

// A duration as seconds for make_interval(secs => ...).
inline std::string Secs(absl::Duration d) {
  return absl::StrCat(absl::ToDoubleSeconds(d));
}

}  // namespace vouch::store
