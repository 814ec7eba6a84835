// File: verifier/random_pool.h
// Unpredictable bytes for nonces and record ids from OpenSSL's DRBG, drawn
// 4 KiB at a time per thread: each RAND_bytes call costs several
// microseconds of locking, algorithm lookup and a fork check, more than a
// verdict's own checks. Bytes handed out are wiped from the buffer; the
// verifier never forks, so a child cannot reuse them. Aborts when the DRBG
// fails: without randomness no nonce may be issued. Thread-safe.
//
//   Bytes nonce = RandomBytes(32);
#ifndef VOUCH_VERIFIER_RANDOM_POOL_H_
#define VOUCH_VERIFIER_RANDOM_POOL_H_

#include <cstddef>

#include "common/bytes.h"

namespace vouch::verifier {

Bytes RandomBytes(size_t n);

}  // namespace vouch::verifier

#endif  // VOUCH_VERIFIER_RANDOM_POOL_H_
