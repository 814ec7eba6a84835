#include "core/tpm/quote.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "core/rule.h"
#include "core/tpm/public_key.h"

namespace vouch::core::tpm {
namespace {

using EcdsaSigPtr = CHandle<ECDSA_SIG, ECDSA_SIG_free>;

bool Allowed(const QuotePolicy& policy, TPMI_ALG_HASH alg) {
  return std::find(policy.allowed_hash_algs.begin(),
                   policy.allowed_hash_algs.end(),
                   alg) != policy.allowed_hash_algs.end();
}

// DER ECDSA-Sig-Value from the TPM's (r, s) (RFC 5480, 2.2.3 / SEC 1).
absl::StatusOr<Bytes> EcdsaDer(const TPMS_SIGNATURE_ECC& ecc) {
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(ecc.signatureR.buffer, ecc.signatureR.size, nullptr);
  BIGNUM* s = BN_bin2bn(ecc.signatureS.buffer, ecc.signatureS.size, nullptr);
  if (!sig || r == nullptr || s == nullptr ||
      ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return absl::InternalError("out of memory building an ECDSA signature");
  }
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return absl::InternalError("cannot encode ECDSA signature");
  Bytes der(static_cast<size_t>(len));
  uint8_t* p = der.data();
  i2d_ECDSA_SIG(sig.get(), &p);
  return der;
}

}  // namespace

// A verify context with padding and digest already set, one per (scheme,
// hash) the key can use; duplicated per verification so that a const
// AikVerifier is safe to share between threads.
struct AikVerifier::Prepared {
  TPMI_ALG_SIG_SCHEME scheme;
  TPMI_ALG_HASH hash;
  EvpPkeyCtxPtr ctx;
};

AikVerifier::~AikVerifier() = default;

Verdict CheckAikAttributes(const TPMT_PUBLIC& p) {
  Verdict v;
  const TPMA_OBJECT a = p.objectAttributes;
  auto require = [&](TPMA_OBJECT bit, bool want, Rule rule, const char* what) {
    if (((a & bit) != 0) != want) {
      v.AddFailure(rule,
                   absl::StrCat("AIK must ", want ? "" : "not ", "be ", what));
    }
  };
  // TPM 2.0 Part 2, 8.3 TPMA_OBJECT.
  require(TPMA_OBJECT_RESTRICTED, true, Rule::kAikRestricted, "restricted");
  require(TPMA_OBJECT_SIGN_ENCRYPT, true, Rule::kAikSign, "a signing key");
  require(TPMA_OBJECT_DECRYPT, false, Rule::kAikDecrypt, "a decryption key");
  require(TPMA_OBJECT_FIXEDTPM, true, Rule::kAikFixedTpm, "fixedTPM");
  require(TPMA_OBJECT_FIXEDPARENT, true, Rule::kAikFixedParent, "fixedParent");
  require(TPMA_OBJECT_SENSITIVEDATAORIGIN, true, Rule::kAikSensitiveDataOrigin,
          "sensitiveDataOrigin (generated inside the TPM)");
  if (p.nameAlg != TPM2_ALG_SHA256 && p.nameAlg != TPM2_ALG_SHA384) {
    v.AddFailure(Rule::kAikNameAlg,
                 absl::StrCat("AIK nameAlg ", HashName(p.nameAlg),
                              " is not sha256 or sha384"));
  }
  if (p.type == TPM2_ALG_RSA) {
    const TPMI_RSA_KEY_BITS bits = p.parameters.rsaDetail.keyBits;
    if (bits != 2048 && bits != 3072) {
      v.AddFailure(Rule::kAikAlgorithm,
                   absl::StrCat("RSA AIK of ", bits,
                                " bits; 2048 or 3072 are approved"));
    }
  } else if (p.type == TPM2_ALG_ECC) {
    const TPMI_ECC_CURVE curve = p.parameters.eccDetail.curveID;
    if (curve != TPM2_ECC_NIST_P256 && curve != TPM2_ECC_NIST_P384) {
      v.AddFailure(Rule::kAikAlgorithm,
                   absl::StrFormat("ECC AIK on curve 0x%04x; NIST P-256 or "
                                   "P-384 are approved",
                                   curve));
    }
  } else {
    v.AddFailure(Rule::kAikAlgorithm, "AIK is neither RSA nor ECC");
  }
  v.MarkComplete();
  return v;
}

absl::Status AikVerifier::Prepare() {
  const int id = EVP_PKEY_get_base_id(key_.get());
  is_rsa_ = id == EVP_PKEY_RSA;
  std::vector<TPMI_ALG_SIG_SCHEME> schemes;
  if (is_rsa_) {
    schemes = {TPM2_ALG_RSASSA, TPM2_ALG_RSAPSS};
  } else {
    schemes = {TPM2_ALG_ECDSA};
  }
  for (TPMI_ALG_SIG_SCHEME scheme : schemes) {
    for (TPMI_ALG_HASH hash :
         {TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384, TPM2_ALG_SHA512}) {
      EvpPkeyCtxPtr ctx(
          EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
      bool ok = ctx && EVP_PKEY_verify_init(ctx.get()) == 1 &&
                EVP_PKEY_CTX_set_signature_md(ctx.get(), HashMd(hash)) == 1;
      if (ok && scheme == TPM2_ALG_RSASSA) {
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) == 1;
      } else if (ok && scheme == TPM2_ALG_RSAPSS) {
        // TPM 2.0 Part 1, B.7: the TPM picks the salt length; accept any.
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) ==
                 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(),
                                              RSA_PSS_SALTLEN_AUTO) == 1;
      }
      if (!ok) {
        DrainOpenSslErrors();
        continue;  // Not usable with this key (e.g. SHA-512 PSS on 1024).
      }
      prepared_.push_back({scheme, hash, std::move(ctx)});
    }
  }
  if (prepared_.empty()) {
    return absl::InvalidArgumentError("AIK: OpenSSL cannot verify with it");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<AikVerifier>> AikVerifier::Create(
    ByteSpan tpm2b_public) {
  VOUCH_ASSIGN_OR_RETURN(PublicArea area, ParsePublic(tpm2b_public));
  std::unique_ptr<AikVerifier> v(new AikVerifier());
  VOUCH_ASSIGN_OR_RETURN(v->key_, PublicKeyFromTpm(area.public_area));
  VOUCH_ASSIGN_OR_RETURN(v->name_, ObjectName(area));
  v->admission_ = CheckAikAttributes(area.public_area);
  VOUCH_RETURN_IF_ERROR(v->Prepare());
  return v;
}

absl::StatusOr<std::unique_ptr<AikVerifier>> AikVerifier::FromPem(
    const std::string& pem) {
  std::unique_ptr<AikVerifier> v(new AikVerifier());
  VOUCH_ASSIGN_OR_RETURN(v->key_, PublicKeyFromPem(pem));
  v->admission_.AddFailure(Rule::kAikAttributes,
                           "a PEM key carries no TPM object attributes");
  v->admission_.MarkComplete();
  VOUCH_RETURN_IF_ERROR(v->Prepare());
  return v;
}

void AikVerifier::CheckSignature(ByteSpan attest, const TPMT_SIGNATURE& sig,
                                 const QuotePolicy& policy,
                                 Verdict& verdict) const {
  TPMI_ALG_HASH hash = TPM2_ALG_NULL;
  ByteSpan sig_bytes;
  Bytes der;
  switch (sig.sigAlg) {
    case TPM2_ALG_RSASSA:
    case TPM2_ALG_RSAPSS:
      hash = sig.signature.rsassa.hash;
      sig_bytes = ByteSpan(sig.signature.rsassa.sig.buffer,
                           sig.signature.rsassa.sig.size);
      break;
    case TPM2_ALG_ECDSA: {
      hash = sig.signature.ecdsa.hash;
      absl::StatusOr<Bytes> encoded = EcdsaDer(sig.signature.ecdsa);
      if (!encoded.ok()) {
        verdict.AddFailure(Rule::kQuoteSignature, encoded.status().ToString());
        return;
      }
      der = *std::move(encoded);
      sig_bytes = der;
      break;
    }
    default:
      verdict.AddFailure(Rule::kQuoteSignatureAlg,
                         absl::StrFormat("signature scheme 0x%04x is not "
                                         "RSASSA, RSAPSS or ECDSA",
                                         sig.sigAlg));
      return;
  }
  if (!Allowed(policy, hash)) {
    verdict.AddFailure(Rule::kQuoteSignatureAlg,
                       absl::StrCat("signature hash ", HashName(hash),
                                    " is not allowed by the policy"));
    return;
  }
  const Prepared* prepared = nullptr;
  for (const Prepared& p : prepared_) {
    if (p.scheme == sig.sigAlg && p.hash == hash) prepared = &p;
  }
  if (prepared == nullptr) {
    verdict.AddFailure(
        Rule::kQuoteSignatureAlg,
        absl::StrFormat("signature scheme 0x%04x with %s does not fit the "
                        "AIK (%s)",
                        sig.sigAlg, HashName(hash), is_rsa_ ? "RSA" : "ECC"));
    return;
  }
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_dup(prepared->ctx.get()));
  if (!ctx ||
      EVP_Digest(attest.data(), attest.size(), digest, &digest_len,
                 HashMd(hash), nullptr) != 1 ||
      EVP_PKEY_verify(ctx.get(), sig_bytes.data(), sig_bytes.size(), digest,
                      digest_len) != 1) {
    DrainOpenSslErrors();
    verdict.AddFailure(Rule::kQuoteSignature,
                       "the signature does not verify with the AIK");
  }
}

