// vouchctl policy sign: wraps a runtime policy in a DSSE envelope exactly as
// Keylime's `keylime-policy sign runtime` does (core/ima/dsse.h builds the
// envelope; this file only makes the signature), so Keylime verifies it, and
// checks the envelope with Vouch's own verifier before writing it.
// Keys: EC (P-256, P-384, P-521; ECDSA over SHA-256, DER, as Keylime) or RSA
// of at least 2048 bits (PKCS#1 v1.5 over SHA-256: Vouch verifies it,
// Keylime's verifier takes EC keys only). Exit codes: 0 written, 2 error.
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/openssl_handle.h"
#include "core/ima/dsse.h"
#include "core/ima/runtime_policy.h"
#include "tenant/offline_commands.h"

namespace vouch::tenant {
namespace {

namespace ima = vouch::core::ima;

constexpr size_t kPolicySignMaxPolicyBytes = size_t{1} << 30;

struct SignFlags {
  CLI::App* sign = nullptr;
  std::string policy;
  std::string key;
  std::string cert;
  std::string output;
};

SignFlags& PolicySignFlags() {
  static SignFlags flags;
  return flags;
}

// Never prompts for a passphrase: an encrypted key is refused.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
  return -1;
}

absl::StatusOr<EvpPkeyPtr> LoadSigningKey(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadPemFile(path);
  if (!pem.ok()) return pem.status();
  BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  EvpPkeyPtr key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, &NoPassphrase, nullptr)
          : nullptr);
  DrainOpenSslErrors();
  if (!key) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not an unencrypted PEM private key (EC or RSA)"));
  }
  const int type = EVP_PKEY_get_base_id(key.get());
  if (type == EVP_PKEY_RSA) {
    if (EVP_PKEY_get_bits(key.get()) < 2048) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": RSA keys need at least 2048 bits"));
    }
    return key;
  }
  if (type == EVP_PKEY_EC) {
    char curve[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key.get(), "group", curve, sizeof(curve),
                                       &len) == 1) {
      const std::string c(curve, len);
      if (c == "prime256v1" || c == "secp384r1" || c == "secp521r1") {
        return key;
      }
    }
    DrainOpenSslErrors();
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": EC keys must be on P-256, P-384 or P-521"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": only EC and RSA keys can sign policies"));
}

// The key id Keylime writes (core/ima/dsse.h) and the PEM the envelope is
// checked with: the certificate when one is given, else the public key.
struct Signer {
  std::string keyid;
  std::string verify_pem;
};

absl::StatusOr<Signer> MakeSigner(EVP_PKEY* key, const std::string& cert_path) {
  Signer s;
  if (cert_path.empty()) {
    absl::StatusOr<std::string> pem = ima::PublicKeyPem(key);
    if (!pem.ok()) return pem.status();
    s.verify_pem = *std::move(pem);
    absl::StatusOr<std::string> id = ima::DssePublicKeyId(key);
    if (!id.ok()) return id.status();
    s.keyid = *std::move(id);
    return s;
  }
  absl::StatusOr<std::string> pem = ReadPemFile(cert_path);
  if (!pem.ok()) return pem.status();
  BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)
                   : nullptr);
  DrainOpenSslErrors();
  if (!cert) {
    return absl::InvalidArgumentError(
        absl::StrCat(cert_path, ": not a PEM X.509 certificate"));
  }
  EvpPkeyPtr cert_key(X509_get_pubkey(cert.get()));
  if (!cert_key || EVP_PKEY_eq(cert_key.get(), key) != 1) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError(absl::StrCat(
        cert_path, ": the certificate is not for the signing key"));
  }
  absl::StatusOr<std::string> id = ima::DsseCertificateKeyId(*pem);
  if (!id.ok()) return id.status();
  s.keyid = *std::move(id);
  s.verify_pem = *std::move(pem);
  return s;
}

absl::StatusOr<std::string> SignPae(EVP_PKEY* key, const std::string& pae) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len,
                     reinterpret_cast<const unsigned char*>(pae.data()),
                     pae.size()) != 1) {
    DrainOpenSslErrors();
    return absl::InternalError("signing failed");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()),
                     &len, reinterpret_cast<const unsigned char*>(pae.data()),
                     pae.size()) != 1) {
    DrainOpenSslErrors();
    return absl::InternalError("signing failed");
  }
  sig.resize(len);  // ECDSA's DER length varies.
  return sig;
}

absl::StatusOr<std::string> SignPolicy(const SignFlags& f) {
  absl::StatusOr<std::string> policy =
      ReadFileUpTo(f.policy, kPolicySignMaxPolicyBytes);
  if (!policy.ok()) return policy.status();
  if (ima::IsDsseEnvelope(*policy)) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.policy, ": already a signed (DSSE) policy"));
  }
  // Sign only what loads, as Keylime validates before it signs. The bytes
  // are signed as they are, so the payload is the file that was reviewed.
  if (auto loaded = ima::RuntimePolicy::FromJson(*policy); !loaded.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.policy, ": ", loaded.status().message()));
  }
  absl::StatusOr<EvpPkeyPtr> key = LoadSigningKey(f.key);
  if (!key.ok()) return key.status();
  absl::StatusOr<Signer> signer = MakeSigner(key->get(), f.cert);
  if (!signer.ok()) return signer.status();
  absl::StatusOr<std::string> sig = SignPae(
      key->get(), ima::DssePae(ima::kKeylimePolicyPayloadType, *policy));
  if (!sig.ok()) return sig.status();
  std::string envelope =
      ima::DsseEnvelopeJson(ima::kKeylimePolicyPayloadType, *policy,
                            {{signer->keyid, *std::move(sig)}});
  absl::StatusOr<ima::DsseVerification> check =
      ima::VerifyDsseEnvelope(envelope, signer->verify_pem);
  if (!check.ok() || !check->valid || check->payload != *policy) {
    return absl::InternalError("the signed envelope does not verify");
  }
  return envelope;
}

}  // namespace

void AddPolicySignCommand(CLI::App& policy) {
  SignFlags& f = PolicySignFlags();
  f.sign = policy.add_subcommand(
      "sign",
      "Sign a runtime policy as a DSSE envelope Keylime also verifies "
      "(exit 0 written, 2 error)");
  f.sign->add_option("--policy", f.policy, "Runtime policy (JSON)")->required();
  f.sign
      ->add_option("--key", f.key,
                   "PEM private key: EC P-256/P-384/P-521, or RSA >= 2048")
      ->required();
  f.sign->add_option("--cert", f.cert,
                     "PEM X.509 certificate of the key: carried in the "
                     "envelope's keyid, as Keylime's x509 backend does");
  f.sign->add_option("-f,--file", f.output, "Signed policy to write")
      ->required();
}

std::optional<int> RunPolicySignCommand() {
  const SignFlags& f = PolicySignFlags();
  if (f.sign == nullptr || !f.sign->parsed()) return std::nullopt;
  absl::StatusOr<std::string> envelope = SignPolicy(f);
  if (envelope.ok()) {
    if (absl::Status s = WriteFile(f.output, *envelope); !s.ok()) {
      envelope = s;
    }
  }
  if (!envelope.ok()) {
    std::cerr << "vouchctl policy sign: " << envelope.status().message()
              << "\n";
    return 2;
  }
  std::cerr << "vouchctl: wrote " << f.output << "\n";
  return 0;
}

}  // namespace vouch::tenant
