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
    const TPML_PCR_SELECTION& s = parsed->attested.quote.pcrSelect;
    for (uint32_t b = 0; b < s.count && b < TPM2_NUM_PCR_BANKS; ++b) {
      const TPMS_PCR_SELECTION& bank = s.pcrSelections[b];
      for (uint32_t p = 0; p < 8u * bank.sizeofSelect && p < 32; ++p) {
        if ((bank.pcrSelect[p / 8] >> (p % 8)) & 1) {
          pcrs[bank.hash][p] = vouch::Bytes(t::HashSize(bank.hash), 0);
        }
      }
    }
  }
  t::QuotePolicy policy;
  policy.allowed_hash_algs.push_back(TPM2_ALG_SHA1);
  const vouch::Bytes nonce = {1, 2, 3, 4, 5, 6, 7, 8};
  t::QuoteEvidence ev{attest, sig, nonce, &pcrs, t::ClockInfo{5, 1, 0, true}};
  (void)aik->VerifyQuote(ev, policy);
  return 0;
}
