// File: store/pg_handle.h
// RAII for libpq objects (the only code that includes libpq-fe.h is in
// src/store). Move-only; a PGconn is used by one thread at a time.
#ifndef VOUCH_STORE_PG_HANDLE_H_
#define VOUCH_STORE_PG_HANDLE_H_

#include <libpq-fe.h>

#include "common/c_handle.h"

namespace vouch::store {

using PgConnPtr = CHandle<PGconn, PQfinish>;
using PgResultPtr = CHandle<PGresult, PQclear>;

}  // namespace vouch::store

#endif  // VOUCH_STORE_PG_HANDLE_H_
