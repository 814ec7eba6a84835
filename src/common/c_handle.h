// File: common/c_handle.h
// RAII ownership of C library objects that are freed by a plain function
// (OpenSSL's *_free, libpq's PQclear, tpm2-tss's Esys_Free...). Header-only.
// Ownership follows std::unique_ptr: move-only, not thread-safe per object.
//
//   using BioPtr = CHandle<BIO, BIO_free_all>;
//   BioPtr bio(BIO_new_mem_buf(pem.data(), pem.size()));
//
// The ESYS and libpq instances live next to the only code allowed to include
// those headers (src/tpm/esys_handle.h, src/store/pg_handle.h), so the
// layering rule "only src/tpm includes tss2_esys.h; only src/store includes
// libpq-fe.h" holds.
#ifndef VOUCH_COMMON_C_HANDLE_H_
#define VOUCH_COMMON_C_HANDLE_H_

#include <memory>

namespace vouch {

// Calls `Free` on a non-null pointer. Works for free functions returning void
// or int (OpenSSL's BIO_free returns int).
template <typename T, auto Free>
struct CFreeDeleter {
  void operator()(T* p) const {
    if (p != nullptr) Free(p);
  }
};

template <typename T, auto Free>
using CHandle = std::unique_ptr<T, CFreeDeleter<T, Free>>;

}  // namespace vouch

#endif  // VOUCH_COMMON_C_HANDLE_H_
