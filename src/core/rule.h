// File: core/rule.h
// The rules a verdict can fail (verdict.h), as an enum: producers in
// core/tpm, core/boot and core/ima name the rule they checked, consumers
// (the verifier's FailureCode mapping, vouchctl, the registrar) switch on it.
// RuleName gives the stable text ("quote.nonce") that logs, vouchctl output
// and JSON carry; it never changes for an existing rule. Pure; thread-safe.
//
//   verdict.AddFailure(Rule::kQuoteNonce, "extraData differs");
//   std::cout << RuleName(failure.rule);  // quote.nonce
//
// Adding a rule: add the enumerator (values stay 0, 1, ...), its name in
// RuleName (-Wswitch refuses a missing one), its place in kAllRules (a unit
// test checks), and its FailureCode in core::attest::FailureCodeFor.
#ifndef VOUCH_CORE_RULE_H_
#define VOUCH_CORE_RULE_H_

#include <iosfwd>

#include "absl/strings/string_view.h"

namespace vouch::core {

enum class Rule {
  // TPM quote (core/tpm/quote.h; TPM 2.0 Part 2, 10.12.8 TPMS_ATTEST).
  kQuoteMagic,              // quote.magic
  kQuoteType,               // quote.type
  kQuoteSignature,          // quote.signature
  kQuoteSignatureAlg,       // quote.signature_alg
  kQuoteNonce,              // quote.nonce
  kQuotePcrBank,            // quote.pcr_bank
  kQuotePcrSelection,       // quote.pcr_selection
  kQuotePcrValues,          // quote.pcr_values
  kQuotePcrDigest,          // quote.pcr_digest
  kQuoteClockSafe,          // quote.clock.safe
  kQuoteClockResetCount,    // quote.clock.reset_count
  kQuoteClockRestartCount,  // quote.clock.restart_count
  kQuoteClockClock,         // quote.clock.clock
  // AIK admission (core/tpm/quote.h CheckAikAttributes).
  kAikRestricted,           // aik.restricted
  kAikSign,                 // aik.sign
  kAikDecrypt,              // aik.decrypt
  kAikFixedTpm,             // aik.fixed_tpm
  kAikFixedParent,          // aik.fixed_parent
  kAikSensitiveDataOrigin,  // aik.sensitive_data_origin
  kAikNameAlg,              // aik.name_alg
  kAikAlgorithm,            // aik.algorithm
  kAikAttributes,           // aik.attributes
  // EK certificate (core/tpm/ek_cert.h).
  kEkCertParse,  // ek_cert.parse
  kEkCertKey,    // ek_cert.key
  kEkCertChain,  // ek_cert.chain
  // Measured boot (core/boot/replay.h, core/boot/boot_policy.h).
  kBootPcrQuote,         // boot.pcr_quote
  kBootRefstate,         // boot.refstate
  kBootPcrs,             // boot.pcrs
  kBootEventUnexpected,  // boot.event_unexpected
  kBootEventRepeated,    // boot.event_repeated
  kBootEventDigest,      // boot.event_digest
  kBootEventData,        // boot.event_data
  kBootSeparator,        // boot.separator
  kBootEfiAction,        // boot.efi_action
  kBootScrtmAndBios,     // boot.scrtm_and_bios
  kBootFirmwareApps,     // boot.firmware_apps
  kBootKernels,          // boot.kernels
  kBootSecureboot,       // boot.secureboot
  kBootPk,               // boot.pk
  kBootKek,              // boot.kek
  kBootDb,               // boot.db
  kBootDbx,              // boot.dbx
  kBootVendorDb,         // boot.vendor_db
  kBootMokdig,           // boot.mokdig
  kBootMokxdig,          // boot.mokxdig
  // IMA (core/ima/ima_evaluator.h); ImaFailure::reason is one of these.
  kImaBadTemplateHash,    // ima.bad_template_hash
  kImaPcrMismatch,        // ima.pcr_mismatch
  kImaWrongPcr,           // ima.wrong_pcr
  kImaViolation,          // ima.violation
  kImaNotInPolicy,        // ima.not_in_policy
  kImaDigestMismatch,     // ima.digest_mismatch
  kImaBadSignature,       // ima.bad_signature
  kImaKeyringNotAllowed,  // ima.keyring_not_allowed
  kImaRejected,           // ima.rejected (the policy's reject list)
};

// Every rule, in declaration order (to iterate, e.g. in tests).
inline constexpr Rule kAllRules[] = {
    Rule::kQuoteMagic,
    Rule::kQuoteType,
    Rule::kQuoteSignature,
    Rule::kQuoteSignatureAlg,
    Rule::kQuoteNonce,
    Rule::kQuotePcrBank,
    Rule::kQuotePcrSelection,
    Rule::kQuotePcrValues,
    Rule::kQuotePcrDigest,
    Rule::kQuoteClockSafe,
    Rule::kQuoteClockResetCount,
    Rule::kQuoteClockRestartCount,
    Rule::kQuoteClockClock,
    Rule::kAikRestricted,
    Rule::kAikSign,
    Rule::kAikDecrypt,
    Rule::kAikFixedTpm,
    Rule::kAikFixedParent,
    Rule::kAikSensitiveDataOrigin,
    Rule::kAikNameAlg,
    Rule::kAikAlgorithm,
    Rule::kAikAttributes,
    Rule::kEkCertParse,
    Rule::kEkCertKey,
    Rule::kEkCertChain,
    Rule::kBootPcrQuote,
    Rule::kBootRefstate,
    Rule::kBootPcrs,
    Rule::kBootEventUnexpected,
    Rule::kBootEventRepeated,
    Rule::kBootEventDigest,
    Rule::kBootEventData,
    Rule::kBootSeparator,
    Rule::kBootEfiAction,
    Rule::kBootScrtmAndBios,
    Rule::kBootFirmwareApps,
    Rule::kBootKernels,
    Rule::kBootSecureboot,
    Rule::kBootPk,
    Rule::kBootKek,
    Rule::kBootDb,
    Rule::kBootDbx,
    Rule::kBootVendorDb,
    Rule::kBootMokdig,
    Rule::kBootMokxdig,
    Rule::kImaBadTemplateHash,
    Rule::kImaPcrMismatch,
    Rule::kImaWrongPcr,
    Rule::kImaViolation,
    Rule::kImaNotInPolicy,
    Rule::kImaDigestMismatch,
    Rule::kImaBadSignature,
    Rule::kImaKeyringNotAllowed,
    Rule::kImaRejected,
};

// The stable name, "<area>.<check>" (e.g. "quote.clock.safe"); "" only for
// a value that is no enumerator.
absl::string_view RuleName(Rule rule);

// Prints RuleName (for logs and test failure messages).
std::ostream& operator<<(std::ostream& os, Rule rule);

}  // namespace vouch::core

#endif  // VOUCH_CORE_RULE_H_
