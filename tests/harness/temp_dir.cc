#include "harness/temp_dir.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "harness/process.h"

namespace vouch::testing {
namespace {

std::string BaseDir() {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string base = (tmpdir != nullptr && tmpdir[0] != '\0') ? tmpdir : "/tmp";
  struct stat st;
  if (stat(base.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) base = "/tmp";
  char* real = realpath(base.c_str(), nullptr);
  if (real != nullptr) {
    base = real;
    free(real);
  }
  return base;
}

absl::Status ErrnoStatus(absl::string_view what, absl::string_view path,
                         int err) {
  return absl::InternalError(
      absl::StrCat(what, " ", path, ": ", std::strerror(err)));
}

}  // namespace

bool KeepTestDirs() {
  const char* keep = std::getenv("VOUCH_TEST_KEEP");
  return keep != nullptr && keep[0] != '\0' && std::strcmp(keep, "0") != 0;
}

absl::StatusOr<TempDir> TempDir::Create(absl::string_view label) {
  if (label.find('/') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("TempDir label must not contain '/': ", label));
  }
  std::string templ = absl::StrCat(BaseDir(), "/vouch-test-", label, "XXXXXX");
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    return ErrnoStatus("mkdtemp", templ, errno);
  }
  return TempDir(std::string(buf.data()));
}

TempDir::TempDir(TempDir&& other) noexcept
    : path_(std::exchange(other.path_, std::string())) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    absl::Status ignored = Remove();
    (void)ignored;
    path_ = std::exchange(other.path_, std::string());
  }
  return *this;
}

TempDir::~TempDir() {
  absl::Status status = Remove();
  if (!status.ok()) {
    std::fprintf(stderr, "vouch-test: %s\n", status.ToString().c_str());
  }
}

std::string TempDir::Join(absl::string_view name) const {
  return absl::StrCat(path_, "/", name);
}

absl::Status TempDir::ChownTo(absl::string_view user) {
  if (path_.empty()) return absl::FailedPreconditionError("TempDir moved-from");
  absl::StatusOr<UserInfo> info = LookupUser(user);
  if (!info.ok()) return info.status();
  if (lchown(path_.c_str(), info->uid, info->gid) != 0) {
    return ErrnoStatus("chown", path_, errno);
  }
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
       !ec && it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    const std::string p = it->path().string();
    if (lchown(p.c_str(), info->uid, info->gid) != 0) {
      return ErrnoStatus("chown", p, errno);
    }
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("walking ", path_, ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status TempDir::Remove() {
  if (path_.empty()) return absl::OkStatus();
  std::string path = std::exchange(path_, std::string());
  if (KeepTestDirs()) {
    std::fprintf(stderr, "vouch-test: VOUCH_TEST_KEEP set, keeping %s\n",
                 path.c_str());
    return absl::OkStatus();
  }
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) {
    // A server may have left a directory without write permission for us
    // (only matters when not root): make every directory u+rwx and retry.
    std::error_code walk_ec;
    std::filesystem::permissions(path, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, walk_ec);
    for (auto it = std::filesystem::recursive_directory_iterator(path, walk_ec);
         !walk_ec && it != std::filesystem::recursive_directory_iterator();
         it.increment(walk_ec)) {
      if (it->is_directory(walk_ec) && !it->is_symlink(walk_ec)) {
        std::filesystem::permissions(
            it->path(), std::filesystem::perms::owner_all,
            std::filesystem::perm_options::add, walk_ec);
      }
    }
    ec.clear();
    std::filesystem::remove_all(path, ec);
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("removing ", path, ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace vouch::testing
