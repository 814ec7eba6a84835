// File: tpm/esys_handle.h
// RAII for tpm2-tss objects: the ESYS context (with its TCTI), buffers the
// ESAPI allocates, and transient object handles that must be flushed (swtpm
// holds only three transient objects). Not thread-safe: an ESYS context is
// used by one thread at a time.
#ifndef VOUCH_TPM_ESYS_HANDLE_H_
#define VOUCH_TPM_ESYS_HANDLE_H_

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include <cstdlib>
#include <utility>

#include "common/c_handle.h"

namespace vouch::tpm {

// Memory returned by Esys_* out-parameters is released with Esys_Free.
template <typename T>
using EsysBuffer = CHandle<T, Esys_Free>;

inline void FinalizeTcti(TSS2_TCTI_CONTEXT* tcti) {
  Tss2_TctiLdr_Finalize(&tcti);
}
using TctiPtr = CHandle<TSS2_TCTI_CONTEXT, FinalizeTcti>;

inline void FinalizeEsys(ESYS_CONTEXT* ctx) { Esys_Finalize(&ctx); }
using EsysContextPtr = CHandle<ESYS_CONTEXT, FinalizeEsys>;

// A transient TPM object; flushed from the TPM when destroyed.
class EsysTransient {
 public:
  EsysTransient() = default;
  EsysTransient(ESYS_CONTEXT* ctx, ESYS_TR handle)
      : ctx_(ctx), handle_(handle) {}
  EsysTransient(EsysTransient&& other) noexcept
      : ctx_(other.ctx_), handle_(std::exchange(other.handle_, ESYS_TR_NONE)) {}
  EsysTransient& operator=(EsysTransient&& other) noexcept {
    if (this != &other) {
      Reset();
      ctx_ = other.ctx_;
      handle_ = std::exchange(other.handle_, ESYS_TR_NONE);
    }
    return *this;
  }
  EsysTransient(const EsysTransient&) = delete;
  EsysTransient& operator=(const EsysTransient&) = delete;
  ~EsysTransient() { Reset(); }

  ESYS_TR get() const { return handle_; }
  void Reset() {
    if (ctx_ != nullptr && handle_ != ESYS_TR_NONE) {
      Esys_FlushContext(ctx_, handle_);  // Best effort: nothing to report to.
    }
    handle_ = ESYS_TR_NONE;
  }

 private:
  ESYS_CONTEXT* ctx_ = nullptr;
  ESYS_TR handle_ = ESYS_TR_NONE;
};

}  // namespace vouch::tpm

#endif  // VOUCH_TPM_ESYS_HANDLE_H_
