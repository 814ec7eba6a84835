#include "core/boot/event_log.h"

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "core/boot/byte_reader.h"

namespace vouch::core::boot {
namespace {

// TCG_EfiSpecIdEvent.signature (PFP 1.05, section 10.4.5.1).
constexpr char kSpecIdSignature[] = "Spec ID Event03";  // + NUL: 16 bytes.
// TCG_EfiStartupLocalityEvent.Signature (PFP 1.05, section 10.4.5.3).
constexpr char kStartupLocalitySignature[] = "StartupLocality";  // + NUL.
constexpr size_t kSignatureSize = 16;
// PC Client TPMs have 24 PCRs (PFP 1.05, section 3.3.4).
constexpr uint32_t kMaxPcrIndex = 23;
// More algorithms than TPM_ALG_ID has hash algorithms is not a real header.
constexpr uint32_t kMaxAlgorithms = 16;
constexpr uint16_t kMaxDigestSize = 64;
constexpr size_t kSha1Size = 20;

struct KnownAlg {
  uint16_t alg;
  const char* name;
  size_t size;
};
constexpr KnownAlg kKnownAlgs[] = {
    {kAlgSha1, "sha1", 20},       {kAlgSha256, "sha256", 32},
    {kAlgSha384, "sha384", 48},   {kAlgSha512, "sha512", 64},
    {kAlgSm3_256, "sm3_256", 32},
};

absl::Status Malformed(size_t number, size_t offset, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrFormat(
      "event log entry %d at offset %d: %s", number, offset, what));
}

bool HasSignature(ByteSpan data, const char* signature) {
  return data.size() >= kSignatureSize &&
         std::memcmp(data.data(), signature, kSignatureSize) == 0;
}

bool AllBytesEqual(ByteSpan data, uint8_t value) {
  return std::all_of(data.begin(), data.end(),
                     [value](uint8_t b) { return b == value; });
}

// Reads eventSize and event[eventSize] (common tail of TCG_PCR_EVENT and
// TCG_PCR_EVENT2, PFP 1.05 sections 10.2.1 and 10.2.2).
absl::Status ReadEventData(ByteReader& in, const ParseLimits& limits,
                           Event& event) {
  uint32_t size = 0;
  if (!in.ReadU32(size)) {
    return Malformed(event.number, event.offset, "truncated eventSize");
  }
  if (size > limits.max_event_data_bytes) {
    return Malformed(event.number, event.offset,
                     absl::StrCat("eventSize ", size, " exceeds the limit of ",
                                  limits.max_event_data_bytes));
  }
  ByteSpan data;
  if (!in.ReadSpan(size, data)) {
    return Malformed(event.number, event.offset,
                     absl::StrCat("eventSize ", size, " runs past the end (",
                                  in.remaining(), " bytes left)"));
  }
  event.data.assign(data.begin(), data.end());
  return absl::OkStatus();
}

// TCG_PCR_EVENT (PFP 1.05, section 10.2.1): pcrIndex, eventType, a SHA-1
// digest, eventSize, event.
absl::Status ReadSha1Event(ByteReader& in, const ParseLimits& limits,
                           Event& event) {
  ByteSpan digest;
  if (!in.ReadU32(event.pcr) || !in.ReadU32(event.type) ||
      !in.ReadSpan(kSha1Size, digest)) {
    return Malformed(event.number, event.offset, "truncated event header");
  }
  event.digests.push_back({kAlgSha1, Bytes(digest.begin(), digest.end())});
  return ReadEventData(in, limits, event);
}

// TCG_PCR_EVENT2 (PFP 1.05, section 10.2.2): pcrIndex, eventType,
// TPML_DIGEST_VALUES (count, then TPMT_HA each), eventSize, event. The count
// and the algorithms must be those of the Spec ID header, each once.
absl::Status ReadAgileEvent(ByteReader& in, const ParseLimits& limits,
                            const std::vector<AlgorithmSize>& algorithms,
                            Event& event) {
  uint32_t count = 0;
  if (!in.ReadU32(event.pcr) || !in.ReadU32(event.type) || !in.ReadU32(count)) {
    return Malformed(event.number, event.offset, "truncated event header");
  }
  if (count != algorithms.size()) {
    return Malformed(
        event.number, event.offset,
        absl::StrCat("digest count ", count,
                     " differs from the Spec ID header's ", algorithms.size()));
  }
  event.digests.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint16_t alg = 0;
    if (!in.ReadU16(alg)) {
      return Malformed(event.number, event.offset,
                       absl::StrCat("truncated digests[", i, "].hashAlg"));
    }
    auto spec =
        std::find_if(algorithms.begin(), algorithms.end(),
                     [alg](const AlgorithmSize& a) { return a.alg == alg; });
    if (spec == algorithms.end()) {
      return Malformed(event.number, event.offset,
                       absl::StrCat("digests[", i, "] uses ", HashAlgName(alg),
                                    ", which the Spec ID header lacks"));
    }
    if (event.DigestFor(alg) != nullptr) {
      return Malformed(
          event.number, event.offset,
          absl::StrCat("digests[", i, "] repeats ", HashAlgName(alg)));
    }
    ByteSpan digest;
    if (!in.ReadSpan(spec->digest_size, digest)) {
      return Malformed(
          event.number, event.offset,
          absl::StrCat("truncated digests[", i, "] (", HashAlgName(alg), ")"));
    }
    event.digests.push_back({alg, Bytes(digest.begin(), digest.end())});
  }
  return ReadEventData(in, limits, event);
}

