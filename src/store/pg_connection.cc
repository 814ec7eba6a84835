#include "store/pg_connection.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "store/pg_handle.h"

namespace vouch::store {

struct PgConnection::Handle {
  PgConnPtr conn;
  absl::flat_hash_set<std::string> prepared;      // Names, on this connection.
  absl::Duration reply_timeout = absl::Hours(1);  // Per call, client side.
  bool broken = false;  // A reply timed out: the protocol state is unknown.

  absl::Status Usable() const;
  absl::StatusOr<PgResultPtr> NextResult(absl::Time deadline);
};

namespace {

std::string OneLine(const char* text) {
  std::string s = text == nullptr ? "" : text;
  absl::StripTrailingAsciiWhitespace(&s);
  for (char& c : s) {
    if (c == '\n') c = ' ';
  }
  return s;
}

// SQLSTATE classes (PostgreSQL Appendix A) mapped to what a caller can do.
absl::Status StatusFromResult(const PGresult* res, PGconn* conn,
                              absl::string_view what) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  const std::string message = absl::StrCat(
      what, ": ",
      OneLine(res ? PQresultErrorMessage(res) : PQerrorMessage(conn)),
      state ? absl::StrCat(" [SQLSTATE ", state, "]") : "");
  if (PQstatus(conn) != CONNECTION_OK) return absl::UnavailableError(message);
  const absl::string_view code = state ? state : "";
  if (absl::StartsWith(code, "08") ||  // connection exception
      code == "40001" ||               // serialization_failure
      code == "40P01" ||               // deadlock_detected
      absl::StartsWith(code, "57") ||  // operator intervention (shutdown)
      absl::StartsWith(code, "53")) {  // insufficient resources
    return absl::UnavailableError(message);
  }
  if (code == "23505") return absl::AlreadyExistsError(message);
  if (absl::StartsWith(code, "23")) {
    return absl::FailedPreconditionError(message);
  }
  return absl::InternalError(message);
}

}  // namespace

namespace {
thread_local absl::Time call_deadline = absl::InfiniteFuture();
}  // namespace

CallDeadline::CallDeadline(absl::Time deadline) : previous_(call_deadline) {
  call_deadline = std::min(previous_, deadline);
}
CallDeadline::~CallDeadline() { call_deadline = previous_; }
absl::Time CallDeadline::Current() { return call_deadline; }

PgConnection::PgConnection(std::unique_ptr<Handle> handle)
    : handle_(std::move(handle)) {}
PgConnection::~PgConnection() = default;

namespace {

// Whole seconds, at least `least` (libpq's units).
std::string Seconds(absl::Duration d, int64_t least) {
  return absl::StrCat(
      std::max(least, absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1)))));
}

