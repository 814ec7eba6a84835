// File: store/pg_connection.h
// One PostgreSQL connection with parameterised queries only (no SQL is ever
// built from input). libpq errors become absl::Status here and nowhere else:
// connection loss, serialization failures and shutdowns are kUnavailable
// (retry), unique violations kAlreadyExists, the rest kInternal. No call
// waits on the network longer than PgOptions allows: a database that stops
// answering (a partition, a black hole) is kUnavailable within
// statement_timeout + kReplyGrace and the connection is dropped. Not
// thread-safe: one thread uses a connection at a time.
//
//   VOUCH_ASSIGN_OR_RETURN(auto db, PgConnection::Connect(conninfo));
//   VOUCH_ASSIGN_OR_RETURN(PgRows rows,
//       db->Query("SELECT agent_id FROM agents WHERE tenant = $1", {tenant}));
#ifndef VOUCH_STORE_PG_CONNECTION_H_
#define VOUCH_STORE_PG_CONNECTION_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vouch::store {

// A query result copied out of libpq: rows of nullable text values.
struct PgRows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  int64_t affected = 0;  // For INSERT/UPDATE/DELETE: rows touched.
};

// A parameter: text, or NULL when empty optional.
using PgParam = std::optional<std::string>;

// One statement with its $1..$n parameters. With `prepare_as`,
// QueryPipelined prepares it once per connection under that name and then
// only binds and executes it (PostgreSQL plans a statement like the
// verdict's in about as long as it runs it). `sql` is not copied: it must
// outlive the call (a literal, or a static built once). Parameter i (from
// 0) whose bit is set in `bytea_params` is raw bytes sent as a binary bytea
// (no hex text to build or for PostgreSQL to decode; its type is declared
// bytea, so a statement that uses it otherwise does not prepare); the
// others are text.
struct PgStatement {
  absl::string_view sql;
  std::vector<PgParam> params;
  std::string prepare_as;
  uint64_t bytea_params = 0;
};

// bytea in PostgreSQL's text form ("\\x" + hex) and back; FromBytea is
// kInternal on anything else (the database produced it).
std::string ToBytea(absl::string_view bytes);
absl::StatusOr<std::string> FromBytea(absl::string_view text);

// A one-dimensional array literal ({"a","b"}) for a text[] parameter: each
// element double-quoted with " and \ escaped, so any text is safe.
std::string ToTextArray(const std::vector<std::string>& items);

// How long a connection may wait on PostgreSQL. The libpq parameters go in
// before the connection string, so the same keyword in `conninfo` (e.g.
// `?connect_timeout=30`) wins; statement_timeout is SET after connecting.
// Keepalives and tcp_user_timeout apply to TCP only (not Unix sockets).
struct PgOptions {
  absl::Duration connect_timeout = absl::Seconds(5);  // Whole handshake.
  // Server-side limit per statement (SET statement_timeout); zero = none.
  absl::Duration statement_timeout = absl::Seconds(10);
  absl::Duration keepalives_idle = absl::Seconds(10);
  absl::Duration keepalives_interval = absl::Seconds(5);
  int keepalives_count = 3;
  // Unacknowledged data older than this breaks the connection (Linux).
  absl::Duration tcp_user_timeout = absl::Seconds(20);
  // PgPool: a connection idle longer than this is checked (SELECT 1, within
  // kIdleCheckTimeout) before it is handed out, and replaced when the check
  // fails (a restarted server, a proxy that dropped it); zero checks every
  // time.
  absl::Duration idle_check = absl::Seconds(30);
};

// How long PgPool waits for the answer to an idle connection's check.
inline constexpr absl::Duration kIdleCheckTimeout = absl::Seconds(2);

// What the client waits for a reply beyond statement_timeout before it gives
// up on the connection (something that accepts bytes but never answers).
inline constexpr absl::Duration kReplyGrace = absl::Seconds(5);

// While alive, bounds every database wait on this thread (pool waits and
// replies) by `deadline`, so a server can answer its caller (e.g. before a
// gRPC deadline) instead of waiting out statement_timeout + kReplyGrace. A
// reply cut short drops its connection like any other timeout. Scopes nest;
// the earliest deadline wins.
//
//   const store::CallDeadline bound(absl::Now() + absl::Seconds(3));
class CallDeadline {
 public:
  explicit CallDeadline(absl::Time deadline);
  ~CallDeadline();
  CallDeadline(const CallDeadline&) = delete;
  CallDeadline& operator=(const CallDeadline&) = delete;

  // This thread's innermost bound; InfiniteFuture() outside any scope.
  static absl::Time Current();

 private:
  absl::Time previous_;
};

class PgConnection {
 public:
  // `conninfo` is a libpq connection string or URI. The password, if any,
  // never appears in returned errors.
  static absl::StatusOr<std::unique_ptr<PgConnection>> Connect(
      const std::string& conninfo, const PgOptions& options = PgOptions());
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one statement with $1..$n text parameters.
  absl::StatusOr<PgRows> Query(absl::string_view sql,
                               const std::vector<PgParam>& params = {});
  // Sends all statements at once in libpq's pipeline mode (one round trip)
  // and returns each one's rows in order. On the first failing statement it
  // returns that error; PostgreSQL then skips the rest, so send BEGIN ...
  // COMMIT inside to make the whole list atomic (and ROLLBACK after an
  // error: the transaction is left aborted).
  absl::StatusOr<std::vector<PgRows>> QueryPipelined(
      const std::vector<PgStatement>& statements);
  // One statement, prepared under `statement.prepare_as` the first time this
  // connection runs it (QueryPipelined of one): for a query run often
  // enough that planning it each time shows.
  absl::StatusOr<PgRows> QueryPrepared(const PgStatement& statement);

  // Runs a statement whose result rows are not needed; returns rows affected.
  absl::StatusOr<int64_t> Exec(absl::string_view sql,
                               const std::vector<PgParam>& params = {});

  // Runs several statements without parameters (simple query protocol). Only
  // for SQL that is part of the binary (schema migrations), never for text
  // that came from outside.
  absl::Status ExecScript(absl::string_view sql);

  // Changes this connection's statement_timeout (and with it how long the
  // client waits for a reply); zero = no server-side limit, the client then
  // waits an hour at most. For migrations, which may lock and rewrite tables.
  absl::Status SetStatementTimeout(absl::Duration timeout);

  // False once the connection is broken or a reply did not come in time
  // (the pool then drops it).
  bool Healthy() const;

  // The server_version_num the server reports (e.g. 150018).
  int ServerVersion() const;

 private:
  struct Handle;
  explicit PgConnection(std::unique_ptr<Handle> handle);

  std::unique_ptr<Handle> handle_;
};

}  // namespace vouch::store

#endif  // VOUCH_STORE_PG_CONNECTION_H_