absl::StatusOr<Bytes> PcrDigest(TPMI_ALG_HASH digest_alg,
                                const TPML_PCR_SELECTION& selection,
                                const PcrValues& values) {
  const EVP_MD* md = HashMd(digest_alg);
  if (md == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PCR digest: hash ", HashName(digest_alg), " is not supported"));
  }
  Bytes concat;
  concat.reserve(24 * 32);
  VOUCH_RETURN_IF_ERROR(ForEachSelectedPcr(
      selection, [&](TPMI_ALG_HASH alg, uint32_t pcr) -> absl::Status {
        const size_t size = HashSize(alg);
        if (size == 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("PCR selection: unknown hash ", HashName(alg)));
        }
        auto bank = values.find(alg);
        const Bytes* value = nullptr;
        if (bank != values.end()) {
          auto it = bank->second.find(pcr);
          if (it != bank->second.end()) value = &it->second;
        }
        if (value == nullptr) {
          return absl::InvalidArgumentError(absl::StrCat(
              "PCR ", HashName(alg), ":", pcr, " is quoted but not reported"));
        }
        if (value->size() != size) {
          return absl::InvalidArgumentError(
              absl::StrCat("PCR ", HashName(alg), ":", pcr, " has ",
                           value->size(), " bytes, expected ", size));
        }
        concat.insert(concat.end(), value->begin(), value->end());
        return absl::OkStatus();
      }));
  Bytes out(EVP_MD_get_size(md));
  unsigned int len = 0;
  if (EVP_Digest(concat.data(), concat.size(), out.data(), &len, md, nullptr) !=
      1) {
    return absl::InternalError("EVP_Digest failed");
  }
  return out;
}

