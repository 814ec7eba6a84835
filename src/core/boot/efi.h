// File: core/boot/efi.h
// Decoders for the UEFI structures inside event data: EFI_GUID,
// UEFI_VARIABLE_DATA, EFI_SIGNATURE_LIST (PK, KEK, db, dbx), UEFI_IMAGE_LOAD_
// EVENT with its device path, and the strings of EV_IPL / EV_EFI_ACTION.
// Inputs are untrusted event data: every decoder is bounded by the bytes it
// is given and returns kInvalidArgument naming the field on malformed input.
// Pure; thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(EfiVariable var, DecodeEfiVariable(event.data));
//   if (var.vendor == kEfiGlobalVariable && var.name == "SecureBoot") ...
#ifndef VOUCH_CORE_BOOT_EFI_H_
#define VOUCH_CORE_BOOT_EFI_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/bytes.h"
#include "core/boot/event_log.h"

namespace vouch::core::boot {

// EFI_GUID as it sits in memory: Data1 (u32), Data2, Data3 (u16) little
// endian, then Data4[8] (UEFI 2.10, Appendix A).
struct Guid {
  std::array<uint8_t, 16> bytes{};

  // Registry form: "8be4df61-93ca-11d2-aa0d-00e098032b8c".
  std::string ToString() const;
  // The bytes in memory order with registry dashes
  // ("61dfe48b-ca93-d211-aa0d-00e098032b8c"): what tpm2-tools < 5.2 printed,
  // so older Keylime reference states carry it.
  std::string ToLegacyString() const;
  // True if `text` (either case) is ToString() or ToLegacyString().
  bool Matches(absl::string_view text) const;

  bool operator==(const Guid& o) const { return bytes == o.bytes; }
  bool operator!=(const Guid& o) const { return bytes != o.bytes; }
};

// Parses the registry form (either case).
absl::StatusOr<Guid> ParseGuid(absl::string_view text);

// EFI_GLOBAL_VARIABLE (SecureBoot, PK, KEK, Boot####, BootOrder).
extern const Guid kEfiGlobalVariable;
// EFI_IMAGE_SECURITY_DATABASE_GUID (db, dbx).
extern const Guid kEfiImageSecurityDatabase;
// EFI_CERT_SHA256_GUID and EFI_CERT_X509_GUID (signature types).
extern const Guid kEfiCertSha256;
extern const Guid kEfiCertX509;
// SHIM_LOCK_GUID (shim's MokList, SbatLevel, Shim authority events).
extern const Guid kShimLock;

// UEFI_VARIABLE_DATA (PFP 1.05, section 10.4.4 / 3.3.4.8): VariableName,
// UnicodeNameLength (CHAR16 count), VariableDataLength, UnicodeName,
// VariableData.
struct EfiVariable {
  Guid vendor;
  std::string name;  // UTF-8 from UCS-2.
  Bytes data;
};
absl::StatusOr<EfiVariable> DecodeEfiVariable(ByteSpan event_data);

// EFI_SIGNATURE_LIST / EFI_SIGNATURE_DATA (UEFI 2.10, section 32.4.1).
struct EfiSignature {
  Guid owner;
  Bytes data;  // A DER X.509 certificate, a SHA-256 digest, ...
};
struct EfiSignatureList {
  Guid type;
  std::vector<EfiSignature> signatures;
};
// A variable's data as a sequence of signature lists (PK, KEK, db, dbx).
absl::StatusOr<std::vector<EfiSignatureList>> DecodeSignatureLists(
    ByteSpan data);

// UEFI_IMAGE_LOAD_EVENT (PFP 1.05, section 10.2.3):
// EV_EFI_BOOT_SERVICES_APPLICATION / _DRIVER, EV_EFI_RUNTIME_SERVICES_DRIVER.
struct ImageLoadEvent {
  uint64_t location = 0;
  uint64_t length = 0;
  uint64_t link_time_address = 0;
  Bytes device_path;
};
absl::StatusOr<ImageLoadEvent> DecodeImageLoadEvent(ByteSpan event_data);

// EFI_DEVICE_PATH_PROTOCOL nodes (UEFI 2.10, section 10.3) as text, e.g.
// "PciRoot(0x0)/Pci(0x1,0x1)/HD(1,GPT,...)/\EFI\ubuntu\shimx64.efi". Nodes
// it does not name print as "Path(type,subtype)". At most 64 nodes are
// printed.
absl::StatusOr<std::string> DevicePathToText(ByteSpan path);

// The text of an EV_IPL / EV_EFI_ACTION / EV_POST_CODE string event: the
// bytes up to the trailing NULs on one line: bytes outside printable ASCII,
// and the backslash, are escaped as \xNN.
std::string EventText(ByteSpan data);

// UCS-2 (CHAR16, little endian) to UTF-8, stopping at a NUL; an odd trailing
// byte is ignored. Unpaired surrogates become U+FFFD.
std::string Ucs2ToUtf8(ByteSpan data);

// One line describing an event for people (vouchctl boot show): decoded
// variable names, signature list summaries, device paths, strings.
std::string DescribeEventData(const Event& event);

}  // namespace vouch::core::boot

#endif  // VOUCH_CORE_BOOT_EFI_H_
