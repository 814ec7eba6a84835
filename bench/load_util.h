// File: bench/load_util.h
// What the load programs (verifier_load, fleet) share: fail-fast helpers
// that name the program, a process's CPU time from /proc (whole or by
// thread name), and the empty runtime policy their simulated agents are
// enrolled with. Bench-only; header-only.
//
//   auto pool = Must(testing::PgCluster::Start(), "PostgreSQL");
//   const double cpu = CpuSeconds(verifier.pid());
#ifndef VOUCH_BENCH_LOAD_UTIL_H_
#define VOUCH_BENCH_LOAD_UTIL_H_

#include <errno.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "store/verifier_store.h"

namespace vouch::bench {

// Prints "<program>: <what>" and exits 1.
[[noreturn]] inline void Die(const std::string& what) {
  std::cerr << program_invocation_short_name << ": " << what << "\n";
  std::exit(1);
}

template <typename T>
T Must(absl::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(absl::StrCat(what, ": ", v.status().message()));
  return *std::move(v);
}

inline void MustOk(const absl::Status& s, const std::string& what) {
  if (!s.ok()) Die(absl::StrCat(what, ": ", s.message()));
}

// utime + stime from a /proc stat file, in seconds (0 once it is gone).
inline double StatCpuSeconds(const std::string& path) {
  std::ifstream f(path);
  std::string stat((std::istreambuf_iterator<char>(f)),
                   std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  if (fields.size() < 13) return 0;
  double ut = 0, st = 0;
  (void)absl::SimpleAtod(fields[11], &ut);
  (void)absl::SimpleAtod(fields[12], &st);
  return (ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// utime + stime of a process, in seconds (0 once it is gone).
inline double CpuSeconds(pid_t pid) {
  return StatCpuSeconds(absl::StrCat("/proc/", pid, "/stat"));
}

// CPU seconds of a process's live threads, summed by thread name (the
// servers name theirs: vouch-commit, vouch-translog, ...).
inline std::map<std::string, double> ThreadCpuSeconds(pid_t pid) {
  std::map<std::string, double> out;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(
           absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream f(task.path() / "comm");
    std::string name;
    if (!std::getline(f, name)) continue;
    out[name] += StatCpuSeconds(task.path() / "stat");
  }
  return out;
}

// The runtime policy "empty" of tenant "default": no digests, so a quote
// with an empty IMA log passes.
inline store::PolicyRow EmptyRuntimePolicy() {
  store::PolicyRow policy;
  policy.tenant = "default";
  policy.name = "empty";
  policy.kind = 1;
  policy.content =
      R"({"meta": {"version": 1}, "release": 0, "digests": {}, "excludes": [],
      "keyrings": {}, "ima": {"ignored_keyrings": [], "log_hash_alg": "sha1",
      "dm_policy": null}, "ima-buf": {}, "verification-keys": ""})";
  return policy;
}

}  // namespace vouch::bench

#endif  // VOUCH_BENCH_LOAD_UTIL_H_
