#include "core/boot/digest.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/openssl_handle.h"
#include "core/boot/event_log.h"

namespace vouch::core::boot {

const EVP_MD* DigestMd(uint16_t alg) {
  switch (alg) {
    case kAlgSha1:
      return EVP_sha1();
    case kAlgSha256:
      return EVP_sha256();
    case kAlgSha384:
      return EVP_sha384();
    case kAlgSha512:
      return EVP_sha512();
    case kAlgSm3_256:
      return EVP_get_digestbyname("SM3");  // nullptr if not built in.
    default:
      return nullptr;
  }
}

absl::StatusOr<Bytes> ComputeDigest(uint16_t alg, ByteSpan data) {
  const EVP_MD* md = DigestMd(alg);
  if (md == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("no implementation of ", HashAlgName(alg)));
  }
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &size, md, nullptr) !=
      1) {
    return absl::InternalError(
        absl::StrCat("EVP_Digest failed: ", DrainOpenSslErrors()));
  }
  out.resize(size);
  return out;
}

}  // namespace vouch::core::boot