// The server-side limit and the client's wait derived from it.
absl::Duration ReplyTimeout(absl::Duration statement_timeout) {
  return statement_timeout > absl::ZeroDuration()
             ? statement_timeout + kReplyGrace
             : absl::Hours(1);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PgConnection>> PgConnection::Connect(
    const std::string& conninfo, const PgOptions& options) {
  auto handle = std::make_unique<Handle>();
  // Defaults first, then the expanded connection string, whose own keywords
  // override them (libpq processes the arrays in order).
  const std::string connect_timeout = Seconds(options.connect_timeout, 2);
  const std::string idle = Seconds(options.keepalives_idle, 1);
  const std::string interval = Seconds(options.keepalives_interval, 1);
  const std::string count = absl::StrCat(std::max(1, options.keepalives_count));
  const std::string user_timeout =
      absl::StrCat(absl::ToInt64Milliseconds(options.tcp_user_timeout));
  const char* keys[] = {"connect_timeout",  "keepalives",
                        "keepalives_idle",  "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout",
                        "dbname",           nullptr};
  const char* values[] = {
      connect_timeout.c_str(), "1",           idle.c_str(),
      interval.c_str(),        count.c_str(), user_timeout.c_str(),
      conninfo.c_str(),        nullptr};
  handle->conn.reset(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  if (!handle->conn) {
    return absl::ResourceExhaustedError(
        "libpq could not allocate a connection");
  }
  if (PQstatus(handle->conn.get()) != CONNECTION_OK) {
    // libpq's message names host and port but never the password.
    return absl::UnavailableError(
        absl::StrCat("cannot connect to PostgreSQL: ",
                     OneLine(PQerrorMessage(handle->conn.get()))));
  }
  // Non-blocking sends, so a peer that stops reading cannot hold a write.
  if (PQsetnonblocking(handle->conn.get(), 1) != 0) {
    return absl::UnavailableError(
        absl::StrCat("PostgreSQL connection: ",
                     OneLine(PQerrorMessage(handle->conn.get()))));
  }
  // Until statement_timeout is set, SET itself may take connect_timeout.
  handle->reply_timeout = ReplyTimeout(options.connect_timeout);
  std::unique_ptr<PgConnection> db(new PgConnection(std::move(handle)));
  VOUCH_RETURN_IF_ERROR(db->SetStatementTimeout(options.statement_timeout));
  return db;
}

absl::Status PgConnection::SetStatementTimeout(absl::Duration timeout) {
  const int64_t ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(timeout));
  // An integer, not input: safe to put in the text (SET takes no $1).
  VOUCH_RETURN_IF_ERROR(
      Exec(absl::StrCat("SET statement_timeout = ", ms)).status());
  handle_->reply_timeout = ReplyTimeout(timeout);
  return absl::OkStatus();
}

namespace {

// Flushes what libpq queued and waits until a whole result is buffered
// (PQgetResult will not block). kUnavailable when the connection breaks or
// `deadline` passes first.
absl::Status AwaitReply(PGconn* conn, absl::Time deadline) {
  while (true) {
    const int flushed = PQflush(conn);  // 0 all sent, 1 more to send
    if (flushed < 0) return StatusFromResult(nullptr, conn, "send failed");
    if (flushed == 0 && PQisBusy(conn) == 0) return absl::OkStatus();
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::UnavailableError(
          "PostgreSQL did not answer in time (connection dropped)");
    }
    pollfd pfd{};
    pfd.fd = PQsocket(conn);
    if (pfd.fd < 0) return StatusFromResult(nullptr, conn, "no socket");
    pfd.events = static_cast<short>(POLLIN | (flushed == 1 ? POLLOUT : 0));
    const int ms = static_cast<int>(std::min<int64_t>(
        absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))),
        60000));
    const int ready = poll(&pfd, 1, ms);
    if (ready < 0 && errno != EINTR) {
      return absl::UnavailableError("poll on the PostgreSQL socket failed");
    }
    if (ready > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP)) != 0 &&
        PQconsumeInput(conn) == 0) {
      return StatusFromResult(nullptr, conn, "receive failed");
    }
  }
}

}  // namespace

// Waits for the next result of a call whose wait ends at `deadline`; a
// timeout marks the connection broken (its replies may still arrive, out of
// step with the next caller's).
absl::StatusOr<PgResultPtr> PgConnection::Handle::NextResult(
    absl::Time deadline) {
  if (absl::Status s = AwaitReply(conn.get(), deadline); !s.ok()) {
    broken = true;
    return s;
  }
  return PgResultPtr(PQgetResult(conn.get()));
}

absl::Status PgConnection::Handle::Usable() const {
  if (broken || PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError("PostgreSQL connection is broken");
  }
  return absl::OkStatus();
}

namespace {

constexpr Oid kByteaOid = 17;  // pg_type.dat: bytea

std::vector<const char*> ParamValues(const std::vector<PgParam>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const PgParam& p : params) values.push_back(p ? p->c_str() : nullptr);
  return values;
}

