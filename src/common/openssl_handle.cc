#include "common/openssl_handle.h"

#include <openssl/err.h>

namespace vouch {

std::string DrainOpenSslErrors() {
  std::string out;
  unsigned long code;  // NOLINT(runtime/int): OpenSSL's type.
  while ((code = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

}  // namespace vouch
