// File: common/openssl_handle.h
// RAII aliases for the OpenSSL 3 objects Vouch uses, and a helper that turns
// the thread-local OpenSSL error queue into text for logs (never for peers).
//
//   X509Ptr cert(d2i_X509(nullptr, &p, len));
//   if (!cert) return absl::InvalidArgumentError("bad certificate");
#ifndef VOUCH_COMMON_OPENSSL_HANDLE_H_
#define VOUCH_COMMON_OPENSSL_HANDLE_H_

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <string>

#include "common/c_handle.h"

namespace vouch {

using BioPtr = CHandle<BIO, BIO_free_all>;
using BignumPtr = CHandle<BIGNUM, BN_free>;
using EvpPkeyPtr = CHandle<EVP_PKEY, EVP_PKEY_free>;
using EvpPkeyCtxPtr = CHandle<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using EvpMdCtxPtr = CHandle<EVP_MD_CTX, EVP_MD_CTX_free>;
using EvpCipherCtxPtr = CHandle<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using X509Ptr = CHandle<X509, X509_free>;
using X509StorePtr = CHandle<X509_STORE, X509_STORE_free>;
using X509StoreCtxPtr = CHandle<X509_STORE_CTX, X509_STORE_CTX_free>;

// sk_X509_free is a macro; this frees the stack, not the certificates in it.
inline void FreeX509Stack(STACK_OF(X509) * stack) { sk_X509_free(stack); }
using X509StackPtr = CHandle<STACK_OF(X509), FreeX509Stack>;

// Drains this thread's OpenSSL error queue into one line ("" when empty).
std::string DrainOpenSslErrors();

}  // namespace vouch

#endif  // VOUCH_COMMON_OPENSSL_HANDLE_H_