PgRows RowsOf(const PgResultPtr& res) {
  PgRows out;
  const int ncols = PQnfields(res.get());
  const int nrows = PQntuples(res.get());
  for (int c = 0; c < ncols; ++c)
    out.columns.emplace_back(PQfname(res.get(), c));
  out.rows.reserve(nrows);
  for (int r = 0; r < nrows; ++r) {
    std::vector<std::optional<std::string>> row;
    row.reserve(ncols);
    for (int c = 0; c < ncols; ++c) {
      if (PQgetisnull(res.get(), r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(res.get(), r, c),
                                     PQgetlength(res.get(), r, c)));
      }
    }
    out.rows.push_back(std::move(row));
  }
  const char* tuples = PQcmdTuples(res.get());
  out.affected = (tuples && *tuples) ? std::strtoll(tuples, nullptr, 10) : 0;
  return out;
}

}  // namespace

absl::StatusOr<PgRows> PgConnection::Query(absl::string_view sql,
                                           const std::vector<PgParam>& params) {
  VOUCH_RETURN_IF_ERROR(handle_->Usable());
  const absl::Time deadline =
      std::min(absl::Now() + handle_->reply_timeout, CallDeadline::Current());
  PGconn* conn = handle_->conn.get();
  std::vector<const char*> values = ParamValues(params);
  const std::string statement(sql);
  if (PQsendQueryParams(conn, statement.c_str(),
                        static_cast<int>(values.size()), nullptr, values.data(),
                        nullptr, nullptr, /*resultFormat=*/0) != 1) {
    return StatusFromResult(nullptr, conn, "query failed");
  }
  // One result, then null; keep the first failure.
  std::optional<PgRows> rows;
  std::optional<absl::Status> error;
  while (true) {
    VOUCH_ASSIGN_OR_RETURN(PgResultPtr res, handle_->NextResult(deadline));
    if (res == nullptr) break;
    const ExecStatusType st = PQresultStatus(res.get());
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      if (!rows) rows = RowsOf(res);
    } else if (!error) {
      error = StatusFromResult(res.get(), conn, "query failed");
    }
  }
  if (error) return *error;
  if (!rows) return StatusFromResult(nullptr, conn, "query failed");
  return *std::move(rows);
}

absl::StatusOr<PgRows> PgConnection::QueryPrepared(
    const PgStatement& statement) {
  VOUCH_ASSIGN_OR_RETURN(std::vector<PgRows> results,
                         QueryPipelined({statement}));
  return std::move(results.at(0));
}

