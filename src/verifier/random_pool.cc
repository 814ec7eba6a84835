#include "verifier/random_pool.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "common/logging.h"

namespace vouch::verifier {

Bytes RandomBytes(size_t n) {
  constexpr size_t kPool = 4096;
  thread_local uint8_t pool[kPool];
  thread_local size_t used = kPool;
  Bytes out(n);
  size_t done = 0;
  while (done < n) {
    if (used == kPool) {
      if (RAND_bytes(pool, static_cast<int>(kPool)) != 1) {
        // Never fall back to a predictable value.
        Log(LogLevel::kError, "RAND_bytes failed");
        std::abort();
      }
      used = 0;
    }
    const size_t take = std::min(n - done, kPool - used);
    std::memcpy(out.data() + done, pool + used, take);
    OPENSSL_cleanse(pool + used, take);
    used += take;
    done += take;
  }
  return out;
}

}  // namespace vouch::verifier
