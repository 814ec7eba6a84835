// File: translog/new_key_pem.h
// A fresh pool log private key as PEM (Ed25519 or ECDSA P-256) for the
// transparency-log tests. Test-only.
#ifndef VOUCH_TESTS_TRANSLOG_NEW_KEY_PEM_H_
#define VOUCH_TESTS_TRANSLOG_NEW_KEY_PEM_H_

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <catch2/catch.hpp>
#include <string>

#include "common/openssl_handle.h"

namespace vouch::testing {

inline std::string NewKeyPem(int type = EVP_PKEY_ED25519) {
  EvpPkeyPtr key(type == EVP_PKEY_ED25519
                     ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                     : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  REQUIRE(key);
  BioPtr bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0,
                                   nullptr, nullptr) == 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, len);
}

}  // namespace vouch::testing

#endif  // VOUCH_TESTS_TRANSLOG_NEW_KEY_PEM_H_
