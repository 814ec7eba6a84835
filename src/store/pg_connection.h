// File: store/pg_connection.h
// One PostgreSQL connection with parameterised queries only (no SQL is ever
// built from input). libpq errors become absl::Status here and nowhere else:
// connection loss, serialization failures and shutdowns are kUnavailable
// (retry), unique violations kAlreadyExists, the rest kInternal. Not
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

namespace vouch::store {

// A query result copied out of libpq: rows of nullable text values.
struct PgRows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  int64_t affected = 0;  // For INSERT/UPDATE/DELETE: rows touched.
};

// A parameter: text, or NULL when empty optional.
using PgParam = std::optional<std::string>;

// One statement with its $1..$n text parameters. With `prepare_as`,
// QueryPipelined prepares it once per connection under that name and then
// only binds and executes it (PostgreSQL plans a statement like the
// verdict's in about as long as it runs it).
struct PgStatement {
  std::string sql;
  std::vector<PgParam> params;
  std::string prepare_as;
};

// bytea in PostgreSQL's text form ("\\x" + hex) and back; FromBytea is
// kInternal on anything else (the database produced it).
std::string ToBytea(absl::string_view bytes);
absl::StatusOr<std::string> FromBytea(absl::string_view text);

// A one-dimensional array literal ({"a","b"}) for a text[] parameter: each
// element double-quoted with " and \ escaped, so any text is safe.
std::string ToTextArray(const std::vector<std::string>& items);

class PgConnection {
 public:
  // `conninfo` is a libpq connection string or URI. The password, if any,
  // never appears in returned errors.
  static absl::StatusOr<std::unique_ptr<PgConnection>> Connect(
      const std::string& conninfo);
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

  // Runs a statement whose result rows are not needed; returns rows affected.
  absl::StatusOr<int64_t> Exec(absl::string_view sql,
                               const std::vector<PgParam>& params = {});

  // Runs several statements without parameters (simple query protocol). Only
  // for SQL that is part of the binary (schema migrations), never for text
  // that came from outside.
  absl::Status ExecScript(absl::string_view sql);

  // False once the connection is broken (the pool then drops it).
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
