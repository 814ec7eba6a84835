#include "store/pg_connection.h"

#include <algorithm>
#include <cstdlib>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "store/pg_handle.h"

namespace vouch::store {

struct PgConnection::Handle {
  PgConnPtr conn;
  absl::flat_hash_set<std::string> prepared;  // Names, on this connection.
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

PgConnection::PgConnection(std::unique_ptr<Handle> handle)
    : handle_(std::move(handle)) {}
PgConnection::~PgConnection() = default;

absl::StatusOr<std::unique_ptr<PgConnection>> PgConnection::Connect(
    const std::string& conninfo) {
  auto handle = std::make_unique<Handle>();
  handle->conn.reset(PQconnectdb(conninfo.c_str()));
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
  return std::unique_ptr<PgConnection>(new PgConnection(std::move(handle)));
}

namespace {

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
  std::vector<const char*> values = ParamValues(params);
  const std::string statement(sql);
  PgResultPtr res(PQexecParams(handle_->conn.get(), statement.c_str(),
                               static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr,
                               /*resultFormat=*/0));
  const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    return StatusFromResult(res.get(), handle_->conn.get(), "query failed");
  }
  return RowsOf(res);
}

absl::StatusOr<std::vector<PgRows>> PgConnection::QueryPipelined(
    const std::vector<PgStatement>& statements) {
  PGconn* conn = handle_->conn.get();
  if (PQenterPipelineMode(conn) != 1) {
    return StatusFromResult(nullptr, conn, "pipeline mode");
  }
  // One result per statement; a statement prepared here adds one before it.
  std::vector<const std::string*> preparing;  // Per result: a name or null.
  size_t sent = 0;
  for (const PgStatement& s : statements) {
    std::vector<const char*> values = ParamValues(s.params);
    const int n = static_cast<int>(values.size());
    if (s.prepare_as.empty()) {
      if (PQsendQueryParams(conn, s.sql.c_str(), n, nullptr, values.data(),
                            nullptr, nullptr, 0) != 1) {
        break;
      }
    } else {
      const bool known = handle_->prepared.contains(s.prepare_as) ||
                         std::any_of(preparing.begin(), preparing.end(),
                                     [&](const std::string* p) {
                                       return p && *p == s.prepare_as;
                                     });
      if (!known) {
        if (PQsendPrepare(conn, s.prepare_as.c_str(), s.sql.c_str(), n,
                          nullptr) != 1) {
          break;
        }
        preparing.push_back(&s.prepare_as);
      }
      if (PQsendQueryPrepared(conn, s.prepare_as.c_str(), n, values.data(),
                              nullptr, nullptr, 0) != 1) {
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
    PgResultPtr res(PQgetResult(conn));
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
    PgResultPtr end(PQgetResult(conn));  // null after each statement
  }
  if (synced && PQstatus(conn) == CONNECTION_OK) {
    PgResultPtr sync(PQgetResult(conn));  // PGRES_PIPELINE_SYNC
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
  const std::string script(sql);
  PgResultPtr res(PQexec(handle_->conn.get(), script.c_str()));
  const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    return StatusFromResult(res.get(), handle_->conn.get(), "script failed");
  }
  return absl::OkStatus();
}

bool PgConnection::Healthy() const {
  return PQstatus(handle_->conn.get()) == CONNECTION_OK;
}

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
