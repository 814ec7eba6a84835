#include "core/rule.h"

#include <cstddef>
#include <iterator>
#include <ostream>

namespace vouch::core {
namespace {

// kAllRules lists the enumerators in order, without gaps.
constexpr bool AllRulesInOrder() {
  for (size_t i = 0; i < std::size(kAllRules); ++i) {
    if (static_cast<size_t>(kAllRules[i]) != i) return false;
  }
  return true;
}
static_assert(AllRulesInOrder(), "kAllRules must list every Rule in order");

}  // namespace

absl::string_view RuleName(Rule rule) {
  // No default: -Wswitch makes a rule without a name a compile error. These
  // strings are an interface (logs, vouchctl text and JSON): never rename.
  switch (rule) {
    case Rule::kQuoteMagic:
      return "quote.magic";
    case Rule::kQuoteType:
      return "quote.type";
    case Rule::kQuoteSignature:
      return "quote.signature";
    case Rule::kQuoteSignatureAlg:
      return "quote.signature_alg";
    case Rule::kQuoteNonce:
      return "quote.nonce";
    case Rule::kQuotePcrBank:
      return "quote.pcr_bank";
    case Rule::kQuotePcrSelection:
      return "quote.pcr_selection";
    case Rule::kQuotePcrValues:
      return "quote.pcr_values";
    case Rule::kQuotePcrDigest:
      return "quote.pcr_digest";
    case Rule::kQuoteClockSafe:
      return "quote.clock.safe";
    case Rule::kQuoteClockResetCount:
      return "quote.clock.reset_count";
    case Rule::kQuoteClockRestartCount:
      return "quote.clock.restart_count";
    case Rule::kQuoteClockClock:
      return "quote.clock.clock";
    case Rule::kAikRestricted:
      return "aik.restricted";
    case Rule::kAikSign:
      return "aik.sign";
    case Rule::kAikDecrypt:
      return "aik.decrypt";
    case Rule::kAikFixedTpm:
      return "aik.fixed_tpm";
    case Rule::kAikFixedParent:
      return "aik.fixed_parent";
    case Rule::kAikSensitiveDataOrigin:
      return "aik.sensitive_data_origin";
    case Rule::kAikNameAlg:
      return "aik.name_alg";
    case Rule::kAikAlgorithm:
      return "aik.algorithm";
    case Rule::kAikAttributes:
      return "aik.attributes";
    case Rule::kEkCertParse:
      return "ek_cert.parse";
    case Rule::kEkCertKey:
      return "ek_cert.key";
    case Rule::kEkCertChain:
      return "ek_cert.chain";
    case Rule::kBootPcrQuote:
      return "boot.pcr_quote";
    case Rule::kBootRefstate:
      return "boot.refstate";
    case Rule::kBootPcrs:
      return "boot.pcrs";
    case Rule::kBootEventUnexpected:
      return "boot.event_unexpected";
    case Rule::kBootEventRepeated:
      return "boot.event_repeated";
    case Rule::kBootEventDigest:
      return "boot.event_digest";
    case Rule::kBootEventData:
      return "boot.event_data";
    case Rule::kBootSeparator:
      return "boot.separator";
    case Rule::kBootEfiAction:
      return "boot.efi_action";
    case Rule::kBootScrtmAndBios:
      return "boot.scrtm_and_bios";
    case Rule::kBootFirmwareApps:
      return "boot.firmware_apps";
    case Rule::kBootKernels:
      return "boot.kernels";
    case Rule::kBootSecureboot:
      return "boot.secureboot";
    case Rule::kBootPk:
      return "boot.pk";
    case Rule::kBootKek:
      return "boot.kek";
    case Rule::kBootDb:
      return "boot.db";
    case Rule::kBootDbx:
      return "boot.dbx";
    case Rule::kBootVendorDb:
      return "boot.vendor_db";
    case Rule::kBootMokdig:
      return "boot.mokdig";
    case Rule::kBootMokxdig:
      return "boot.mokxdig";
    case Rule::kImaBadTemplateHash:
      return "ima.bad_template_hash";
    case Rule::kImaPcrMismatch:
      return "ima.pcr_mismatch";
    case Rule::kImaWrongPcr:
      return "ima.wrong_pcr";
    case Rule::kImaViolation:
      return "ima.violation";
    case Rule::kImaNotInPolicy:
      return "ima.not_in_policy";
    case Rule::kImaDigestMismatch:
      return "ima.digest_mismatch";
    case Rule::kImaBadSignature:
      return "ima.bad_signature";
    case Rule::kImaKeyringNotAllowed:
      return "ima.keyring_not_allowed";
    case Rule::kImaRejected:
      return "ima.rejected";
  }
  return "";  // Not an enumerator (a cast from an out-of-range integer).
}

std::ostream& operator<<(std::ostream& os, Rule rule) {
  return os << RuleName(rule);
}

}  // namespace vouch::core
