// Fuzzes whole quote verification (core/tpm/quote.h) with a fixed RSA AIK:
// input = UINT16 big-endian length of the attest part, the attest bytes,
// then the signature bytes. PCR values are all-zero for what is quoted.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/bytes.h"
#include "core/tpm/quote.h"
#include "core/tpm/tpm_wire.h"

namespace {

// TPM2B_PUBLIC of the golden RSA AIK (tests/tpm/data/tpm2-tools/ak-rsa.pub).
const char kAikHex[] =
#include "fuzz_tpm_quote_aik.inc"
    ;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace t = vouch::core::tpm;
  static const std::unique_ptr<t::AikVerifier> aik =
      *t::AikVerifier::Create(*vouch::HexDecode(kAikHex));
  if (size < 2) return 0;
  const size_t attest_len = std::min<size_t>(size - 2, data[0] << 8 | data[1]);
  const vouch::ByteSpan attest(data + 2, attest_len);
  const vouch::ByteSpan sig(data + 2 + attest_len, size - 2 - attest_len);
  t::PcrValues pcrs;
  absl::StatusOr<TPMS_ATTEST> parsed = t::ParseAttest(attest);
  if (parsed.ok() && parsed->type == TPM2_ST_ATTEST_QUOTE) {
    (void)t::ForEachSelectedPcr(
        parsed->attested.quote.pcrSelect, [&](TPMI_ALG_HASH alg, uint32_t pcr) {
          pcrs[alg][pcr] = vouch::Bytes(t::HashSize(alg), 0);
          return absl::OkStatus();
        });
  }
  t::QuotePolicy policy;
  policy.allowed_hash_algs.push_back(TPM2_ALG_SHA1);
  const vouch::Bytes nonce = {1, 2, 3, 4, 5, 6, 7, 8};
  t::QuoteEvidence ev{attest, sig, nonce, &pcrs, t::ClockInfo{5, 1, 0, true}};
  (void)aik->VerifyQuote(ev, policy);
  return 0;
}
