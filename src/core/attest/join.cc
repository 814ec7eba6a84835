#include "core/attest/join.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/openssl_handle.h"
#include "core/label_selector.h"

namespace vouch::core::attest {
namespace {

using X509ReqPtr = CHandle<X509_REQ, X509_REQ_free>;

absl::Status Invalid(absl::string_view what) {
  ERR_clear_error();
  return absl::InvalidArgumentError(absl::StrCat("csr: ", what));
}

}  // namespace

absl::StatusOr<std::string> CsrPublicKey(absl::string_view der) {
  if (der.empty() || der.size() > kMaxCsrBytes) {
    return Invalid("must be 1..4096 bytes of DER");
  }
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  if (!req ||
      p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    return Invalid("not one DER PKCS#10 certification request");
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());  // owned by req
  if (key == nullptr) return Invalid("no readable public key");
  char group[64] = {0};
  size_t group_len = 0;
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
      EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof(group),
                                     &group_len) != 1 ||
      absl::string_view(group, group_len) != "prime256v1") {
    return Invalid("the key must be ECDSA P-256");
  }
  // RFC 2986 section 3: the request is signed with the key it carries.
  if (X509_REQ_verify(req.get(), key) != 1) {
    return Invalid("its signature does not verify with its own key");
  }
  unsigned char* spki = nullptr;
  const int len = i2d_PUBKEY(key, &spki);
  if (len <= 0) return Invalid("public key not encodable");
  std::string out(reinterpret_cast<char*>(spki), static_cast<size_t>(len));
  OPENSSL_free(spki);
  return out;
}

absl::Status ValidateJoinToken(absl::string_view token) {
  if (token.empty() || token.size() > kMaxJoinTokenBytes) {
    return absl::InvalidArgumentError("join_token: must be 1..128 bytes");
  }
  for (char c : token) {
    if (!absl::ascii_isgraph(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          "join_token: must be printable ASCII without spaces");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateLabels(const std::map<std::string, std::string>& labels,
                            absl::string_view field) {
  if (labels.size() > static_cast<size_t>(kMaxLabels)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": at most ", kMaxLabels, " labels"));
  }
  for (const auto& [key, value] : labels) {
    if (!ValidLabelKey(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field,
                       ": label keys are 1..63 bytes of [a-z0-9._/-], starting "
                       "with [a-z0-9]"));
    }
    if (!ValidLabelValue(value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": label values are 0..63 bytes of [A-Za-z0-9._-]"));
    }
  }
  return absl::OkStatus();
}

std::string LabelsJson(const std::map<std::string, std::string>& labels) {
  std::string out = "{";
  for (const auto& [key, value] : labels) {
    if (out.size() > 1) out += ",";
    absl::StrAppend(&out, "\"", key, "\":\"", value, "\"");
  }
  return out + "}";
}

}  // namespace vouch::core::attest
