#include "agent/fake_tpm.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <tss2/tss2_mu.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/tpm/quote.h"
#include "core/tpm/tpm_wire.h"

namespace vouch::agenttest {
namespace {

using EcdsaSigPtr = CHandle<ECDSA_SIG, ECDSA_SIG_free>;

constexpr size_t kP256Bytes = 32;

// A big number as exactly `size` big-endian bytes.
absl::Status ToFixed(const BIGNUM* bn, uint8_t* out, size_t size) {
  if (BN_bn2binpad(bn, out, static_cast<int>(size)) != static_cast<int>(size)) {
    return absl::InternalError("number does not fit");
  }
  return absl::OkStatus();
}

// TPM 2.0 Part 2, 12.2.4 TPMT_PUBLIC of a restricted ECDSA-SHA256 signing
// key (what tpm2_createak makes), holding `key`'s public point.
absl::StatusOr<TPMT_PUBLIC> AikArea(EVP_PKEY* key) {
  TPMT_PUBLIC p{};
  p.type = TPM2_ALG_ECC;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                       TPMA_OBJECT_SENSITIVEDATAORIGIN |
                       TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED |
                       TPMA_OBJECT_SIGN_ENCRYPT;
  TPMS_ECC_PARMS& ecc = p.parameters.eccDetail;
  ecc.symmetric.algorithm = TPM2_ALG_NULL;
  ecc.scheme.scheme = TPM2_ALG_ECDSA;
  ecc.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  ecc.curveID = TPM2_ECC_NIST_P256;
  ecc.kdf.scheme = TPM2_ALG_NULL;
  BIGNUM* x = nullptr;
  BIGNUM* y = nullptr;
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
      EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1) {
    BN_free(x);
    return absl::InternalError("cannot read the EC public point");
  }
  BignumPtr bx(x), by(y);
  p.unique.ecc.x.size = kP256Bytes;
  p.unique.ecc.y.size = kP256Bytes;
  if (absl::Status s = ToFixed(x, p.unique.ecc.x.buffer, kP256Bytes); !s.ok()) {
    return s;
  }
  if (absl::Status s = ToFixed(y, p.unique.ecc.y.buffer, kP256Bytes); !s.ok()) {
    return s;
  }
  return p;
}

template <typename T, typename Fn>
absl::StatusOr<Bytes> Marshal(const T& value, Fn marshal) {
  Bytes out(sizeof(T) + 64);
  size_t offset = 0;
  if (marshal(&value, out.data(), out.size(), &offset) != TSS2_RC_SUCCESS) {
    return absl::InternalError("tss2-mu marshalling failed");
  }
  out.resize(offset);
  return out;
}

// Forwards to a FakeTpm it does not own.
class Handle : public tpm::Tpm {
 public:
  explicit Handle(FakeTpm* fake) : f_(fake) {}
  absl::StatusOr<Bytes> GetRandom(size_t count) override {
    return f_->GetRandom(count);
  }
  absl::StatusOr<Bytes> ReadNv(uint32_t nv_index) override {
    return f_->ReadNv(nv_index);
  }
  absl::StatusOr<Bytes> LoadEk(tpm::EkType type) override {
    return f_->LoadEk(type);
  }
  absl::StatusOr<Bytes> ReadEkCertificate(tpm::EkType type) override {
    return f_->ReadEkCertificate(type);
  }
  absl::StatusOr<Bytes> LoadOrCreateAik(const std::string& state_dir,
                                        tpm::AikType type) override {
    return f_->LoadOrCreateAik(state_dir, type);
  }
  absl::StatusOr<Bytes> ActivateCredential(ByteSpan blob,
                                           ByteSpan secret) override {
    return f_->ActivateCredential(blob, secret);
  }
  absl::StatusOr<tpm::QuoteBlob> Quote(
      ByteSpan nonce, const TPML_PCR_SELECTION& selection) override {
    return f_->Quote(nonce, selection);
  }
  absl::StatusOr<core::tpm::PcrValues> PcrRead(
      const TPML_PCR_SELECTION& selection) override {
    return f_->PcrRead(selection);
  }
  absl::Status PcrExtend(uint32_t pcr, TPMI_ALG_HASH alg,
                         ByteSpan digest) override {
    return f_->PcrExtend(pcr, alg, digest);
  }