// TCG_EfiSpecIdEvent (PFP 1.05, section 10.4.5.1): signature[16],
// platformClass, specVersionMinor, specVersionMajor, specErrata, uintnSize,
// numberOfAlgorithms, digestSizes[numberOfAlgorithms], vendorInfoSize,
// vendorInfo. The structure must fill eventSize exactly.
absl::Status ParseSpecId(const Event& header, EventLog& log) {
  ByteReader in(header.data);
  uint32_t platform_class = 0, count = 0;
  uint8_t minor = 0, major = 0, errata = 0, uintn_size = 0;
  if (!in.Skip(kSignatureSize) || !in.ReadU32(platform_class) ||
      !in.ReadU8(minor) || !in.ReadU8(major) || !in.ReadU8(errata) ||
      !in.ReadU8(uintn_size) || !in.ReadU32(count)) {
    return Malformed(0, 0, "truncated Spec ID event");
  }
  if (count == 0 || count > kMaxAlgorithms) {
    return Malformed(0, 0,
                     absl::StrCat("Spec ID numberOfAlgorithms ", count,
                                  " is not in 1..", kMaxAlgorithms));
  }
  for (uint32_t i = 0; i < count; ++i) {
    AlgorithmSize a;
    if (!in.ReadU16(a.alg) || !in.ReadU16(a.digest_size)) {
      return Malformed(0, 0,
                       absl::StrCat("truncated Spec ID digestSizes[", i, "]"));
    }
    size_t known = HashAlgDigestSize(a.alg);
    if ((known != 0 && a.digest_size != known) || a.digest_size == 0 ||
        a.digest_size > kMaxDigestSize) {
      return Malformed(
          0, 0,
          absl::StrCat("Spec ID digestSizes[", i, "]: ", HashAlgName(a.alg),
                       " with size ", a.digest_size));
    }
    for (const AlgorithmSize& seen : log.algorithms) {
      if (seen.alg == a.alg) {
        return Malformed(0, 0,
                         absl::StrCat("Spec ID digestSizes[", i, "] repeats ",
                                      HashAlgName(a.alg)));
      }
    }
    log.algorithms.push_back(a);
  }
  uint8_t vendor_size = 0;
  if (!in.ReadU8(vendor_size) || !in.Skip(vendor_size)) {
    return Malformed(0, 0, "truncated Spec ID vendorInfo");
  }
  if (!in.empty()) {
    return Malformed(0, 0,
                     absl::StrCat("Spec ID event has ", in.remaining(),
                                  " bytes after vendorInfo"));
  }
  return absl::OkStatus();
}

