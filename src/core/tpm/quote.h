// File: core/tpm/quote.h
// Quote verification (TPM 2.0 Part 3, 18.4 TPM2_Quote) against a pinned AIK,
// and the AIK admission rules. Everything the agent sends (attest bytes,
// signature, PCR values) is untrusted; malformed bytes are kInvalidArgument,
// failed rules are verdict failures, each one listed. An AikVerifier is
// immutable after Create and safe to use from several threads at once.
//
//   VOUCH_ASSIGN_OR_RETURN(auto aik, AikVerifier::Create(aik_tpm2b_public));
//   QuoteEvidence ev{attest, signature, nonce, &pcrs, previous_clock};
//   VOUCH_ASSIGN_OR_RETURN(QuoteResult r, aik->VerifyQuote(ev, policy));
//   if (!r.verdict.passed()) ... r.verdict.failures() ...
#ifndef VOUCH_CORE_TPM_QUOTE_H_
#define VOUCH_CORE_TPM_QUOTE_H_

#include <tss2/tss2_tpm2_types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/bytes.h"
#include "common/openssl_handle.h"
#include "core/tpm/tpm_wire.h"
#include "core/verdict.h"

namespace vouch::core::tpm {

// Reported PCR values: hash algorithm (TPM_ALG_ID) -> PCR index -> value.
using PcrBank = std::map<uint32_t, Bytes>;
using PcrValues = std::map<TPMI_ALG_HASH, PcrBank>;

// TPM 2.0 Part 2, 10.11.1 TPMS_CLOCK_INFO of an accepted quote.
struct ClockInfo {
  uint64_t clock = 0;
  uint32_t reset_count = 0;
  uint32_t restart_count = 0;
  bool safe = false;
};

struct QuotePolicy {
  // Hash algorithms allowed for the signature and the quoted PCR banks.
  // SHA-1 is refused unless listed here.
  std::vector<TPMI_ALG_HASH> allowed_hash_algs = {TPM2_ALG_SHA256,
                                                  TPM2_ALG_SHA384};
  // PCRs the verifier asked for (the challenge's selection); each must be in
  // the quote. Empty: whatever the quote covers.
  std::optional<TPML_PCR_SELECTION> required_selection;
};

struct QuoteEvidence {
  ByteSpan attest;     // TPMS_ATTEST (or TPM2B_ATTEST) bytes.
  ByteSpan signature;  // TPMT_SIGNATURE bytes.
  ByteSpan nonce;      // The nonce the verifier issued (extraData).
  // Values the agent reports for the quoted PCRs; every quoted PCR must be
  // present and nothing else. nullptr: no values were reported, so
  // quote.pcr_values fails unless the selection is empty (fail closed).
  const PcrValues* pcr_values = nullptr;
  // Clock info of the last quote accepted from this AIK, if any.
  std::optional<ClockInfo> previous;
};

struct QuoteResult {
  Verdict verdict;
  // From the attest structure; meaningful (and worth persisting) only when
  // the verdict passed.
  ClockInfo clock;
  TPML_PCR_SELECTION selection{};
  uint64_t firmware_version = 0;
};

// AIK admission (ARCHITECTURE.md, "Registrar"): restricted, sign, not
// decrypt, fixedTPM, fixedParent, sensitiveDataOrigin, with RSA 2048/3072
// or ECC NIST P-256/P-384, and nameAlg SHA-256 or SHA-384. Rules
// Rule::kAik* ("aik.*").
Verdict CheckAikAttributes(const TPMT_PUBLIC& public_area);

// A parsed AIK, ready to verify quotes. Parse once per agent and reuse.
class AikVerifier {
 public:
  // From TPM2B_PUBLIC bytes. admission() holds CheckAikAttributes.
  static absl::StatusOr<std::unique_ptr<AikVerifier>> Create(
      ByteSpan tpm2b_public);
  // From a PEM public key: no TPM attributes, so admission() fails with
  // Rule::kAikAttributes; quotes can still be checked (offline tooling).
  static absl::StatusOr<std::unique_ptr<AikVerifier>> FromPem(
      const std::string& pem);

  // Checks one quote; see the file comment. Rules (Rule::kQuote*, by name):
  // quote.magic, quote.type, quote.signature, quote.signature_alg,
  // quote.nonce, quote.pcr_bank, quote.pcr_selection, quote.pcr_values,
  // quote.pcr_digest, quote.clock.safe, quote.clock.reset_count,
  // quote.clock.restart_count, quote.clock.clock. The AIK's admission failures
  // are *not* included.
  absl::StatusOr<QuoteResult> VerifyQuote(const QuoteEvidence& evidence,
                                          const QuotePolicy& policy) const;

  const Verdict& admission() const { return admission_; }
  // Empty for a PEM key.
  const Bytes& name() const { return name_; }
  const EVP_PKEY* key() const { return key_.get(); }

  ~AikVerifier();

 private:
  struct Prepared;
  AikVerifier() = default;
  absl::Status Prepare();
  // Checks the signature over `attest`; adds failures to `verdict`.
  void CheckSignature(ByteSpan attest, const TPMT_SIGNATURE& sig,
                      const QuotePolicy& policy, Verdict& verdict) const;

  EvpPkeyPtr key_;
  bool is_rsa_ = false;
  Bytes name_;
  Verdict admission_;
  std::vector<Prepared> prepared_;
};

// The pcrDigest a TPM computes over `values` for `selection` (TPM 2.0 Part 3,
// 18.4: the hash, with the signing scheme's algorithm, of the selected PCR
// values concatenated in selection order, each bank's PCRs ascending).
// kInvalidArgument if a selected PCR has no value or a value has the wrong
// size for its bank.
absl::StatusOr<Bytes> PcrDigest(TPMI_ALG_HASH digest_alg,
                                const TPML_PCR_SELECTION& selection,
                                const PcrValues& values);

// The clock rules alone (also used by VerifyQuote).
void CheckClock(const ClockInfo& now, const std::optional<ClockInfo>& previous,
                Verdict& verdict);

}  // namespace vouch::core::tpm

#endif  // VOUCH_CORE_TPM_QUOTE_H_
