#include "common/file.h"

#include <cstdio>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vouch {

absl::StatusOr<std::string> ReadFileUpTo(const std::string& path,
                                         size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::string data;
  char buf[8192];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > max_bytes) {
      return absl::OutOfRangeError(
          absl::StrCat(path, ": larger than ", max_bytes, " bytes"));
    }
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": cannot read"));
  return data;
}

absl::StatusOr<std::string> ReadPemFile(const std::string& path) {
  constexpr size_t kMaxPemBytes = size_t{256} * 1024;
  absl::StatusOr<std::string> text = ReadFileUpTo(path, kMaxPemBytes);
  if (absl::IsNotFound(text.status()) || absl::IsDataLoss(text.status())) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  }
  if (!text.ok() || !absl::StrContains(*text, "-----BEGIN")) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a PEM file"));
  }
  return text;
}

absl::Status WriteFile(const std::string& path, absl::string_view text) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open for writing"));
  }
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

}  // namespace vouch