void CheckClock(const ClockInfo& now, const std::optional<ClockInfo>& previous,
                Verdict& verdict) {
  // TPM 2.0 Part 1, 36.6 "Clock": safe is CLEAR when Clock may have been
  // reported lower than before (an unorderly shutdown lost an update).
  if (!now.safe) {
    verdict.AddFailure(Rule::kQuoteClockSafe, "clockInfo.safe is 0");
  }
  if (!previous) return;
  if (now.reset_count < previous->reset_count) {
    verdict.AddFailure(
        Rule::kQuoteClockResetCount,
        absl::StrCat("resetCount went back from ", previous->reset_count,
                     " to ", now.reset_count));
    return;
  }
  if (now.reset_count != previous->reset_count) return;  // A new boot.
  if (now.restart_count < previous->restart_count) {
    verdict.AddFailure(
        Rule::kQuoteClockRestartCount,
        absl::StrCat("restartCount went back from ", previous->restart_count,
                     " to ", now.restart_count));
    return;
  }
  if (now.clock <= previous->clock) {
    verdict.AddFailure(Rule::kQuoteClockClock,
                       absl::StrCat("clock did not advance within a boot (",
                                    previous->clock, " then ", now.clock, ")"));
  }
}

namespace {

void CheckSelection(const TPML_PCR_SELECTION& quoted, const QuotePolicy& policy,
                    Verdict& verdict) {
  for (uint32_t b = 0; b < quoted.count && b < TPM2_NUM_PCR_BANKS; ++b) {
    const TPMI_ALG_HASH alg = quoted.pcrSelections[b].hash;
    if (!Allowed(policy, alg)) {
      verdict.AddFailure(Rule::kQuotePcrBank,
                         absl::StrCat("PCR bank ", HashName(alg),
                                      " is not allowed by the policy"));
    }
  }
  if (!policy.required_selection) return;
  (void)ForEachSelectedPcr(
      *policy.required_selection, [&](TPMI_ALG_HASH alg, uint32_t pcr) {
        if (!IsPcrSelected(quoted, alg, pcr)) {
          verdict.AddFailure(Rule::kQuotePcrSelection,
                             absl::StrCat("PCR ", HashName(alg), ":", pcr,
                                          " was asked for but not quoted"));
        }
        return absl::OkStatus();
      });
}

// Reported PCRs the quote does not cover are unproven: refuse them rather
// than let a caller mistake them for quoted values.
void CheckNoExtraValues(const TPML_PCR_SELECTION& quoted,
                        const PcrValues& values, Verdict& verdict) {
  for (const auto& [alg, bank] : values) {
    for (const auto& [pcr, value] : bank) {
      if (!IsPcrSelected(quoted, alg, pcr)) {
        verdict.AddFailure(Rule::kQuotePcrValues,
                           absl::StrCat("PCR ", HashName(alg), ":", pcr,
                                        " is reported but not quoted"));
      }
    }
  }
}

TPMI_ALG_HASH SignatureHash(const TPMT_SIGNATURE& sig) {
  switch (sig.sigAlg) {
    case TPM2_ALG_RSASSA:
    case TPM2_ALG_RSAPSS:
      return sig.signature.rsassa.hash;
    case TPM2_ALG_ECDSA:
      return sig.signature.ecdsa.hash;
    default:
      return TPM2_ALG_NULL;
  }
}

}  // namespace

