// File: common/status_macros.h
// Early-return helpers for absl::Status / absl::StatusOr (Abseil 20220623 has
// none). Header-only, no state, safe from any thread.
//
//   VOUCH_RETURN_IF_ERROR(store.Put(x));
//   VOUCH_ASSIGN_OR_RETURN(Bytes nonce, tpm.GetRandom(16));
#ifndef VOUCH_COMMON_STATUS_MACROS_H_
#define VOUCH_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define VOUCH_STATUS_CONCAT_INNER_(a, b) a##b
#define VOUCH_STATUS_CONCAT_(a, b) VOUCH_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) once; returns it from the enclosing
// function if it is not OK.
#define VOUCH_RETURN_IF_ERROR(expr)                                    \
  do {                                                                 \
    ::absl::Status vouch_status_ = (expr); /* moves */                 \
    if (ABSL_PREDICT_FALSE(!vouch_status_.ok())) return vouch_status_; \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>) once. On error returns the status
// from the enclosing function; otherwise moves the value into `lhs`, which may
// be a declaration (`auto x`, `Bytes b`) or an existing variable.
#define VOUCH_ASSIGN_OR_RETURN(lhs, rexpr) \
  VOUCH_ASSIGN_OR_RETURN_IMPL_(            \
      VOUCH_STATUS_CONCAT_(vouch_statusor_, __LINE__), lhs, rexpr)

#define VOUCH_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                 \
  if (ABSL_PREDICT_FALSE(!statusor.ok())) {                \
    return std::move(statusor).status();                   \
  }                                                        \
  lhs = std::move(statusor).value()

#endif  // VOUCH_COMMON_STATUS_MACROS_H_
