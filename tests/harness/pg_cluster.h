// File: harness/pg_cluster.h
// PgCluster: a throwaway PostgreSQL server for [pg] tests, in its own temp
// dir, on a free 127.0.0.1 port and a private Unix socket dir, superuser
// "vouch" with trust auth. Test-only: never point it at real data. Not
// thread-safe to Stop() concurrently; the accessors are const and safe.
//
//   absl::StatusOr<std::unique_ptr<PgCluster>> pg = PgCluster::Start();
//   REQUIRE(pg.ok());
//   PGconn* conn = PQconnectdb((*pg)->conninfo().c_str());

#ifndef VOUCH_TESTS_HARNESS_PG_CLUSTER_H_
#define VOUCH_TESTS_HARNESS_PG_CLUSTER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "harness/process.h"
#include "harness/temp_dir.h"

namespace vouch::testing {

class PgCluster {
 public:
  static constexpr char kUser[] = "vouch";
  static constexpr char kDefaultDatabase[] = "postgres";

  // initdb + `pg_ctl start -w`. Binaries: $VOUCH_PG_BINDIR, else the newest
  // /usr/lib/postgresql/<version>/bin. As root, the server runs as
  // $VOUCH_TEST_PG_USER (default "postgres"), which must be able to reach
  // $TMPDIR. Retries up to 3 ports; errors carry the server log's tail.
  static absl::StatusOr<std::unique_ptr<PgCluster>> Start();

  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;
  // Stop()s, then removes the directory (kept with VOUCH_TEST_KEEP=1).
  ~PgCluster();

  // `pg_ctl stop -m immediate -w`, then SIGKILL for the postmaster and any
  // process still naming dir() (backends carry it via cluster_name). OK iff
  // no such process remains. Idempotent.
  absl::Status Stop();
  // Starts the stopped server again on the same port and data (a database
  // outage in a test ends).
  absl::Status Restart();

  // libpq connection strings: over the Unix socket / over TCP 127.0.0.1.
  std::string conninfo(absl::string_view dbname = kDefaultDatabase) const;
  std::string tcp_conninfo(absl::string_view dbname = kDefaultDatabase) const;

  int port() const { return port_; }
  const std::string& dir() const { return dir_.path(); }
  std::string data_dir() const { return dir_.Join("data"); }
  std::string socket_dir() const { return dir_.Join("sock"); }
  std::string log_path() const { return dir_.Join("pg.log"); }
  const std::string& bin_dir() const { return bin_dir_; }
  // OS user the server runs as; empty means the current user. Pass it as
  // ProcessOptions::run_as to run client tools "as the server side".
  const std::string& os_user() const { return os_user_; }

  // First line of data/postmaster.pid; kNotFound once the server is stopped.
  absl::StatusOr<pid_t> postmaster_pid() const;

  // Runs `psql -X -A -t -v ON_ERROR_STOP=1 -c <sql>` over the socket as
  // os_user() and returns its output.
  absl::StatusOr<std::string> Psql(
      absl::string_view sql, absl::string_view dbname = kDefaultDatabase) const;

 private:
  PgCluster(TempDir dir, std::string bin_dir, std::string os_user)
      : dir_(std::move(dir)),
        bin_dir_(std::move(bin_dir)),
        os_user_(std::move(os_user)) {}

  // Options for running a server-side tool (user, cwd, clean environment).
  ProcessOptions ServerSideOptions() const;
  absl::Status StartServer(bool same_port = false);

  TempDir dir_;
  std::string bin_dir_;
  std::string os_user_;
  int port_ = 0;
  pid_t started_pid_ = -1;
  bool stopped_ = true;
};

}  // namespace vouch::testing

#endif  // VOUCH_TESTS_HARNESS_PG_CLUSTER_H_
