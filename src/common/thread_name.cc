#include "common/thread_name.h"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace vouch {

void SetThreadName(const char* name) {
  // The kernel keeps 16 bytes with the terminating NUL.
  const std::string cut(name, std::min<size_t>(std::strlen(name), 15));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace vouch
