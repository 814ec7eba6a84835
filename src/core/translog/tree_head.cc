#include "core/translog/tree_head.h"

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/openssl_handle.h"
#include "common/status_macros.h"

namespace vouch::core::translog {
namespace {

constexpr char kMagic[] = "VTH1";

void PutU64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
void PutField(std::string& out, absl::string_view field) {
  // Fields are ids and digests; anything longer is cut at the u16 limit,
  // which cannot happen for what callers pass (bounded by the protocol).
  const size_t len = std::min<size_t>(field.size(), 0xffff);
  out.push_back(static_cast<char>(len >> 8));
  out.push_back(static_cast<char>(len & 0xff));
  out.append(field.data(), len);
}

// ECDSA over SHA-256, Ed25519 over the message itself (no digest).
const EVP_MD* DigestFor(EVP_PKEY* key) {
  return EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
}

absl::Status CheckKeyType(EVP_PKEY* key) {
  if (EVP_PKEY_get_id(key) == EVP_PKEY_ED25519) return absl::OkStatus();
  if (EVP_PKEY_get_id(key) == EVP_PKEY_EC) {
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                       sizeof(group), &len) == 1 &&
        absl::string_view(group, len) == "prime256v1") {
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError("log key: must be ECDSA P-256 or Ed25519");
}

absl::StatusOr<Hash> LogIdOf(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return absl::InternalError("log key: cannot encode public key");
  Hash id;
  SHA256(der, static_cast<size_t>(len), id.data());
  OPENSSL_free(der);
  return id;
}

}  // namespace

struct LogKey::Rep {
  EvpPkeyPtr key;
};

LogKey::LogKey(std::unique_ptr<Rep> rep, Hash log_id, bool has_private)
    : rep_(std::move(rep)), log_id_(log_id), has_private_(has_private) {}
LogKey::~LogKey() = default;
LogKey::LogKey(LogKey&&) noexcept = default;
LogKey& LogKey::operator=(LogKey&&) noexcept = default;

absl::StatusOr<LogKey> LogKey::FromPrivatePem(absl::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
          : nullptr);
  if (!key) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError("log key: not a PEM private key");
  }
  VOUCH_RETURN_IF_ERROR(CheckKeyType(key.get()));
  VOUCH_ASSIGN_OR_RETURN(Hash id, LogIdOf(key.get()));
  auto rep = std::make_unique<Rep>();
  rep->key = std::move(key);
  return LogKey(std::move(rep), id, true);
}

absl::StatusOr<LogKey> LogKey::FromPublicPem(absl::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr)
                     : nullptr);
  if (!key) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError("log key: not a PEM public key");
  }
  VOUCH_RETURN_IF_ERROR(CheckKeyType(key.get()));
  VOUCH_ASSIGN_OR_RETURN(Hash id, LogIdOf(key.get()));
  auto rep = std::make_unique<Rep>();
  rep->key = std::move(key);
  return LogKey(std::move(rep), id, false);
}

std::string LogKey::PublicPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), rep_->key.get()) != 1) return "";
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string EncodeTreeHead(const TreeHead& head) {
  std::string out(kMagic, 4);
  out.append(reinterpret_cast<const char*>(head.log_id.data()), 32);
  PutU64(out, head.tree_size);
  PutU64(out, static_cast<uint64_t>(head.timestamp_ms));
  out.append(reinterpret_cast<const char*>(head.root.data()), 32);
  return out;
}

absl::StatusOr<std::string> LogKey::Sign(TreeHead head) const {
  if (!has_private_) {
    return absl::FailedPreconditionError("log key: no private key to sign");
  }
  head.log_id = log_id_;
  const std::string body = EncodeTreeHead(head);
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, DigestFor(rep_->key.get()),
                         nullptr, rep_->key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len,
                     reinterpret_cast<const unsigned char*>(body.data()),
                     body.size()) != 1) {
    return absl::InternalError(
        absl::StrCat("log key: sign failed: ", DrainOpenSslErrors()));
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()),
                     &len, reinterpret_cast<const unsigned char*>(body.data()),
                     body.size()) != 1 ||
      len > kMaxSignatureBytes) {
    return absl::InternalError(
        absl::StrCat("log key: sign failed: ", DrainOpenSslErrors()));
  }
  sig.resize(len);
  std::string out = body;
  out.push_back(static_cast<char>(len >> 8));
  out.push_back(static_cast<char>(len & 0xff));
  out += sig;
  return out;
}