absl::StatusOr<std::vector<PgRows>> PgConnection::QueryPipelined(
    const std::vector<PgStatement>& statements) {
  VOUCH_RETURN_IF_ERROR(handle_->Usable());
  const absl::Time deadline =
      std::min(absl::Now() + handle_->reply_timeout, CallDeadline::Current());
  PGconn* conn = handle_->conn.get();
  if (PQenterPipelineMode(conn) != 1) {
    return StatusFromResult(nullptr, conn, "pipeline mode");
  }
  // One result per statement; a statement prepared here adds one before it.
  std::vector<const std::string*> preparing;  // Per result: a name or null.
  size_t sent = 0;
  std::string sql;  // NUL-terminated copy for a statement not prepared.
  for (const PgStatement& s : statements) {
    std::vector<const char*> values = ParamValues(s.params);
    const int n = static_cast<int>(values.size());
    // Binary bytea parameters: declared type, length, format 1.
    std::vector<Oid> types;
    std::vector<int> lengths;
    std::vector<int> formats;
    if (s.bytea_params != 0) {
      types.assign(n, 0);
      lengths.assign(n, 0);
      formats.assign(n, 0);
      for (int i = 0; i < n && i < 64; ++i) {
        if ((s.bytea_params >> i & 1) == 0) continue;
        types[i] = kByteaOid;
        formats[i] = 1;
        if (s.params[i]) lengths[i] = static_cast<int>(s.params[i]->size());
      }
    }
    const Oid* type_ptr = types.empty() ? nullptr : types.data();
    const int* length_ptr = lengths.empty() ? nullptr : lengths.data();
    const int* format_ptr = formats.empty() ? nullptr : formats.data();
    if (s.prepare_as.empty()) {
      sql.assign(s.sql.data(), s.sql.size());
      if (PQsendQueryParams(conn, sql.c_str(), n, type_ptr, values.data(),
                            length_ptr, format_ptr, 0) != 1) {
        break;
      }
    } else {
      const bool known = handle_->prepared.contains(s.prepare_as) ||
                         std::any_of(preparing.begin(), preparing.end(),
                                     [&](const std::string* p) {
                                       return p && *p == s.prepare_as;
                                     });
      if (!known) {
        sql.assign(s.sql.data(), s.sql.size());
        if (PQsendPrepare(conn, s.prepare_as.c_str(), sql.c_str(), n,
                          type_ptr) != 1) {
          break;
        }
        preparing.push_back(&s.prepare_as);
      }
      if (PQsendQueryPrepared(conn, s.prepare_as.c_str(), n, values.data(),
                              length_ptr, format_ptr, 0) != 1) {
        break;
      }
    }
    preparing.push_back(nullptr);
    ++sent;
  }
  const bool synced = PQpipelineSync(conn) == 1;
  std::vector<PgRows> out;
  std::optional<absl::Status> error;
  if (sent < statements.size() || !synced) {
    error = StatusFromResult(nullptr, conn, "pipeline send failed");
  }
  // Each statement's result is followed by a null; the sync comes last.
  for (const std::string* name : preparing) {
    VOUCH_ASSIGN_OR_RETURN(PgResultPtr res, handle_->NextResult(deadline));
    if (res == nullptr) {
      if (!error) error = StatusFromResult(nullptr, conn, "pipeline");
      break;
    }
    const ExecStatusType st = PQresultStatus(res.get());
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      if (name != nullptr) {
        handle_->prepared.insert(*name);
      } else {
        out.push_back(RowsOf(res));
      }
    } else if (!error) {
      error = StatusFromResult(res.get(), conn, "query failed");
    }
    // null after each statement
    VOUCH_ASSIGN_OR_RETURN(PgResultPtr end, handle_->NextResult(deadline));
  }
  if (synced && PQstatus(conn) == CONNECTION_OK) {
    // PGRES_PIPELINE_SYNC
    VOUCH_ASSIGN_OR_RETURN(PgResultPtr sync, handle_->NextResult(deadline));
  }
  PQexitPipelineMode(conn);
  if (error) return *error;
  return out;
}

absl::StatusOr<int64_t> PgConnection::Exec(absl::string_view sql,
                                           const std::vector<PgParam>& params) {
  absl::StatusOr<PgRows> rows = Query(sql, params);
  if (!rows.ok()) return rows.status();
  return rows->affected;
}

absl::Status PgConnection::ExecScript(absl::string_view sql) {
  VOUCH_RETURN_IF_ERROR(handle_->Usable());
  const absl::Time deadline =
      std::min(absl::Now() + handle_->reply_timeout, CallDeadline::Current());
  PGconn* conn = handle_->conn.get();
  const std::string script(sql);
  if (PQsendQuery(conn, script.c_str()) != 1) {
    return StatusFromResult(nullptr, conn, "script failed");
  }
  // One result per statement until null; the first failure is the answer.
  std::optional<absl::Status> error;
  while (true) {
    VOUCH_ASSIGN_OR_RETURN(PgResultPtr res, handle_->NextResult(deadline));
    if (res == nullptr) break;
    const ExecStatusType st = PQresultStatus(res.get());
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && !error) {
      error = StatusFromResult(res.get(), conn, "script failed");
    }
  }
  return error ? *error : absl::OkStatus();
}

bool PgConnection::Healthy() const { return handle_->Usable().ok(); }

std::string ToBytea(absl::string_view bytes) {
  return absl::StrCat("\\x", absl::BytesToHexString(bytes));
}

std::string ToTextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('"');
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

absl::StatusOr<std::string> FromBytea(absl::string_view text) {
  if (!absl::ConsumePrefix(&text, "\\x") || text.size() % 2 != 0) {
    return absl::InternalError("bytea value not in hex form");
  }
  for (char c : text) {
    if (!absl::ascii_isxdigit(c)) {
      return absl::InternalError("bytea value not in hex form");
    }
  }
  return absl::HexStringToBytes(text);
}

int PgConnection::ServerVersion() const {
  return PQserverVersion(handle_->conn.get());
}

}  // namespace vouch::store