// EV_NO_ACTION "StartupLocality" (PFP 1.05, section 10.4.5.3): PCR 0 starts
// at 0...0<locality> instead of zero. It must come before anything extends
// PCR 0, and only once.
absl::Status NoteStartupLocality(const Event& event, bool pcr0_extended,
                                 EventLog& log) {
  if (event.data.size() != kSignatureSize + 1) {
    return Malformed(event.number, event.offset,
                     absl::StrCat("StartupLocality event has ",
                                  event.data.size(), " bytes, not 17"));
  }
  if (log.startup_locality.has_value()) {
    return Malformed(event.number, event.offset,
                     "a second StartupLocality event");
  }
  if (pcr0_extended) {
    return Malformed(event.number, event.offset,
                     "StartupLocality after PCR 0 was extended");
  }
  uint8_t locality = event.data[kSignatureSize];
  // Localities 0-4; 3 and 4 are the ones PFP names for an H-CRTM start.
  if (locality > 4) {
    return Malformed(
        event.number, event.offset,
        absl::StrCat("StartupLocality ", locality, " is not a TPM locality"));
  }
  log.startup_locality = locality;
  return absl::OkStatus();
}

}  // namespace

std::string EventTypeName(uint32_t type) {
  struct Name {
    uint32_t type;
    const char* name;
  };
  static constexpr Name kNames[] = {
      {kEvPrebootCert, "EV_PREBOOT_CERT"},
      {kEvPostCode, "EV_POST_CODE"},
      {0x00000002, "EV_UNUSED"},
      {kEvNoAction, "EV_NO_ACTION"},
      {kEvSeparator, "EV_SEPARATOR"},
      {kEvAction, "EV_ACTION"},
      {kEvEventTag, "EV_EVENT_TAG"},
      {kEvSCrtmContents, "EV_S_CRTM_CONTENTS"},
      {kEvSCrtmVersion, "EV_S_CRTM_VERSION"},
      {kEvCpuMicrocode, "EV_CPU_MICROCODE"},
      {kEvPlatformConfigFlags, "EV_PLATFORM_CONFIG_FLAGS"},
      {kEvTableOfDevices, "EV_TABLE_OF_DEVICES"},
      {kEvCompactHash, "EV_COMPACT_HASH"},
      {kEvIpl, "EV_IPL"},
      {kEvIplPartitionData, "EV_IPL_PARTITION_DATA"},
      {kEvNonhostCode, "EV_NONHOST_CODE"},
      {kEvNonhostConfig, "EV_NONHOST_CONFIG"},
      {kEvNonhostInfo, "EV_NONHOST_INFO"},
      {kEvOmitBootDeviceEvents, "EV_OMIT_BOOT_DEVICE_EVENTS"},
      {kEvPostCode2, "EV_POST_CODE2"},
      {kEvEfiVariableDriverConfig, "EV_EFI_VARIABLE_DRIVER_CONFIG"},
      {kEvEfiVariableBoot, "EV_EFI_VARIABLE_BOOT"},
      {kEvEfiBootServicesApplication, "EV_EFI_BOOT_SERVICES_APPLICATION"},
      {kEvEfiBootServicesDriver, "EV_EFI_BOOT_SERVICES_DRIVER"},
      {kEvEfiRuntimeServicesDriver, "EV_EFI_RUNTIME_SERVICES_DRIVER"},
      {kEvEfiGptEvent, "EV_EFI_GPT_EVENT"},
      {kEvEfiAction, "EV_EFI_ACTION"},
      {kEvEfiPlatformFirmwareBlob, "EV_EFI_PLATFORM_FIRMWARE_BLOB"},
      {kEvEfiHandoffTables, "EV_EFI_HANDOFF_TABLES"},
      {kEvEfiPlatformFirmwareBlob2, "EV_EFI_PLATFORM_FIRMWARE_BLOB2"},
      {kEvEfiHandoffTables2, "EV_EFI_HANDOFF_TABLES2"},
      {kEvEfiVariableBoot2, "EV_EFI_VARIABLE_BOOT2"},
      {kEvEfiGptEvent2, "EV_EFI_GPT_EVENT2"},
      {kEvEfiHcrtmEvent, "EV_EFI_HCRTM_EVENT"},
      {kEvEfiVariableAuthority, "EV_EFI_VARIABLE_AUTHORITY"},
      {kEvEfiSpdmFirmwareBlob, "EV_EFI_SPDM_FIRMWARE_BLOB"},
      {kEvEfiSpdmFirmwareConfig, "EV_EFI_SPDM_FIRMWARE_CONFIG"},
  };
  for (const Name& n : kNames) {
    if (n.type == type) return n.name;
  }
  return absl::StrFormat("0x%08x", type);
}

