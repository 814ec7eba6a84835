// vouch-testenv: the harness as a program, for scripts/demo and for poking
// at Vouch by hand. Starts a throw-away PostgreSQL and a swtpm (ports chosen
// at run time, 127.0.0.1 only), writes their coordinates as shell variable
// assignments to --env-file, and tears both down on SIGINT/SIGTERM.
//
//   vouch-testenv --env-file /tmp/env &   then   . /tmp/env
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/app.h"
#include "harness/pg_cluster.h"
#include "harness/swtpm.h"

namespace {

// Single-quotes `value` for POSIX sh.
std::string ShellQuote(const std::string& value) {
  return absl::StrCat("'", absl::StrReplaceAll(value, {{"'", "'\\''"}}), "'");
}

int Usage() {
  std::fprintf(stderr, "usage: vouch-testenv --env-file PATH\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string env_file;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--env-file") == 0 && i + 1 < argc) {
      env_file = argv[++i];
    } else {
      return Usage();
    }
  }
  if (env_file.empty()) return Usage();

  // Before any thread exists, so WaitForShutdown below takes the signals.
  vouch::BlockShutdownSignals();

  auto pg = vouch::testing::PgCluster::Start();
  if (!pg.ok()) {
    std::fprintf(stderr, "vouch-testenv: PostgreSQL: %s\n",
                 pg.status().ToString().c_str());
    return 1;
  }
  auto swtpm = vouch::testing::Swtpm::Start();
  if (!swtpm.ok()) {
    std::fprintf(stderr, "vouch-testenv: swtpm: %s\n",
                 swtpm.status().ToString().c_str());
    return 1;
  }
  const std::string text = absl::StrCat(
      "VOUCH_DATABASE_URL=", ShellQuote((*pg)->conninfo()), "\n",
      "VOUCH_AGENT_TCTI=", ShellQuote((*swtpm)->tcti()), "\n",
      "VOUCH_TESTENV_EK_ROOT_CA=", ShellQuote((*swtpm)->root_ca_cert_path()),
      "\n", "VOUCH_TESTENV_EK_ISSUER_CA=", ShellQuote((*swtpm)->ca_cert_path()),
      "\n");
  const std::string tmp = env_file + ".tmp";
  {
    std::ofstream out(tmp);
    out << text;
    if (!out.good()) {
      std::fprintf(stderr, "vouch-testenv: cannot write %s\n", tmp.c_str());
      return 1;
    }
  }
  if (std::rename(tmp.c_str(), env_file.c_str()) != 0) {
    std::fprintf(stderr, "vouch-testenv: cannot write %s\n", env_file.c_str());
    return 1;
  }
  std::fprintf(stderr, "vouch-testenv: ready\n%s", text.c_str());
  const int sig = vouch::WaitForShutdown();
  std::fprintf(stderr, "vouch-testenv: stopping (signal %d)\n", sig);
  return 0;  // Destructors stop swtpm and PostgreSQL and remove their dirs.
}
