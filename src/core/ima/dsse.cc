#include "core/ima/dsse.h"

#include <openssl/pem.h>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/openssl_handle.h"

namespace vouch::core::ima {

using Json = nlohmann::json;

std::string DssePae(absl::string_view payload_type, absl::string_view payload) {
  return absl::StrCat("DSSEv1 ", payload_type.size(), " ", payload_type, " ",
                      payload.size(), " ", payload);
}

std::string DsseEnvelopeJson(absl::string_view payload_type,
                             absl::string_view payload,
                             const std::vector<DsseSignature>& signatures) {
  Json sigs = Json::array();
  for (const DsseSignature& s : signatures) {
    Json one = Json::object();
    if (!s.keyid.empty()) one["keyid"] = s.keyid;
    one["sig"] = absl::Base64Escape(s.sig);
    sigs.push_back(std::move(one));
  }
  Json env = Json::object();
  env["payload"] = absl::Base64Escape(payload);
  env["payloadType"] = std::string(payload_type);
  env["signatures"] = std::move(sigs);
  return env.dump();
}

namespace {

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

}  // namespace

absl::StatusOr<std::string> PublicKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError("cannot encode the public key as PEM");
  }
  return BioText(bio.get());
}

absl::StatusOr<std::string> DssePublicKeyId(EVP_PKEY* key) {
  absl::StatusOr<std::string> pem = PublicKeyPem(key);
  if (!pem.ok()) return pem.status();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_Digest(pem->data(), pem->size(), md, &md_len, EVP_sha256(),
                 nullptr) != 1) {
    DrainOpenSslErrors();
    return absl::InternalError("SHA-256 failed");
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(md), md_len));
}

absl::StatusOr<std::string> DsseCertificateKeyId(absl::string_view cert_pem) {
  BioPtr in(
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  X509Ptr cert(in ? PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr)
                  : nullptr);
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!cert || !out || PEM_write_bio_X509(out.get(), cert.get()) != 1) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError("not a PEM X.509 certificate");
  }
  return absl::Base64Escape(BioText(out.get()));
}

namespace {

absl::StatusOr<Json> ParseObject(absl::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("DSSE envelope is not a JSON object");
  }
  return j;
}

absl::StatusOr<EvpPkeyPtr> LoadKey(absl::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return absl::InternalError("BIO_new_mem_buf failed");
  EvpPkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (key) return key;
  BIO_reset(bio.get());
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  DrainOpenSslErrors();
  if (cert) {
    key.reset(X509_get_pubkey(cert.get()));
    if (key) return key;
  }
  return absl::InvalidArgumentError(
      "key is neither a PEM public key nor a PEM X.509 certificate");
}

}  // namespace

absl::StatusOr<std::string> DssePemKeyId(absl::string_view pem) {
  absl::StatusOr<EvpPkeyPtr> key = LoadKey(pem);
  if (!key.ok()) return key.status();
  return DssePublicKeyId(key->get());
}

bool IsDsseEnvelope(absl::string_view json) {
  // Cheap screen first: a large runtime policy is not parsed twice.
  if (json.find("\"payload\"") == absl::string_view::npos ||
      json.find("\"signatures\"") == absl::string_view::npos) {
    return false;
  }
  absl::StatusOr<Json> j = ParseObject(json);
  return j.ok() && j->contains("payload") && j->contains("signatures");
}

absl::StatusOr<DsseVerification> VerifyDsseEnvelope(
    absl::string_view envelope_json, absl::string_view key_pem) {
  absl::StatusOr<EvpPkeyPtr> key = LoadKey(key_pem);
  if (!key.ok()) return key.status();
  absl::StatusOr<Json> env = ParseObject(envelope_json);
  if (!env.ok()) return env.status();
  auto payload = env->find("payload");
  auto type = env->find("payloadType");
  auto sigs = env->find("signatures");
  if (payload == env->end() || !payload->is_string() || type == env->end() ||
      !type->is_string() || sigs == env->end() || !sigs->is_array()) {
    return absl::InvalidArgumentError(
        "DSSE envelope needs string \"payload\", string \"payloadType\" and "
        "a \"signatures\" list");
  }
  DsseVerification out;
  out.payload_type = type->get<std::string>();
  if (!absl::Base64Unescape(payload->get<std::string>(), &out.payload) &&
      !absl::WebSafeBase64Unescape(payload->get<std::string>(), &out.payload)) {
    return absl::InvalidArgumentError("DSSE payload is not base64");
  }
  std::string pae = DssePae(out.payload_type, out.payload);
  for (size_t i = 0; i < sigs->size(); ++i) {
    const Json& s = (*sigs)[i];
    if (!s.is_object() || !s.contains("sig") || !s["sig"].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("DSSE signatures[", i, "] has no string \"sig\""));
    }
    std::string sig;
    if (!absl::Base64Unescape(s["sig"].get<std::string>(), &sig)) continue;
    EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                                     key->get()) != 1) {
      DrainOpenSslErrors();
      continue;
    }
    if (EVP_DigestVerify(
            ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()),
            sig.size(), reinterpret_cast<const unsigned char*>(pae.data()),
            pae.size()) == 1) {
      out.valid = true;
      break;
    }
    DrainOpenSslErrors();
  }
  return out;
}

}  // namespace vouch::core::ima
