// File: harness/temp_dir.h
// TempDir: a fresh, private directory for one test fixture (mkdtemp under
// $TMPDIR or /tmp, prefix "vouch-test-"), removed recursively on destruction
// unless VOUCH_TEST_KEEP=1. Test-only code: paths and the environment are
// trusted. Not thread-safe; one owner at a time (movable, not copyable).
//
//   absl::StatusOr<TempDir> dir = TempDir::Create("pg-");
//   if (!dir.ok()) return dir.status();
//   std::string log = dir->Join("server.log");

#ifndef VOUCH_TESTS_HARNESS_TEMP_DIR_H_
#define VOUCH_TESTS_HARNESS_TEMP_DIR_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vouch::testing {

// True when the environment asks to keep fixture directories for debugging
// (VOUCH_TEST_KEEP set to anything but "" or "0").
bool KeepTestDirs();

class TempDir {
 public:
  // Creates <$TMPDIR or /tmp>/vouch-test-<label>XXXXXX with mode 0700. The
  // returned path is absolute with symlinks resolved, so it can be matched
  // against /proc/<pid>/cmdline. `label` may be empty; it must not contain '/'.
  static absl::StatusOr<TempDir> Create(absl::string_view label = "");

  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Removes the directory tree (see Remove()); with VOUCH_TEST_KEEP=1 it only
  // prints the path to stderr.
  ~TempDir();

  // Absolute path without a trailing slash; empty after a move-from.
  const std::string& path() const { return path_; }

  // path() + "/" + name.
  std::string Join(absl::string_view name) const;

  // Changes the owner (and group, to the user's primary group) of the
  // directory and everything already inside it to `user`. Needs root unless
  // `user` is the current user.
  absl::Status ChownTo(absl::string_view user);

  // Removes the tree now (idempotent); honours VOUCH_TEST_KEEP.
  absl::Status Remove();

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}

  std::string path_;
};

}  // namespace vouch::testing

#endif  // VOUCH_TESTS_HARNESS_TEMP_DIR_H_
