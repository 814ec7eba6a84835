#include "core/boot/replay.h"

#include <openssl/evp.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/openssl_handle.h"
#include "core/boot/digest.h"
#include "core/rule.h"

namespace vouch::core::boot {

Bytes InitialPcrValue(const EventLog& log, uint32_t pcr, size_t digest_size) {
  Bytes value(digest_size, 0);
  if (pcr == 0 && log.startup_locality.has_value() && digest_size > 0) {
    value.back() = *log.startup_locality;
  }
  return value;
}

absl::StatusOr<PcrBanks> Replay(const EventLog& log) {
  PcrBanks banks;
  for (const AlgorithmSize& bank : log.algorithms) {
    const EVP_MD* md = DigestMd(bank.alg);
    if (md == nullptr) continue;  // No way to compute this bank.
    PcrValues& pcrs = banks[bank.alg];
    if (log.startup_locality.has_value()) {
      pcrs[0] = InitialPcrValue(log, 0, bank.digest_size);
    }
    for (const Event& event : log.events) {
      if (event.type == kEvNoAction) continue;
      const Bytes* digest = event.DigestFor(bank.alg);
      if (digest == nullptr) {
        // The parser guarantees one digest per header algorithm.
        return absl::InternalError(
            absl::StrCat("event ", event.number, " lacks a ",
                         HashAlgName(bank.alg), " digest"));
      }
      auto [it, fresh] = pcrs.try_emplace(event.pcr);
      if (fresh) it->second = InitialPcrValue(log, event.pcr, bank.digest_size);
      Bytes input = it->second;
      input.insert(input.end(), digest->begin(), digest->end());
      absl::StatusOr<Bytes> extended = ComputeDigest(bank.alg, input);
      if (!extended.ok()) return extended.status();
      it->second = *std::move(extended);
    }
  }
  return banks;
}

Verdict CheckQuotedPcrs(const EventLog& log, const PcrBanks& replayed,
                        uint16_t alg, const PcrValues& quoted,
                        const std::set<uint32_t>& used) {
  Verdict verdict;
  auto bank = replayed.find(alg);
  if (bank == replayed.end()) {
    verdict.AddFailure(Rule::kBootPcrQuote,
                       absl::StrCat("the event log has no ", HashAlgName(alg),
                                    " bank to compare the quote with"));
    verdict.MarkComplete();
    return verdict;
  }
  size_t size = HashAlgDigestSize(alg);
  for (uint32_t pcr : used) {
    auto q = quoted.find(pcr);
    if (q == quoted.end()) {
      verdict.AddFailure(Rule::kBootPcrQuote,
                         absl::StrCat(HashAlgName(alg), " PCR ", pcr,
                                      " is used by the policy but not quoted"));
      continue;
    }
    auto r = bank->second.find(pcr);
    Bytes expected =
        r != bank->second.end() ? r->second : InitialPcrValue(log, pcr, size);
    if (q->second != expected) {
      verdict.AddFailure(
          Rule::kBootPcrQuote,
          absl::StrCat(HashAlgName(alg), " PCR ", pcr, ": quoted ",
                       HexEncode(q->second), " but the event log replays to ",
                       HexEncode(expected)));
    }
  }
  verdict.MarkComplete();
  return verdict;
}

}  // namespace vouch::core::boot
