// File: harness/soft_aik.h
// A software AIK for tests and benchmarks that need quotes without a TPM:
// an RSA-2048 key with a TPM AIK's restricted signing attributes, whose
// Quote() writes the TPMS_ATTEST and TPMT_SIGNATURE a TPM would (TPM 2.0
// Part 3, 18.4) for any PCR values, nonce and clock. What it signs verifies
// with core::tpm::AikVerifier like a real TPM's quote. Test-only. Const
// methods are thread-safe.
//
//   SoftAik aik = SoftAik::Create();  // or FromPem(pem): a fixed key

//   auto [attest, signature] = aik.Quote(selection, pcrs, nonce, clock);
#ifndef VOUCH_TESTS_HARNESS_SOFT_AIK_H_
#define VOUCH_TESTS_HARNESS_SOFT_AIK_H_

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <utility>

#include "common/bytes.h"
#include "core/tpm/quote.h"

namespace vouch::testing {

class SoftAik {
 public:
  // A fresh random key.
  static SoftAik Create();
  // A given RSA-2048 private key (PEM), for output that must not change
  // between runs (RSASSA-PKCS1-v1_5 signatures are deterministic). Aborts on
  // a key that is not RSA-2048.
  static SoftAik FromPem(const std::string& pem);

  const Bytes& tpm2b_public() const { return tpm2b_public_; }
  const Bytes& name() const { return name_; }

  // (TPMS_ATTEST bytes, TPMT_SIGNATURE bytes) of a quote over `selection`
  // with `values`; aborts on a selected PCR without a value.
  std::pair<std::string, std::string> Quote(
      const TPML_PCR_SELECTION& selection, const core::tpm::PcrValues& values,
      const std::string& nonce, const core::tpm::ClockInfo& clock) const;

 private:
  static SoftAik FromKey(EVP_PKEY* key);  // Takes ownership.

  std::shared_ptr<EVP_PKEY> key_;
  Bytes tpm2b_public_;
  Bytes name_;
};

}  // namespace vouch::testing

#endif  // VOUCH_TESTS_HARNESS_SOFT_AIK_H_