 private:
  FakeTpm* f_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<FakeTpm>> FakeTpm::Create() {
  std::unique_ptr<FakeTpm> tpm(new FakeTpm());
  tpm->key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (tpm->key_ == nullptr) return absl::InternalError("EC key generation");
  absl::StatusOr<TPMT_PUBLIC> area = AikArea(tpm->key_.get());
  if (!area.ok()) return area.status();
  absl::StatusOr<Bytes> pub = core::tpm::MarshalPublic(*area);
  if (!pub.ok()) return pub.status();
  tpm->aik_public_ = *std::move(pub);
  absl::StatusOr<core::tpm::PublicArea> parsed =
      core::tpm::ParsePublic(tpm->aik_public_);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<Bytes> name = core::tpm::ObjectName(*parsed);
  if (!name.ok()) return name.status();
  tpm->aik_name_ = *std::move(name);
  return tpm;
}

std::unique_ptr<tpm::Tpm> FakeTpm::NewHandle() {
  return std::make_unique<Handle>(this);
}

absl::Status FakeTpm::Failure(Op op) const {
  auto it = failures_.find(op);
  return it == failures_.end() ? absl::OkStatus() : it->second;
}

absl::StatusOr<Bytes> FakeTpm::GetRandom(size_t count) {
  calls_.push_back("GetRandom");
  Bytes out(count);
  for (uint8_t& b : out) b = random_++;
  return out;
}

absl::StatusOr<Bytes> FakeTpm::ReadNv(uint32_t /*nv_index*/) {
  calls_.push_back("ReadNv");
  return absl::NotFoundError("FakeTpm has no NV index");
}

absl::StatusOr<Bytes> FakeTpm::LoadEk(tpm::EkType /*type*/) {
  calls_.push_back("LoadEk");
  return absl::UnimplementedError("FakeTpm has no EK");
}

absl::StatusOr<Bytes> FakeTpm::ReadEkCertificate(tpm::EkType /*type*/) {
  calls_.push_back("ReadEkCertificate");
  return absl::NotFoundError("FakeTpm has no EK certificate");
}

absl::StatusOr<Bytes> FakeTpm::LoadOrCreateAik(const std::string& /*dir*/,
                                               tpm::AikType /*type*/) {
  calls_.push_back("LoadOrCreateAik");
  return aik_public_;
}

absl::StatusOr<Bytes> FakeTpm::ActivateCredential(ByteSpan /*blob*/,
                                                  ByteSpan /*secret*/) {
  calls_.push_back("ActivateCredential");
  return absl::UnimplementedError("FakeTpm has no EK");
}

absl::StatusOr<core::tpm::PcrValues> FakeTpm::PcrRead(
    const TPML_PCR_SELECTION& selection) {
  calls_.push_back("PcrRead");
  if (absl::Status s = Failure(Op::kPcrRead); !s.ok()) return s;
  return Values(selection);
}

absl::StatusOr<core::tpm::PcrValues> FakeTpm::Values(
    const TPML_PCR_SELECTION& selection) {
  core::tpm::PcrValues out;
  absl::Status status = core::tpm::ForEachSelectedPcr(
      selection, [&](TPMI_ALG_HASH alg, uint32_t pcr) -> absl::Status {
        const size_t size = core::tpm::HashSize(alg);
        if (size == 0 || pcr >= 24) {
          return absl::InvalidArgumentError("no such PCR");
        }
        auto it = pcrs_[alg].find(pcr);
        out[alg][pcr] = it == pcrs_[alg].end() ? Bytes(size, 0) : it->second;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return out;
}

absl::Status FakeTpm::PcrExtend(uint32_t pcr, TPMI_ALG_HASH alg,
                                ByteSpan digest) {
  calls_.push_back("PcrExtend");
  if (absl::Status s = Failure(Op::kPcrExtend); !s.ok()) return s;
  const size_t size = core::tpm::HashSize(alg);
  if (size == 0 || pcr >= 24 || digest.size() != size) {
    return absl::InvalidArgumentError("bad PCR, bank or digest size");
  }
  auto [it, inserted] = pcrs_[alg].try_emplace(pcr, Bytes(size, 0));
  Bytes data = it->second;
  data.insert(data.end(), digest.begin(), digest.end());
  absl::StatusOr<Bytes> next = core::tpm::Digest(alg, data);
  if (!next.ok()) return next.status();
  it->second = *std::move(next);
  return absl::OkStatus();
}

absl::StatusOr<Bytes> FakeTpm::Sign(ByteSpan data) const {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                         key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, data.data(), data.size()) != 1) {
    return absl::InternalError("ECDSA signing failed");
  }
  Bytes der(len);
  if (EVP_DigestSign(ctx.get(), der.data(), &len, data.data(), data.size()) !=
      1) {
    return absl::InternalError("ECDSA signing failed");
  }
  const uint8_t* p = der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
  if (sig == nullptr) return absl::InternalError("bad ECDSA signature");
  TPMT_SIGNATURE out{};
  out.sigAlg = TPM2_ALG_ECDSA;
  out.signature.ecdsa.hash = TPM2_ALG_SHA256;
  out.signature.ecdsa.signatureR.size = kP256Bytes;
  out.signature.ecdsa.signatureS.size = kP256Bytes;
  if (absl::Status s =
          ToFixed(ECDSA_SIG_get0_r(sig.get()),
                  out.signature.ecdsa.signatureR.buffer, kP256Bytes);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ToFixed(ECDSA_SIG_get0_s(sig.get()),
                  out.signature.ecdsa.signatureS.buffer, kP256Bytes);
      !s.ok()) {
    return s;
  }
  return Marshal(out, Tss2_MU_TPMT_SIGNATURE_Marshal);
}

absl::StatusOr<tpm::QuoteBlob> FakeTpm::Quote(
    ByteSpan nonce, const TPML_PCR_SELECTION& selection) {
  calls_.push_back("Quote");
  if (absl::Status s = Failure(Op::kQuote); !s.ok()) return s;
  if (nonce.size() > sizeof(TPMU_HA)) {
    return absl::InvalidArgumentError("nonce over 64 bytes");
  }
  // TPM 2.0 Part 2, 10.12.12 TPMS_ATTEST with 10.12.4 TPMS_QUOTE_INFO.
  TPMS_ATTEST a{};
  a.magic = TPM2_GENERATED_VALUE;
  a.type = TPM2_ST_ATTEST_QUOTE;
  a.qualifiedSigner.size = static_cast<UINT16>(aik_name_.size());
  std::memcpy(a.qualifiedSigner.name, aik_name_.data(), aik_name_.size());
  a.extraData.size = static_cast<UINT16>(nonce.size());
  std::copy(nonce.begin(), nonce.end(), a.extraData.buffer);
  clock_ms_ += 100;
  a.clockInfo.clock = clock_ms_;
  a.clockInfo.resetCount = 1;
  a.clockInfo.restartCount = 0;
  a.clockInfo.safe = TPM2_YES;
  a.firmwareVersion = 0x20240101;
  a.attested.quote.pcrSelect = selection;
  absl::StatusOr<core::tpm::PcrValues> values = Values(selection);
  if (!values.ok()) return values.status();
  absl::StatusOr<Bytes> digest =
      core::tpm::PcrDigest(TPM2_ALG_SHA256, selection, *values);
  if (!digest.ok()) return digest.status();
  a.attested.quote.pcrDigest.size = static_cast<UINT16>(digest->size());
  std::copy(digest->begin(), digest->end(), a.attested.quote.pcrDigest.buffer);
  if (on_quote_) on_quote_();
  absl::StatusOr<Bytes> attest = Marshal(a, Tss2_MU_TPMS_ATTEST_Marshal);
  if (!attest.ok()) return attest.status();
  absl::StatusOr<Bytes> signature = Sign(*attest);
  if (!signature.ok()) return signature.status();
  return tpm::QuoteBlob{*std::move(attest), *std::move(signature)};
}

}  // namespace vouch::agenttest
