// File: tpm/test_util.h
// Helpers shared by the tpm tests: golden files from tests/tpm/data and
// small byte edits. Test-only; not thread-safe.
#ifndef VOUCH_TESTS_TPM_TEST_UTIL_H_
#define VOUCH_TESTS_TPM_TEST_UTIL_H_

#include <catch2/catch.hpp>
#include <string>

#include "common/bytes.h"
#include "common/file.h"

namespace vouch::tpmtest {

inline std::string DataPath(const std::string& name) {
  return std::string(VOUCH_TPM_TEST_DATA_DIR) + "/" + name;
}

inline Bytes ReadBytes(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileUpTo(path, 1 << 20);
  INFO(path);
  REQUIRE(text.ok());
  return ToBytes(*text);
}

inline Bytes ReadGolden(const std::string& name) {
  return ReadBytes(DataPath(name));
}

inline Bytes Flip(Bytes b, size_t at) {
  b.at(at) ^= 0x01;
  return b;
}

}  // namespace vouch::tpmtest

#endif  // VOUCH_TESTS_TPM_TEST_UTIL_H_