absl::StatusOr<QuoteResult> AikVerifier::VerifyQuote(
    const QuoteEvidence& evidence, const QuotePolicy& policy) const {
  VOUCH_ASSIGN_OR_RETURN(const TPMS_ATTEST attest,
                         ParseAttest(evidence.attest));
  VOUCH_ASSIGN_OR_RETURN(const TPMT_SIGNATURE sig,
                         ParseSignature(evidence.signature));
  QuoteResult result;
  Verdict& v = result.verdict;
  result.clock = {attest.clockInfo.clock, attest.clockInfo.resetCount,
                  attest.clockInfo.restartCount,
                  attest.clockInfo.safe == TPM2_YES};
  result.firmware_version = attest.firmwareVersion;

  // TPM 2.0 Part 2, 10.12.8: magic and type.
  if (attest.magic != TPM2_GENERATED_VALUE) {
    v.AddFailure(Rule::kQuoteMagic, absl::StrFormat("magic 0x%08x is not "
                                                    "TPM_GENERATED_VALUE",
                                                    attest.magic));
  }
  // The signature is over the TPMS_ATTEST bytes exactly as sent (without a
  // TPM2B size prefix if one was given).
  CheckSignature(AttestBody(evidence.attest), sig, policy, v);

  if (evidence.nonce.empty()) {
    v.AddFailure(Rule::kQuoteNonce, "no nonce was issued for this quote");
  } else if (!ConstantTimeEquals(
                 ByteSpan(attest.extraData.buffer, attest.extraData.size),
                 evidence.nonce)) {
    v.AddFailure(Rule::kQuoteNonce, "extraData is not the issued nonce");
  }

  if (attest.type != TPM2_ST_ATTEST_QUOTE) {
    v.AddFailure(Rule::kQuoteType,
                 absl::StrFormat("attestation type 0x%04x is not "
                                 "TPM_ST_ATTEST_QUOTE",
                                 attest.type));
  } else {
    const TPMS_QUOTE_INFO& info = attest.attested.quote;
    result.selection = info.pcrSelect;
    CheckSelection(info.pcrSelect, policy, v);
    static const PcrValues kNone;
    const PcrValues& values =
        evidence.pcr_values == nullptr ? kNone : *evidence.pcr_values;
    CheckNoExtraValues(info.pcrSelect, values, v);
    const TPMI_ALG_HASH digest_alg = SignatureHash(sig);
    absl::StatusOr<Bytes> digest =
        PcrDigest(digest_alg, info.pcrSelect, values);
    if (HashMd(digest_alg) == nullptr) {
      v.AddFailure(Rule::kQuotePcrDigest,
                   "cannot be recomputed: the signature names no known hash");
    } else if (!digest.ok()) {
      v.AddFailure(Rule::kQuotePcrValues,
                   std::string(digest.status().message()));
    } else if (!ConstantTimeEquals(*digest, ByteSpan(info.pcrDigest.buffer,
                                                     info.pcrDigest.size))) {
      v.AddFailure(Rule::kQuotePcrDigest,
                   "pcrDigest differs from the digest of the reported PCR "
                   "values");
    }
  }
  CheckClock(result.clock, evidence.previous, v);
  v.MarkComplete();
  return result;
}

}  // namespace vouch::core::tpm