std::string HashAlgName(uint16_t alg) {
  for (const KnownAlg& k : kKnownAlgs) {
    if (k.alg == alg) return k.name;
  }
  return absl::StrFormat("alg_0x%04x", alg);
}

std::optional<uint16_t> HashAlgFromName(const std::string& name) {
  for (const KnownAlg& k : kKnownAlgs) {
    if (name == k.name) return k.alg;
  }
  return std::nullopt;
}

size_t HashAlgDigestSize(uint16_t alg) {
  for (const KnownAlg& k : kKnownAlgs) {
    if (k.alg == alg) return k.size;
  }
  return 0;
}

const Bytes* Event::DigestFor(uint16_t alg) const {
  for (const EventDigest& d : digests) {
    if (d.alg == alg) return &d.value;
  }
  return nullptr;
}

absl::StatusOr<EventLog> ParseEventLog(ByteSpan bytes,
                                       const ParseLimits& limits) {
  if (bytes.size() > limits.max_log_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("event log of ", bytes.size(),
                     " bytes exceeds the limit of ", limits.max_log_bytes));
  }
  if (bytes.empty()) {
    return absl::InvalidArgumentError("event log is empty");
  }
  EventLog log;
  ByteReader in(bytes);

  // The first entry is always a TCG_PCR_EVENT (PFP 1.05, section 10.2.1). A
  // crypto-agile log announces itself with an EV_NO_ACTION Spec ID event.
  Event first;
  VOUCH_RETURN_IF_ERROR(ReadSha1Event(in, limits, first));
  bool agile =
      first.type == kEvNoAction && HasSignature(first.data, kSpecIdSignature);
  if (agile) {
    if (first.pcr != 0 || !AllBytesEqual(first.digests[0].value, 0)) {
      return Malformed(0, 0,
                       "Spec ID event must be on PCR 0 with a zero digest");
    }
    log.format = LogFormat::kCryptoAgile;
    VOUCH_RETURN_IF_ERROR(ParseSpecId(first, log));
  } else {
    log.format = LogFormat::kSha1;
    log.algorithms.push_back({kAlgSha1, static_cast<uint16_t>(kSha1Size)});
  }
  log.events.push_back(std::move(first));

  bool pcr0_extended = false;
  while (true) {
    Event& previous = log.events.back();
    if (previous.type == kEvNoAction) {
      if (HasSignature(previous.data, kStartupLocalitySignature)) {
        VOUCH_RETURN_IF_ERROR(
            NoteStartupLocality(previous, pcr0_extended, log));
      }
    } else {
      if (previous.pcr > kMaxPcrIndex) {
        return Malformed(previous.number, previous.offset,
                         absl::StrCat("pcrIndex ", previous.pcr, " is above ",
                                      kMaxPcrIndex));
      }
      pcr0_extended = pcr0_extended || previous.pcr == 0;
    }
    if (in.empty()) break;
    // Quirk: firmware hands over a fixed-size log area; some readers keep
    // its unused tail, which is all 0x00 or all 0xFF.
    if (AllBytesEqual(in.Rest(), 0x00) || AllBytesEqual(in.Rest(), 0xFF)) {
      break;
    }
    if (log.events.size() >= limits.max_events) {
      return Malformed(
          log.events.size(), in.offset(),
          absl::StrCat("more than ", limits.max_events, " events"));
    }
    Event event;
    event.number = log.events.size();
    event.offset = in.offset();
    if (agile) {
      VOUCH_RETURN_IF_ERROR(ReadAgileEvent(in, limits, log.algorithms, event));
    } else {
      VOUCH_RETURN_IF_ERROR(ReadSha1Event(in, limits, event));
    }
    log.events.push_back(std::move(event));
  }
  return log;
}

}  // namespace vouch::core::boot
