#include "tpm/esys_tpm.h"

#include <fcntl.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "core/tpm/tpm_wire.h"
#include "tpm/esys_handle.h"
#include "tpm/tss_status.h"

namespace vouch::tpm {

struct EsysTpm::Handles {
  TctiPtr tcti;
  EsysContextPtr esys;  // Destroyed after the transients below.
  EsysTransient ek;     // Flushed before ESYS is finalised (declared last).
  EsysTransient aik;
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
  // Transients are flushed while ESYS lives; ESYS is finalised before the
  // TCTI it uses.
  if (handles_) {
    handles_->aik.Reset();
    handles_->ek.Reset();
    handles_->esys.reset();
  }
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

absl::StatusOr<int> EsysTpm::FlushTransientObjects() {
  ESYS_CONTEXT* ctx = handles_->esys.get();
  TPMI_YES_NO more = TPM2_NO;
  TPMS_CAPABILITY_DATA* raw = nullptr;
  VOUCH_RETURN_IF_ERROR(TssStatus(
      Esys_GetCapability(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                         TPM2_CAP_HANDLES, TPM2_TRANSIENT_FIRST,
                         TPM2_MAX_CAP_HANDLES, &more, &raw),
      "TPM2_GetCapability(TPM_CAP_HANDLES, transient)"));
  EsysBuffer<TPMS_CAPABILITY_DATA> caps(raw);
  const TPML_HANDLE& list = caps->data.handles;
  int flushed = 0;
  // A TPM holds a handful of transient objects (3 in swtpm, 3..7 in
  // hardware), so one page of the list has them all.
  for (uint32_t i = 0; i < list.count && i < TPM2_MAX_CAP_HANDLES; ++i) {
    const TPM2_HANDLE handle = list.handle[i];
    if ((handle >> TPM2_HR_SHIFT) != TPM2_HT_TRANSIENT) continue;
    ESYS_TR tr = ESYS_TR_NONE;
    const std::string what =
        absl::StrFormat("flushing transient object 0x%08x", handle);
    VOUCH_RETURN_IF_ERROR(
        TssStatus(Esys_TR_FromTPMPublic(ctx, handle, ESYS_TR_NONE, ESYS_TR_NONE,
                                        ESYS_TR_NONE, &tr),
                  what));
    VOUCH_RETURN_IF_ERROR(TssStatus(Esys_FlushContext(ctx, tr), what));
    ++flushed;
  }
  return flushed;
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

uint32_t EkCertNvIndex(EkType type) {
  return type == EkType::kRsa2048 ? kEkCertNvIndexRsa2048
                                  : kEkCertNvIndexEccP256;
}

namespace {

// TCG EK Credential Profile 2.0, B.3.2: PolicyA_SHA256 =
// PolicySecret(TPM_RH_ENDORSEMENT), the authPolicy of the low-range EKs.
constexpr uint8_t kEkPolicyA[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
    0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
    0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa};

// TCG EK Credential Profile 2.0, B.3.3 (template L-1, RSA 2048) and B.3.4
// (L-2, ECC NIST P-256): fixedTPM, fixedParent, sensitiveDataOrigin,
// adminWithPolicy, restricted, decrypt; AES-128-CFB; policy A; unique
// zero-filled to the key size.
TPM2B_PUBLIC EkTemplate(EkType type) {
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& p = t.publicArea;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                       TPMA_OBJECT_SENSITIVEDATAORIGIN |
                       TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED |
                       TPMA_OBJECT_DECRYPT;
  p.authPolicy.size = sizeof(kEkPolicyA);
  std::memcpy(p.authPolicy.buffer, kEkPolicyA, sizeof(kEkPolicyA));
  TPMT_SYM_DEF_OBJECT sym{};
  sym.algorithm = TPM2_ALG_AES;
  sym.keyBits.aes = 128;
  sym.mode.aes = TPM2_ALG_CFB;
  if (type == EkType::kRsa2048) {
    p.type = TPM2_ALG_RSA;
    p.parameters.rsaDetail.symmetric = sym;
    p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
    p.parameters.rsaDetail.keyBits = 2048;
    p.parameters.rsaDetail.exponent = 0;
    p.unique.rsa.size = 256;
  } else {
    p.type = TPM2_ALG_ECC;
    p.parameters.eccDetail.symmetric = sym;
    p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    p.unique.ecc.x.size = 32;
    p.unique.ecc.y.size = 32;
  }
  return t;
}

// A restricted signing key made inside the TPM (TPM 2.0 Part 2, 8.3):
// fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth, restricted,
// sign; RSASSA-SHA256 or ECDSA-SHA256 so quotes use one fixed scheme.
TPM2B_PUBLIC AikTemplate(AikType type) {
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& p = t.publicArea;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                       TPMA_OBJECT_SENSITIVEDATAORIGIN |
                       TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED |
                       TPMA_OBJECT_SIGN_ENCRYPT;
  if (type == AikType::kRsa2048) {
    p.type = TPM2_ALG_RSA;
    p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
    p.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.rsaDetail.keyBits = 2048;
  } else {
    p.type = TPM2_ALG_ECC;
    p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    p.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  }
  return t;
}

// tss2-mu marshalling of an ESAPI output structure into bytes.
template <typename T, typename Fn>
absl::StatusOr<Bytes> Marshal(const T& value, Fn marshal, const char* what) {
  Bytes out(sizeof(T) + 16);
  size_t offset = 0;
  const TSS2_RC rc = marshal(&value, out.data(), out.size(), &offset);
  if (rc != TSS2_RC_SUCCESS) return TssStatus(rc, what);
  out.resize(offset);
  return out;
}

// The whole of `bytes` as one T (a TPM2B the caller hands us).
template <typename T, typename Fn>
absl::StatusOr<T> Unmarshal(ByteSpan bytes, Fn unmarshal, const char* what) {
  T out{};
  size_t offset = 0;
  const TSS2_RC rc = unmarshal(bytes.data(), bytes.size(), &offset, &out);
  if (rc != TSS2_RC_SUCCESS || offset != bytes.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": malformed (", bytes.size(), " bytes)"));
  }
  return out;
}

// Writes `bytes` to `path` with mode 0600: a temp file, fsync, rename.
absl::Status WriteFileAtomically(const std::string& path, ByteSpan bytes) {
  const std::string tmp = path + ".tmp";
  const int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat(tmp, ": cannot create: ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      return absl::UnavailableError(
          absl::StrCat(tmp, ": write failed: ", std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0 ||
      std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(
        absl::StrCat(path, ": cannot save: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// A policy session satisfying the EK's policy A (TPM 2.0 Part 3, 23.4
// PolicySecret with the endorsement hierarchy's empty password). Single use:
// the caller flushes it (the EsysTransient) after the command.
absl::StatusOr<EsysTransient> EkPolicySession(ESYS_CONTEXT* ctx) {
  TPMT_SYM_DEF symmetric{};
  symmetric.algorithm = TPM2_ALG_NULL;
  ESYS_TR session = ESYS_TR_NONE;
  VOUCH_RETURN_IF_ERROR(TssStatus(
      Esys_StartAuthSession(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                            ESYS_TR_NONE, ESYS_TR_NONE, nullptr, TPM2_SE_POLICY,
                            &symmetric, TPM2_ALG_SHA256, &session),
      "TPM2_StartAuthSession(policy)"));
  EsysTransient owned(ctx, session);
  TPM2B_TIMEOUT* timeout = nullptr;
  TPMT_TK_AUTH* ticket = nullptr;
  VOUCH_RETURN_IF_ERROR(TssStatus(
      Esys_PolicySecret(ctx, ESYS_TR_RH_ENDORSEMENT, session, ESYS_TR_PASSWORD,
                        ESYS_TR_NONE, ESYS_TR_NONE, nullptr, nullptr, nullptr,
                        0, &timeout, &ticket),
      "TPM2_PolicySecret(endorsement)"));
  Esys_Free(timeout);
  Esys_Free(ticket);
  return owned;
}

constexpr size_t kMaxKeyBlobBytes = 4096;

}  // namespace

absl::StatusOr<Bytes> EsysTpm::LoadEk(EkType type) {
  ESYS_CONTEXT* ctx = handles_->esys.get();
  handles_->aik.Reset();  // An AIK belongs to the EK it was loaded under.
  handles_->ek.Reset();
  const TPM2B_PUBLIC in_public = EkTemplate(type);
  TPM2B_SENSITIVE_CREATE sensitive{};
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION creation_pcr{};
  ESYS_TR handle = ESYS_TR_NONE;
  TPM2B_PUBLIC* out_public = nullptr;
  TPM2B_CREATION_DATA* creation_data = nullptr;
  TPM2B_DIGEST* creation_hash = nullptr;
  TPMT_TK_CREATION* creation_ticket = nullptr;
  VOUCH_RETURN_IF_ERROR(TssStatus(
      Esys_CreatePrimary(ctx, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD,
                         ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &in_public,
                         &outside, &creation_pcr, &handle, &out_public,
                         &creation_data, &creation_hash, &creation_ticket),
      "TPM2_CreatePrimary(EK)"));
  EsysBuffer<TPM2B_PUBLIC> pub(out_public);
  EsysBuffer<TPM2B_CREATION_DATA> cd(creation_data);
  EsysBuffer<TPM2B_DIGEST> ch(creation_hash);
  EsysBuffer<TPMT_TK_CREATION> ct(creation_ticket);
  handles_->ek = EsysTransient(ctx, handle);
  return Marshal(*pub, Tss2_MU_TPM2B_PUBLIC_Marshal, "marshal EK public");
}

absl::StatusOr<Bytes> EsysTpm::ReadEkCertificate(EkType type) {
  return ReadNv(EkCertNvIndex(type));
}

absl::StatusOr<Bytes> EsysTpm::LoadOrCreateAik(const std::string& state_dir,
                                               AikType type) {
  ESYS_CONTEXT* ctx = handles_->esys.get();
  if (handles_->ek.get() == ESYS_TR_NONE) {
    return absl::FailedPreconditionError("LoadOrCreateAik: LoadEk first");
  }
  handles_->aik.Reset();
  const std::string stem = absl::StrCat(
      state_dir, "/aik-", type == AikType::kRsa2048 ? "rsa2048" : "p256");
  const std::string pub_path = stem + ".pub";
  const std::string priv_path = stem + ".priv";

  TPM2B_PUBLIC in_public{};
  TPM2B_PRIVATE in_private{};
  absl::StatusOr<std::string> saved_pub =
      ReadFileUpTo(pub_path, kMaxKeyBlobBytes);
  absl::StatusOr<std::string> saved_priv =
      ReadFileUpTo(priv_path, kMaxKeyBlobBytes);
  if (saved_pub.ok() && saved_priv.ok()) {
    VOUCH_ASSIGN_OR_RETURN(
        in_public, Unmarshal<TPM2B_PUBLIC>(AsBytes(*saved_pub),
                                           Tss2_MU_TPM2B_PUBLIC_Unmarshal,
                                           pub_path.c_str()));
    VOUCH_ASSIGN_OR_RETURN(
        in_private, Unmarshal<TPM2B_PRIVATE>(AsBytes(*saved_priv),
                                             Tss2_MU_TPM2B_PRIVATE_Unmarshal,
                                             priv_path.c_str()));
  } else if (absl::IsNotFound(saved_pub.status()) &&
             (saved_priv.ok() || absl::IsNotFound(saved_priv.status()))) {
    // No AIK yet, or a creation interrupted after the private blob was
    // written (the public blob is written last): make a new one.
    // TPM 2.0 Part 3, 12.1 TPM2_Create under the EK (policy A session).
    VOUCH_ASSIGN_OR_RETURN(EsysTransient session, EkPolicySession(ctx));
    const TPM2B_PUBLIC tmpl = AikTemplate(type);
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION creation_pcr{};
    TPM2B_PRIVATE* out_private = nullptr;
    TPM2B_PUBLIC* out_public = nullptr;
    TPM2B_CREATION_DATA* creation_data = nullptr;
    TPM2B_DIGEST* creation_hash = nullptr;
    TPMT_TK_CREATION* creation_ticket = nullptr;
    VOUCH_RETURN_IF_ERROR(TssStatus(
        Esys_Create(ctx, handles_->ek.get(), session.get(), ESYS_TR_NONE,
                    ESYS_TR_NONE, &sensitive, &tmpl, &outside, &creation_pcr,
                    &out_private, &out_public, &creation_data, &creation_hash,
                    &creation_ticket),
        "TPM2_Create(AIK)"));
    EsysBuffer<TPM2B_PRIVATE> priv(out_private);
    EsysBuffer<TPM2B_PUBLIC> pub(out_public);
    EsysBuffer<TPM2B_CREATION_DATA> cd(creation_data);
    EsysBuffer<TPM2B_DIGEST> ch(creation_hash);
    EsysBuffer<TPMT_TK_CREATION> ct(creation_ticket);
    in_public = *pub;
    in_private = *priv;
    VOUCH_ASSIGN_OR_RETURN(
        Bytes pub_bytes,
        Marshal(*pub, Tss2_MU_TPM2B_PUBLIC_Marshal, "marshal AIK public"));
    VOUCH_ASSIGN_OR_RETURN(
        Bytes priv_bytes,
        Marshal(*priv, Tss2_MU_TPM2B_PRIVATE_Marshal, "marshal AIK private"));
    // The private blob first: a public file alone is never taken as an AIK.
    VOUCH_RETURN_IF_ERROR(WriteFileAtomically(priv_path, priv_bytes));
    VOUCH_RETURN_IF_ERROR(WriteFileAtomically(pub_path, pub_bytes));
  } else {
    return absl::FailedPreconditionError(absl::StrCat(
        "AIK state in ", state_dir, " is incomplete or unreadable: ",
        saved_pub.ok() ? saved_priv.status().message()
                       : saved_pub.status().message()));
  }

  VOUCH_ASSIGN_OR_RETURN(EsysTransient session, EkPolicySession(ctx));
  ESYS_TR aik = ESYS_TR_NONE;
  VOUCH_RETURN_IF_ERROR(
      TssStatus(Esys_Load(ctx, handles_->ek.get(), session.get(), ESYS_TR_NONE,
                          ESYS_TR_NONE, &in_private, &in_public, &aik),
                "TPM2_Load(AIK)"));
  handles_->aik = EsysTransient(ctx, aik);
  return Marshal(in_public, Tss2_MU_TPM2B_PUBLIC_Marshal, "marshal AIK public");
}

absl::StatusOr<Bytes> EsysTpm::ActivateCredential(ByteSpan credential_blob,
                                                  ByteSpan encrypted_secret) {
  ESYS_CONTEXT* ctx = handles_->esys.get();
  if (handles_->ek.get() == ESYS_TR_NONE ||
      handles_->aik.get() == ESYS_TR_NONE) {
    return absl::FailedPreconditionError(
        "ActivateCredential: load the EK and the AIK first");
  }
  VOUCH_ASSIGN_OR_RETURN(const TPM2B_ID_OBJECT blob,
                         Unmarshal<TPM2B_ID_OBJECT>(
                             credential_blob, Tss2_MU_TPM2B_ID_OBJECT_Unmarshal,
                             "credential blob (TPM2B_ID_OBJECT)"));
  VOUCH_ASSIGN_OR_RETURN(
      const TPM2B_ENCRYPTED_SECRET secret,
      Unmarshal<TPM2B_ENCRYPTED_SECRET>(
          encrypted_secret, Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal,
          "encrypted secret (TPM2B_ENCRYPTED_SECRET)"));
  // TPM 2.0 Part 3, 12.5: the AIK (ADMIN role, its empty authValue) and
  // the EK (USER role, policy A).
  VOUCH_ASSIGN_OR_RETURN(EsysTransient session, EkPolicySession(ctx));
  TPM2B_DIGEST* cert_info = nullptr;
  VOUCH_RETURN_IF_ERROR(TssStatus(
      Esys_ActivateCredential(ctx, handles_->aik.get(), handles_->ek.get(),
                              ESYS_TR_PASSWORD, session.get(), ESYS_TR_NONE,
                              &blob, &secret, &cert_info),
      "TPM2_ActivateCredential"));
  EsysBuffer<TPM2B_DIGEST> info(cert_info);
  return Bytes(info->buffer, info->buffer + info->size);
}

absl::StatusOr<QuoteBlob> EsysTpm::Quote(ByteSpan nonce,
                                         const TPML_PCR_SELECTION& selection) {
  ESYS_CONTEXT* ctx = handles_->esys.get();
  if (handles_->aik.get() == ESYS_TR_NONE) {
    return absl::FailedPreconditionError("Quote: load the AIK first");
  }
  TPM2B_DATA qualifying{};
  if (nonce.size() > sizeof(qualifying.buffer)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Quote: nonce of ", nonce.size(), " bytes; at most ",
                     sizeof(qualifying.buffer)));
  }
  qualifying.size = static_cast<UINT16>(nonce.size());
  std::copy(nonce.begin(), nonce.end(), qualifying.buffer);
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;  // The AIK's own scheme.
  TPM2B_ATTEST* quoted = nullptr;
  TPMT_SIGNATURE* signature = nullptr;
  VOUCH_RETURN_IF_ERROR(
      TssStatus(Esys_Quote(ctx, handles_->aik.get(), ESYS_TR_PASSWORD,
                           ESYS_TR_NONE, ESYS_TR_NONE, &qualifying, &scheme,
                           &selection, &quoted, &signature),
                "TPM2_Quote"));
  EsysBuffer<TPM2B_ATTEST> attest(quoted);
  EsysBuffer<TPMT_SIGNATURE> sig(signature);
  QuoteBlob out;
  out.attest.assign(attest->attestationData,
                    attest->attestationData + attest->size);
  VOUCH_ASSIGN_OR_RETURN(
      out.signature,
      Marshal(*sig, Tss2_MU_TPMT_SIGNATURE_Marshal, "marshal quote signature"));
  return out;
}

absl::StatusOr<core::tpm::PcrValues> EsysTpm::PcrRead(
    const TPML_PCR_SELECTION& selection) {
  ESYS_CONTEXT* ctx = handles_->esys.get();
  if (selection.count > TPM2_NUM_PCR_BANKS) {
    return absl::InvalidArgumentError("PcrRead: too many banks");
  }
  core::tpm::PcrValues out;
  TPML_PCR_SELECTION remaining = selection;
  auto empty = [](const TPML_PCR_SELECTION& s) {
    for (uint32_t b = 0; b < s.count; ++b) {
      for (uint8_t i = 0; i < s.pcrSelections[b].sizeofSelect; ++i) {
        if (s.pcrSelections[b].pcrSelect[i] != 0) return false;
      }
    }
    return true;
  };
  // Each round reads up to 8 values; 24 PCRs x 16 banks bounds the rounds.
  for (int round = 0; !empty(remaining); ++round) {
    if (round > 64) return absl::InternalError("TPM2_PCR_Read: no progress");
    UINT32 counter = 0;
    TPML_PCR_SELECTION* read_sel = nullptr;
    TPML_DIGEST* values = nullptr;
    VOUCH_RETURN_IF_ERROR(
        TssStatus(Esys_PCR_Read(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                &remaining, &counter, &read_sel, &values),
                  "TPM2_PCR_Read"));
    EsysBuffer<TPML_PCR_SELECTION> got(read_sel);
    EsysBuffer<TPML_DIGEST> digests(values);
    uint32_t next = 0;
    bool progress = false;
    for (uint32_t b = 0; b < got->count && b < TPM2_NUM_PCR_BANKS; ++b) {
      const TPMS_PCR_SELECTION& s = got->pcrSelections[b];
      for (uint32_t pcr = 0; pcr < 8u * s.sizeofSelect; ++pcr) {
        if (((s.pcrSelect[pcr / 8] >> (pcr % 8)) & 1) == 0) continue;
        if (next >= digests->count) {
          return absl::InternalError("TPM2_PCR_Read: fewer values than PCRs");
        }
        const TPM2B_DIGEST& d = digests->digests[next++];
        out[s.hash][pcr] = Bytes(d.buffer, d.buffer + d.size);
        for (uint32_t r = 0; r < remaining.count; ++r) {
          TPMS_PCR_SELECTION& rs = remaining.pcrSelections[r];
          if (rs.hash == s.hash && pcr / 8 < rs.sizeofSelect) {
            rs.pcrSelect[pcr / 8] &= static_cast<uint8_t>(~(1u << (pcr % 8)));
            progress = true;
          }
        }
      }
    }
    if (!progress) {
      return absl::NotFoundError(
          "TPM2_PCR_Read: a selected PCR bank is not active on this TPM");
    }
  }
  return out;
}

absl::Status EsysTpm::PcrExtend(uint32_t pcr, TPMI_ALG_HASH alg,
                                ByteSpan digest) {
  if (pcr > 23) {
    return absl::InvalidArgumentError(absl::StrCat("PcrExtend: PCR ", pcr));
  }
  TPML_DIGEST_VALUES values{};
  values.count = 1;
  values.digests[0].hashAlg = alg;
  if (digest.size() != core::tpm::HashSize(alg)) {
    return absl::InvalidArgumentError(absl::StrCat("PcrExtend: digest of ",
                                                   digest.size(), " bytes for ",
                                                   core::tpm::HashName(alg)));
  }
  std::memcpy(&values.digests[0].digest, digest.data(), digest.size());
  return TssStatus(
      Esys_PCR_Extend(handles_->esys.get(), ESYS_TR_PCR0 + pcr,
                      ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &values),
      absl::StrCat("TPM2_PCR_Extend(", pcr, ")"));
}

}  // namespace vouch::tpm