absl::StatusOr<ParsedSignedTreeHead> ParseSignedTreeHead(
    absl::string_view signed_head) {
  if (signed_head.size() < kTreeHeadBytes + 2) {
    return absl::InvalidArgumentError("tree head: too short");
  }
  if (signed_head.substr(0, 4) != absl::string_view(kMagic, 4)) {
    return absl::InvalidArgumentError("tree head: not a VTH1 tree head");
  }
  ParsedSignedTreeHead out;
  const char* p = signed_head.data();
  std::memcpy(out.head.log_id.data(), p + 4, 32);
  out.head.tree_size = GetU64(p + 36);
  out.head.timestamp_ms = static_cast<int64_t>(GetU64(p + 44));
  std::memcpy(out.head.root.data(), p + 52, 32);
  const size_t sig_len =
      (static_cast<uint8_t>(p[84]) << 8) | static_cast<uint8_t>(p[85]);
  if (sig_len == 0 || sig_len > kMaxSignatureBytes ||
      signed_head.size() != kTreeHeadBytes + 2 + sig_len) {
    return absl::InvalidArgumentError("tree head: bad signature length");
  }
  out.signature = std::string(signed_head.substr(kTreeHeadBytes + 2));
  return out;
}

absl::StatusOr<TreeHead> LogKey::Verify(absl::string_view signed_head) const {
  VOUCH_ASSIGN_OR_RETURN(ParsedSignedTreeHead parsed,
                         ParseSignedTreeHead(signed_head));
  if (parsed.head.log_id != log_id_) {
    return absl::InvalidArgumentError(
        "tree head: signed for another log key (log id differs)");
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  const absl::string_view body = signed_head.substr(0, kTreeHeadBytes);
  if (!ctx ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, DigestFor(rep_->key.get()),
                           nullptr, rep_->key.get()) != 1 ||
      EVP_DigestVerify(
          ctx.get(),
          reinterpret_cast<const unsigned char*>(parsed.signature.data()),
          parsed.signature.size(),
          reinterpret_cast<const unsigned char*>(body.data()),
          body.size()) != 1) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError("tree head: signature does not verify");
  }
  return parsed.head;
}

std::string BindingLeafPrefix(LeafKind kind, absl::string_view agent_id,
                              absl::string_view tenant,
                              absl::string_view ek_digest,
                              absl::string_view aik_digest) {
  std::string out(1, static_cast<char>(kind));
  PutField(out, agent_id);
  PutField(out, tenant);
  PutField(out, ek_digest);
  PutField(out, aik_digest);
  return out;
}

std::string TranslogLeafForBinding(LeafKind kind, absl::string_view agent_id,
                                   absl::string_view tenant,
                                   absl::string_view ek_digest,
                                   absl::string_view aik_digest,
                                   absl::Time at) {
  std::string out =
      BindingLeafPrefix(kind, agent_id, tenant, ek_digest, aik_digest);
  PutU64(out, static_cast<uint64_t>(absl::ToUnixMillis(at)));
  return out;
}

std::string AttestationLeafPrefix(absl::string_view attestation_id,
                                  absl::string_view agent_id,
                                  absl::string_view nonce,
                                  absl::string_view verdict) {
  std::string out(1, static_cast<char>(LeafKind::kAttestation));
  PutField(out, agent_id);
  PutField(out, attestation_id);
  PutField(out, nonce);
  PutField(out, verdict);
  return out;
}

std::string TranslogLeafForAttestation(absl::string_view attestation_id,
                                       absl::string_view agent_id,
                                       absl::string_view nonce,
                                       absl::string_view verdict,
                                       absl::string_view quote_digest,
                                       absl::Time at) {
  std::string out =
      AttestationLeafPrefix(attestation_id, agent_id, nonce, verdict);
  PutField(out, quote_digest);
  PutU64(out, static_cast<uint64_t>(absl::ToUnixMillis(at)));
  return out;
}

std::string BindingAikDigest(absl::string_view aik_name) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(aik_name.data()),
         aik_name.size(), md);
  return std::string(reinterpret_cast<const char*>(md), sizeof(md));
}

absl::StatusOr<absl::string_view> LeafWithoutTime(absl::string_view leaf) {
  if (leaf.size() < 9) return absl::InvalidArgumentError("leaf: too short");
  return leaf.substr(0, leaf.size() - 8);
}

absl::StatusOr<absl::Time> LeafTime(absl::string_view leaf) {
  if (leaf.size() < 9) return absl::InvalidArgumentError("leaf: too short");
  return absl::FromUnixMillis(
      static_cast<int64_t>(GetU64(leaf.data() + leaf.size() - 8)));
}

}  // namespace vouch::core::translog
