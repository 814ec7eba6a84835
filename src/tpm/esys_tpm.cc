#include "tpm/esys_tpm.h"

#include <tss2/tss2_esys.h>

#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "tpm/esys_handle.h"
#include "tpm/tss_status.h"

namespace vouch::tpm {

struct EsysTpm::Handles {
  TctiPtr tcti;
  EsysContextPtr esys;  // Destroyed first (declared last).
};

namespace {

// An ESYS_TR for a persistent entity or NV index; closed (not flushed).
class EsysTrCloser {
 public:
  EsysTrCloser(ESYS_CONTEXT* ctx, ESYS_TR tr) : ctx_(ctx), tr_(tr) {}
  EsysTrCloser(const EsysTrCloser&) = delete;
  EsysTrCloser& operator=(const EsysTrCloser&) = delete;
  ~EsysTrCloser() {
    if (tr_ != ESYS_TR_NONE) Esys_TR_Close(ctx_, &tr_);
  }

 private:
  ESYS_CONTEXT* ctx_;
  ESYS_TR tr_;
};

// Bound on NV contents we read; NV index sizes are UINT16 (TPM 2.0 Part 2,
// TPMS_NV_PUBLIC.dataSize) and EK certificates are a few KiB.
constexpr uint32_t kMaxNvBytes = 16 * 1024;
constexpr size_t kMaxRandomBytes = 1024;

}  // namespace

EsysTpm::EsysTpm(std::unique_ptr<Handles> handles)
    : handles_(std::move(handles)) {}

EsysTpm::~EsysTpm() {
  // ESYS must be finalised before the TCTI it uses.
  if (handles_) handles_->esys.reset();
}

absl::StatusOr<std::unique_ptr<EsysTpm>> EsysTpm::Open(absl::string_view tcti) {
  auto handles = std::make_unique<Handles>();
  TSS2_TCTI_CONTEXT* tcti_ctx = nullptr;
  const std::string conf(tcti);
  VOUCH_RETURN_IF_ERROR(
      TssStatus(Tss2_TctiLdr_Initialize(conf.c_str(), &tcti_ctx),
                absl::StrCat("loading TCTI '", conf, "'")));
  handles->tcti.reset(tcti_ctx);
  ESYS_CONTEXT* esys = nullptr;
  VOUCH_RETURN_IF_ERROR(TssStatus(
      Esys_Initialize(&esys, handles->tcti.get(), nullptr), "Esys_Initialize"));
  handles->esys.reset(esys);
  return std::unique_ptr<EsysTpm>(new EsysTpm(std::move(handles)));
}

absl::StatusOr<Bytes> EsysTpm::GetRandom(size_t count) {
  if (count > kMaxRandomBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("GetRandom: at most ", kMaxRandomBytes, " bytes"));
  }
  Bytes out;
  out.reserve(count);
  while (out.size() < count) {
    const size_t want = std::min<size_t>(count - out.size(), 32);
    TPM2B_DIGEST* raw = nullptr;
    VOUCH_RETURN_IF_ERROR(TssStatus(
        Esys_GetRandom(handles_->esys.get(), ESYS_TR_NONE, ESYS_TR_NONE,
                       ESYS_TR_NONE, static_cast<UINT16>(want), &raw),
        "TPM2_GetRandom"));
    EsysBuffer<TPM2B_DIGEST> random(raw);
    if (random->size == 0 || random->size > want) {
      return absl::InternalError("TPM2_GetRandom returned a bad size");
    }
    out.insert(out.end(), random->buffer, random->buffer + random->size);
  }
  return out;
}

