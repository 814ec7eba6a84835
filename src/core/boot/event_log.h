// File: core/boot/event_log.h
// The TCG PC Client firmware event log (what Linux exposes as
// /sys/kernel/security/tpm0/binary_bios_measurements): framing, digests and
// raw event data. ParseEventLog takes untrusted bytes and returns UNVERIFIED
// data: nothing in an EventLog is trustworthy until its replay (replay.h)
// matched PCR values from a verified quote. Pure; values are immutable after
// parsing and safe to share between threads.
//
//   VOUCH_ASSIGN_OR_RETURN(EventLog log, ParseEventLog(bytes));
//   for (const Event& e : log.events) std::cout << EventTypeName(e.type);
#ifndef VOUCH_CORE_BOOT_EVENT_LOG_H_
#define VOUCH_CORE_BOOT_EVENT_LOG_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/bytes.h"

namespace vouch::core::boot {

// Event types: TCG PC Client Platform Firmware Profile (PFP) 1.05, section
// 10.4.1 "Event Types" (Table 9).
inline constexpr uint32_t kEvPrebootCert = 0x00000000;
inline constexpr uint32_t kEvPostCode = 0x00000001;
inline constexpr uint32_t kEvNoAction = 0x00000003;
inline constexpr uint32_t kEvSeparator = 0x00000004;
inline constexpr uint32_t kEvAction = 0x00000005;
inline constexpr uint32_t kEvEventTag = 0x00000006;
inline constexpr uint32_t kEvSCrtmContents = 0x00000007;
inline constexpr uint32_t kEvSCrtmVersion = 0x00000008;
inline constexpr uint32_t kEvCpuMicrocode = 0x00000009;
inline constexpr uint32_t kEvPlatformConfigFlags = 0x0000000A;
inline constexpr uint32_t kEvTableOfDevices = 0x0000000B;
inline constexpr uint32_t kEvCompactHash = 0x0000000C;
inline constexpr uint32_t kEvIpl = 0x0000000D;
inline constexpr uint32_t kEvIplPartitionData = 0x0000000E;
inline constexpr uint32_t kEvNonhostCode = 0x0000000F;
inline constexpr uint32_t kEvNonhostConfig = 0x00000010;
inline constexpr uint32_t kEvNonhostInfo = 0x00000011;
inline constexpr uint32_t kEvOmitBootDeviceEvents = 0x00000012;
inline constexpr uint32_t kEvPostCode2 = 0x00000013;
inline constexpr uint32_t kEvEfiVariableDriverConfig = 0x80000001;
inline constexpr uint32_t kEvEfiVariableBoot = 0x80000002;
inline constexpr uint32_t kEvEfiBootServicesApplication = 0x80000003;
inline constexpr uint32_t kEvEfiBootServicesDriver = 0x80000004;
inline constexpr uint32_t kEvEfiRuntimeServicesDriver = 0x80000005;
inline constexpr uint32_t kEvEfiGptEvent = 0x80000006;
inline constexpr uint32_t kEvEfiAction = 0x80000007;
inline constexpr uint32_t kEvEfiPlatformFirmwareBlob = 0x80000008;
inline constexpr uint32_t kEvEfiHandoffTables = 0x80000009;
inline constexpr uint32_t kEvEfiPlatformFirmwareBlob2 = 0x8000000A;
inline constexpr uint32_t kEvEfiHandoffTables2 = 0x8000000B;
inline constexpr uint32_t kEvEfiVariableBoot2 = 0x8000000C;
inline constexpr uint32_t kEvEfiGptEvent2 = 0x8000000D;
inline constexpr uint32_t kEvEfiHcrtmEvent = 0x80000010;
inline constexpr uint32_t kEvEfiVariableAuthority = 0x800000E0;
inline constexpr uint32_t kEvEfiSpdmFirmwareBlob = 0x800000E1;
inline constexpr uint32_t kEvEfiSpdmFirmwareConfig = 0x800000E2;

// "EV_EFI_ACTION"; unknown types print as "0x%08x".
std::string EventTypeName(uint32_t type);

// TPM_ALG_ID values of the hash algorithms (TPM 2.0 Part 2, section 6.3).
inline constexpr uint16_t kAlgSha1 = 0x0004;
inline constexpr uint16_t kAlgSha256 = 0x000B;
inline constexpr uint16_t kAlgSha384 = 0x000C;
inline constexpr uint16_t kAlgSha512 = 0x000D;
inline constexpr uint16_t kAlgSm3_256 = 0x0012;

// "sha1", "sha256", "sha384", "sha512", "sm3_256"; others "alg_0x%04x".
std::string HashAlgName(uint16_t alg);
// The inverse for the five names above; nullopt otherwise.
std::optional<uint16_t> HashAlgFromName(const std::string& name);
// The digest size of a known algorithm; 0 for an unknown one.
size_t HashAlgDigestSize(uint16_t alg);

// Bounds on hostile input (documented in docs/boot.md). Real logs are tens of
// KiB with a few hundred events; the largest event data seen in the wild (db
// variables, GPT tables) is a few KiB.
struct ParseLimits {
  size_t max_log_bytes = 16u << 20;
  size_t max_event_data_bytes = 1u << 20;
  size_t max_events = 65536;
};

enum class LogFormat {
  kSha1,         // TCG_PCR_EVENT entries only (TPM 1.2 style, SHA-1 bank).
  kCryptoAgile,  // Spec ID Event03 header, then TCG_PCR_EVENT2 entries.
};

struct AlgorithmSize {
  uint16_t alg = 0;
  uint16_t digest_size = 0;
};

struct EventDigest {
  uint16_t alg = 0;
  Bytes value;
};

struct Event {
  // Position in the log: 0 is the first entry (for crypto-agile logs the
  // Spec ID header), as tpm2_eventlog and Keylime number them.
  size_t number = 0;
  size_t offset = 0;  // Byte offset of the entry in the log.
  uint32_t pcr = 0;
  uint32_t type = 0;
  std::vector<EventDigest> digests;  // In log order; one per header algorithm.
  Bytes data;

  // The digest for `alg`, or nullptr if the event has none.
  const Bytes* DigestFor(uint16_t alg) const;
};

struct EventLog {
  LogFormat format = LogFormat::kSha1;
  // From the Spec ID event (crypto-agile) or {sha1, 20} (SHA-1 log).
  std::vector<AlgorithmSize> algorithms;
  std::vector<Event> events;
  // Set by an EV_NO_ACTION "StartupLocality" event (PFP 10.4.5.3): the
  // locality the TPM was started from, which is PCR 0's initial value.
  std::optional<uint8_t> startup_locality;
};

// Parses a whole log. Errors are kInvalidArgument naming the entry number,
// byte offset and field: a length that runs past the end, a digest count or
// algorithm that disagrees with the Spec ID header, a PCR index above 23, a
// log or event above `limits`. Tolerated quirks (docs/boot.md): trailing
// padding of all 0x00 or all 0xFF bytes after the last complete event.
absl::StatusOr<EventLog> ParseEventLog(ByteSpan bytes,
                                       const ParseLimits& limits = {});

}  // namespace vouch::core::boot

#endif  // VOUCH_CORE_BOOT_EVENT_LOG_H_
