// File: core/boot/replay.h
// Replays a parsed event log into PCR values per bank, and compares them with
// PCR values a verified quote reported. Inputs are the unverified EventLog
// and caller-supplied quoted values; the result says what the log claims,
// which only becomes trusted once CheckQuotedPcrs passes for every PCR a
// policy relies on. Pure; safe to call from any thread.
//
//   VOUCH_ASSIGN_OR_RETURN(PcrBanks pcrs, Replay(log));
//   Verdict v = CheckQuotedPcrs(pcrs, kAlgSha256, quoted, policy.UsedPcrs());
#ifndef VOUCH_CORE_BOOT_REPLAY_H_
#define VOUCH_CORE_BOOT_REPLAY_H_

#include <cstdint>
#include <map>
#include <set>

#include "absl/status/statusor.h"
#include "common/bytes.h"
#include "core/boot/event_log.h"
#include "core/verdict.h"

namespace vouch::core::boot {

// PCR index -> value.
using PcrValues = std::map<uint32_t, Bytes>;
// TPM_ALG_ID of the bank -> its PCRs.
using PcrBanks = std::map<uint16_t, PcrValues>;

// The value PCR `pcr` of a bank with `digest_size` bytes holds after
// TPM2_Startup according to `log`: zero, except PCR 0 when a StartupLocality
// event set it to 0...0<locality> (PFP 1.05, section 10.4.5.3).
Bytes InitialPcrValue(const EventLog& log, uint32_t pcr, size_t digest_size);

// Extends, per bank of the log whose algorithm OpenSSL can compute (sha1,
// sha256, sha384, sha512, sm3_256), every event's digest into its PCR:
// new = H(old || digest) (TPM 2.0 Part 1, section 17.2). EV_NO_ACTION events
// never extend (PFP 1.05, section 10.4.5). The result holds every PCR that
// some event extended, and PCR 0 when StartupLocality set it. Banks of
// algorithms OpenSSL lacks are left out. kInternal if OpenSSL fails.
absl::StatusOr<PcrBanks> Replay(const EventLog& log);

// Compares quoted PCR values (one bank, `alg`, from a verified quote) with the
// replayed ones for each PCR in `used`. A used PCR that the quote lacks, or
// whose quoted value differs from the replayed one (or from its initial value
// when the log never touched it), is a failure Rule::kBootPcrQuote naming the
// bank and PCR. The verdict is complete when every used PCR was compared.
Verdict CheckQuotedPcrs(const EventLog& log, const PcrBanks& replayed,
                        uint16_t alg, const PcrValues& quoted,
                        const std::set<uint32_t>& used);

}  // namespace vouch::core::boot

#endif  // VOUCH_CORE_BOOT_REPLAY_H_