absl::StatusOr<uint32_t> EsysTpm::NvBufferMax() {
  TPMI_YES_NO more = TPM2_NO;
  TPMS_CAPABILITY_DATA* raw = nullptr;
  VOUCH_RETURN_IF_ERROR(TssStatus(
      Esys_GetCapability(handles_->esys.get(), ESYS_TR_NONE, ESYS_TR_NONE,
                         ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                         TPM2_PT_NV_BUFFER_MAX, 1, &more, &raw),
      "TPM2_GetCapability(TPM_PT_NV_BUFFER_MAX)"));
  EsysBuffer<TPMS_CAPABILITY_DATA> caps(raw);
  uint32_t max = 512;  // A safe size every TPM accepts if it does not say.
  const TPML_TAGGED_TPM_PROPERTY& props = caps->data.tpmProperties;
  for (uint32_t i = 0; i < props.count && i < TPM2_MAX_TPM_PROPERTIES; ++i) {
    if (props.tpmProperty[i].property == TPM2_PT_NV_BUFFER_MAX) {
      max = props.tpmProperty[i].value;
    }
  }
  // TPM2B_MAX_NV_BUFFER can hold at most TPM2_MAX_NV_BUFFER_SIZE bytes.
  return std::clamp<uint32_t>(max, 1, TPM2_MAX_NV_BUFFER_SIZE);
}

absl::StatusOr<Bytes> EsysTpm::ReadNv(uint32_t nv_index) {
  ESYS_CONTEXT* ctx = handles_->esys.get();
  const std::string what = absl::StrFormat("NV index 0x%08x", nv_index);
  ESYS_TR nv = ESYS_TR_NONE;
  VOUCH_RETURN_IF_ERROR(
      TssStatus(Esys_TR_FromTPMPublic(ctx, nv_index, ESYS_TR_NONE, ESYS_TR_NONE,
                                      ESYS_TR_NONE, &nv),
                what));
  EsysTrCloser close_nv(ctx, nv);

  TPM2B_NV_PUBLIC* raw_public = nullptr;
  TPM2B_NAME* raw_name = nullptr;
  VOUCH_RETURN_IF_ERROR(
      TssStatus(Esys_NV_ReadPublic(ctx, nv, ESYS_TR_NONE, ESYS_TR_NONE,
                                   ESYS_TR_NONE, &raw_public, &raw_name),
                absl::StrCat("TPM2_NV_ReadPublic ", what)));
  EsysBuffer<TPM2B_NV_PUBLIC> nv_public(raw_public);
  EsysBuffer<TPM2B_NAME> nv_name(raw_name);
  const uint32_t size = nv_public->nvPublic.dataSize;
  const TPMA_NV attributes = nv_public->nvPublic.attributes;
  if (size > kMaxNvBytes) {
    return absl::InternalError(
        absl::StrCat(what, " is larger than ", kMaxNvBytes, " bytes"));
  }
  if ((attributes & TPMA_NV_WRITTEN) == 0) {
    return absl::NotFoundError(absl::StrCat(what, " has never been written"));
  }
  // TPM 2.0 Part 3, NV_Read: authorised by the index itself (AUTHREAD) or by
  // the owner hierarchy (OWNERREAD), both with an empty password here.
  ESYS_TR auth = nv;
  if ((attributes & TPMA_NV_AUTHREAD) == 0) {
    if ((attributes & TPMA_NV_OWNERREAD) == 0) {
      return absl::PermissionDeniedError(
          absl::StrCat(what,
                       " is readable neither by its own nor by owner "
                       "authorisation"));
    }
    auth = ESYS_TR_RH_OWNER;
  }

  VOUCH_ASSIGN_OR_RETURN(const uint32_t chunk, NvBufferMax());
  Bytes out;
  out.reserve(size);
  while (out.size() < size) {
    const uint16_t want =
        static_cast<uint16_t>(std::min<size_t>(size - out.size(), chunk));
    TPM2B_MAX_NV_BUFFER* raw_data = nullptr;
    VOUCH_RETURN_IF_ERROR(
        TssStatus(Esys_NV_Read(ctx, auth, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE, want,
                               static_cast<uint16_t>(out.size()), &raw_data),
                  absl::StrCat("TPM2_NV_Read ", what)));
    EsysBuffer<TPM2B_MAX_NV_BUFFER> data(raw_data);
    if (data->size == 0 || data->size > want) {
      return absl::InternalError(
          absl::StrCat("TPM2_NV_Read ", what, " returned a bad size"));
    }
    out.insert(out.end(), data->buffer, data->buffer + data->size);
  }
  return out;
}

}  // namespace vouch::tpm
