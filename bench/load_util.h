// File: bench/load_util.h
// What the load programs (verifier_load, fleet, translog_pg, verdict_pg)
// share: fail-fast helpers that name the program, a process's CPU time from
// /proc (whole, by thread name, or with its children), elapsed time and
// percentiles, the registration row of a simulated agent and the empty
// runtime policy it is enrolled with. Bench-only; header-only.
//
//   auto pool = Must(testing::PgCluster::Start(), "PostgreSQL");
//   const double cpu = CpuSeconds(verifier.pid());
#ifndef VOUCH_BENCH_LOAD_UTIL_H_
#define VOUCH_BENCH_LOAD_UTIL_H_

#include <errno.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
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
#include "absl/strings/string_view.h"
#include "store/pg_connection.h"
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

// The fields of a /proc stat file after the command name ("state ppid
// ..."; field 3 of proc(5) is [0]); empty once the process is gone.
inline std::vector<std::string> StatFields(const std::string& path) {
  std::ifstream f(path);
  std::string stat((std::istreambuf_iterator<char>(f)),
                   std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) return {};
  return absl::StrSplit(stat.substr(close + 2), ' ');
}

// utime + stime from a /proc stat file, in seconds (0 once it is gone);
// with `reaped_children`, plus cutime + cstime (children waited for).
inline double StatCpuSeconds(const std::string& path,
                             bool reaped_children = false) {
  const std::vector<std::string> fields = StatFields(path);
  if (fields.size() < 15) return 0;
  double ticks = 0;
  for (size_t i = 11; i < (reaped_children ? 15u : 13u); ++i) {
    double v = 0;
    (void)absl::SimpleAtod(fields[i], &v);
    ticks += v;
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// utime + stime of a process, in seconds (0 once it is gone).
inline double CpuSeconds(pid_t pid) {
  return StatCpuSeconds(absl::StrCat("/proc/", pid, "/stat"));
}

// The live processes whose parent is `root`.
inline std::vector<pid_t> ChildPids(pid_t root) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    const std::vector<std::string> fields = StatFields(entry.path() / "stat");
    pid_t ppid = 0;
    if (fields.size() > 1 && absl::SimpleAtoi(fields[1], &ppid) &&
        ppid == root) {
      out.push_back(pid);
    }
  }
  return out;
}

// CPU seconds of a process and its children, live or reaped (PostgreSQL:
// the postmaster, its backends and auxiliary processes). Grandchildren
// count only once reaped.
inline double ProcessTreeCpuSeconds(pid_t root) {
  double cpu =
      StatCpuSeconds(absl::StrCat("/proc/", root, "/stat"), /*reaped=*/true);
  for (pid_t pid : ChildPids(root)) cpu += CpuSeconds(pid);
  return cpu;
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

// Seconds of the steady clock since `since`.
inline double SecondsSince(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since)
      .count();
}

// The value at fraction `p` (0..1) of `v` sorted (nearest rank below); 0
// for no values.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

// An agent as the registrar leaves it once activated, in tenant "default":
// the registrations row with this AIK (a placeholder EK).
inline absl::Status RegisterAgent(store::PgConnection& db,
                                  const std::string& agent_id,
                                  absl::string_view aik_public,
                                  absl::string_view aik_name) {
  return db
      .Exec(
          "INSERT INTO registrations (agent_id, tenant, ek_public, "
          "ek_sha256, ek_certificate, aik_public, aik_name, activated_at) "
          "VALUES ($1, 'default', '\\x00', sha256(convert_to($1::text, "
          "'UTF8')), '\\x00', $2, $3, now())",
          {agent_id, store::ToBytea(aik_public), store::ToBytea(aik_name)})
      .status();
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
