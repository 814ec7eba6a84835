#include "core/boot/efi.h"

#include <cctype>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "core/boot/byte_reader.h"

namespace vouch::core::boot {
namespace {

constexpr Guid MakeGuid(uint32_t d1, uint16_t d2, uint16_t d3,
                        std::array<uint8_t, 8> d4) {
  Guid g;
  for (int i = 0; i < 4; ++i) g.bytes[i] = static_cast<uint8_t>(d1 >> (8 * i));
  for (int i = 0; i < 2; ++i) {
    g.bytes[4 + i] = static_cast<uint8_t>(d2 >> (8 * i));
    g.bytes[6 + i] = static_cast<uint8_t>(d3 >> (8 * i));
  }
  for (int i = 0; i < 8; ++i) g.bytes[8 + i] = d4[i];
  return g;
}

bool ReadGuid(ByteReader& in, Guid& out) {
  ByteSpan raw;
  if (!in.ReadSpan(16, raw)) return false;
  std::copy(raw.begin(), raw.end(), out.bytes.begin());
  return true;
}

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Device path node types (UEFI 2.10, section 10.3.1).
constexpr uint8_t kDpHardware = 0x01, kDpAcpi = 0x02, kDpMessaging = 0x03,
                  kDpMedia = 0x04, kDpEnd = 0x7F;
constexpr size_t kMaxDevicePathNodes = 64;

std::string NodeToText(uint8_t type, uint8_t subtype, ByteSpan body) {
  ByteReader in(body);
  if (type == kDpHardware && subtype == 0x01) {  // PCI (10.3.2.1)
    uint8_t function = 0, device = 0;
    if (in.ReadU8(function) && in.ReadU8(device)) {
      return absl::StrFormat("Pci(0x%x,0x%x)", device, function);
    }
  } else if (type == kDpAcpi && subtype == 0x01) {  // ACPI (10.3.3)
    uint32_t hid = 0, uid = 0;
    if (in.ReadU32(hid) && in.ReadU32(uid)) {
      if (hid == 0x0A0341D0) return absl::StrFormat("PciRoot(0x%x)", uid);
      return absl::StrFormat("Acpi(0x%08x,0x%x)", hid, uid);
    }
  } else if (type == kDpMessaging && subtype == 0x12) {  // SATA (10.3.4.6)
    uint16_t port = 0, multiplier = 0, lun = 0;
    if (in.ReadU16(port) && in.ReadU16(multiplier) && in.ReadU16(lun)) {
      return absl::StrFormat("Sata(0x%x,0x%x,0x%x)", port, multiplier, lun);
    }
  } else if (type == kDpMessaging && subtype == 0x17) {  // NVMe (10.3.4.21)
    uint32_t nsid = 0;
    if (in.ReadU32(nsid)) return absl::StrFormat("NVMe(0x%x)", nsid);
  } else if (type == kDpMedia && subtype == 0x01) {  // Hard drive (10.3.5.1)
    uint32_t number = 0;
    uint64_t start = 0, size = 0;
    Guid signature;
    uint8_t mbr_type = 0, signature_type = 0;
    if (in.ReadU32(number) && in.ReadU64(start) && in.ReadU64(size) &&
        ReadGuid(in, signature) && in.ReadU8(mbr_type) &&
        in.ReadU8(signature_type)) {
      std::string sig =
          signature_type == 2
              ? absl::StrCat("GPT,", signature.ToString())
              : absl::StrFormat("MBR,0x%02x%02x%02x%02x", signature.bytes[3],
                                signature.bytes[2], signature.bytes[1],
                                signature.bytes[0]);
      return absl::StrFormat("HD(%d,%s,0x%x,0x%x)", number, sig, start, size);
    }
  } else if (type == kDpMedia && subtype == 0x04) {  // File path (10.3.5.4)
    return Ucs2ToUtf8(body);
  } else if (type == kDpMedia && (subtype == 0x06 || subtype == 0x07)) {
    // PIWG firmware file / volume (UEFI PI 1.9 Vol 2, sections 8.2, 8.3).
    Guid name;
    if (ReadGuid(in, name)) {
      return absl::StrCat(subtype == 0x06 ? "FvFile(" : "FvVol(",
                          name.ToString(), ")");
    }
  }
  return absl::StrFormat("Path(%d,%d)", type, subtype);
}

std::string SignatureTypeName(const Guid& type) {
  if (type == kEfiCertX509) return "X509";
  if (type == kEfiCertSha256) return "SHA256";
  return type.ToString();
}

// EFI_LOAD_OPTION (UEFI 2.10, section 3.1.3) of a Boot#### variable:
// Attributes, FilePathListLength, Description (CHAR16, NUL-terminated),
// FilePathList. "" if it does not decode.
std::string DescribeLoadOption(ByteSpan data) {
  ByteReader in(data);
  uint32_t attributes = 0;
  uint16_t path_length = 0;
  if (!in.ReadU32(attributes) || !in.ReadU16(path_length)) return "";
  size_t end = 0;  // CHAR16 units up to and including the NUL.
  ByteSpan rest = in.Rest();
  while (end + 1 < rest.size() && (rest[end] != 0 || rest[end + 1] != 0)) {
    end += 2;
  }
  ByteSpan description, path;
  if (!in.ReadSpan(end + 2, description) || !in.ReadSpan(path_length, path)) {
    return "";
  }
  absl::StatusOr<std::string> text = DevicePathToText(path);
  return absl::StrCat("\"", EventText(AsBytes(Ucs2ToUtf8(description))), "\" ",
                      text.ok() ? *text : "(bad device path)");
}

std::string DescribeVariable(const Event& event) {
  absl::StatusOr<EfiVariable> var = DecodeEfiVariable(event.data);
  if (!var.ok()) return absl::StrCat("undecodable: ", var.status().message());
  std::string out = absl::StrCat(var->name, " (", var->vendor.ToString(), ")");
  if (var->name == "SecureBoot" || var->name == "MokListTrusted") {
    bool on = var->data.size() == 1 && var->data[0] == 1;
    return absl::StrCat(out, ": ", on ? "enabled" : "disabled");
  }
  if (var->name == "BootOrder" && var->data.size() % 2 == 0) {
    std::vector<std::string> order;
    ByteReader in(var->data);
    for (uint16_t n = 0; in.ReadU16(n);) {
      order.push_back(absl::StrFormat("%04X", n));
    }
    return absl::StrCat(out, ": ", absl::StrJoin(order, ","));
  }
  if (event.type != kEvEfiVariableDriverConfig &&
      absl::StartsWith(var->name, "Boot")) {
    std::string option = DescribeLoadOption(var->data);
    if (!option.empty()) return absl::StrCat(out, ": ", option);
  }
  if (var->name == "PK" || var->name == "KEK" || var->name == "db" ||
      var->name == "dbx" || var->name == "vendor_db") {
    absl::StatusOr<std::vector<EfiSignatureList>> lists =
        DecodeSignatureLists(var->data);
    if (lists.ok()) {
      std::vector<std::string> parts;
      for (const EfiSignatureList& list : *lists) {
        parts.push_back(absl::StrCat(list.signatures.size(), " ",
                                     SignatureTypeName(list.type)));
      }
      if (parts.empty()) return absl::StrCat(out, ": empty");
      return absl::StrCat(out, ": ", absl::StrJoin(parts, ", "));
    }
  }
  return absl::StrCat(out, ": ", var->data.size(), " bytes");
}

std::string DescribeImage(const Event& event) {
  absl::StatusOr<ImageLoadEvent> image = DecodeImageLoadEvent(event.data);
  if (!image.ok()) {
    return absl::StrCat("undecodable: ", image.status().message());
  }
  absl::StatusOr<std::string> path = DevicePathToText(image->device_path);
  if (!path.ok()) {
    return absl::StrCat("device path undecodable: ", path.status().message());
  }
  return path->empty() ? "(no device path)" : *path;
}

// UEFI_GPT_DATA (PFP 1.05, section 10.2.5): the 92-byte
// EFI_PARTITION_TABLE_HEADER (UEFI 2.10, section 5.3.2; disk GUID at 56),
// then NumberOfPartitions (UINT64) and the entries.
std::string DescribeGpt(ByteSpan data) {
  constexpr size_t kHeaderSize = 92, kDiskGuidAt = 56;
  ByteReader in(data);
  ByteSpan header;
  uint64_t partitions = 0;
  if (!in.ReadSpan(kHeaderSize, header) || !in.ReadU64(partitions) ||
      std::memcmp(header.data(), "EFI PART", 8) != 0) {
    return absl::StrCat(data.size(), " bytes");
  }
  Guid disk;
  std::copy(header.begin() + kDiskGuidAt, header.begin() + kDiskGuidAt + 16,
            disk.bytes.begin());
  return absl::StrCat("GPT disk ", disk.ToString(), ", ", partitions,
                      " partitions");
}

// UEFI_PLATFORM_FIRMWARE_BLOB (PFP 1.05, section 10.2.4).
std::string DescribeBlob(ByteSpan data) {
  ByteReader in(data);
  uint64_t base = 0, length = 0;
  if (data.size() == 16 && in.ReadU64(base) && in.ReadU64(length)) {
    return absl::StrFormat("base 0x%x length 0x%x", base, length);
  }
  return EventText(data);
}

}  // namespace

const Guid kEfiGlobalVariable =
    MakeGuid(0x8BE4DF61, 0x93CA, 0x11D2,
             {0xAA, 0x0D, 0x00, 0xE0, 0x98, 0x03, 0x2B, 0x8C});
const Guid kEfiImageSecurityDatabase =
    MakeGuid(0xD719B2CB, 0x3D3A, 0x4596,
             {0xA3, 0xBC, 0xDA, 0xD0, 0x0E, 0x67, 0x65, 0x6F});
const Guid kEfiCertSha256 =
    MakeGuid(0xC1C41626, 0x504C, 0x4092,
             {0xAC, 0xA9, 0x41, 0xF9, 0x36, 0x93, 0x43, 0x28});
const Guid kEfiCertX509 =
    MakeGuid(0xA5C059A1, 0x94E4, 0x4AA7,
             {0x87, 0xB5, 0xAB, 0x15, 0x5C, 0x2B, 0xF0, 0x72});
const Guid kShimLock =
    MakeGuid(0x605DAB50, 0xE046, 0x4300,
             {0xAB, 0xB6, 0x3D, 0xD8, 0x10, 0xDD, 0x8B, 0x23});

std::string Guid::ToString() const {
  const auto& b = bytes;
  return absl::StrFormat(
      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
      b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11],
      b[12], b[13], b[14], b[15]);
}

std::string Guid::ToLegacyString() const {
  const auto& b = bytes;
  return absl::StrFormat(
      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
      b[12], b[13], b[14], b[15]);
}

bool Guid::Matches(absl::string_view text) const {
  std::string lower = absl::AsciiStrToLower(text);
  return lower == ToString() || lower == ToLegacyString();
}

absl::StatusOr<Guid> ParseGuid(absl::string_view text) {
  // 8-4-4-4-12 hex digits.
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' ||
      text[18] != '-' || text[23] != '-') {
    return absl::InvalidArgumentError("GUID is not in 8-4-4-4-12 form");
  }
  std::string hex;
  for (char c : text) {
    if (c != '-') hex.push_back(c);
  }
  absl::StatusOr<Bytes> raw = HexDecode(hex);
  if (!raw.ok() || raw->size() != 16) {  // A "0x" prefix leaves 15 bytes.
    return absl::InvalidArgumentError("GUID has a non-hex digit");
  }
  const Bytes& r = *raw;
  // Registry order -> memory order (Data1..3 little endian).
  Guid g;
  const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  for (int i = 0; i < 16; ++i) g.bytes[i] = r[order[i]];
  return g;
}

std::string Ucs2ToUtf8(ByteSpan data) {
  std::string out;
  ByteReader in(data);
  uint16_t unit = 0;
  while (in.ReadU16(unit) && unit != 0) {
    uint32_t cp = unit;
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      ByteReader peek = in;
      uint16_t low = 0;
      if (peek.ReadU16(low) && low >= 0xDC00 && low <= 0xDFFF) {
        in = peek;
        cp = 0x10000 + ((unit - 0xD800u) << 10) + (low - 0xDC00u);
      } else {
        cp = 0xFFFD;
      }
    } else if (unit >= 0xDC00 && unit <= 0xDFFF) {
      cp = 0xFFFD;
    }
    AppendUtf8(cp, out);
  }
  return out;
}

std::string EventText(ByteSpan data) {
  size_t end = data.size();
  while (end > 0 && data[end - 1] == 0) --end;
  std::string out;
  out.reserve(end);
  for (size_t i = 0; i < end; ++i) {
    uint8_t c = data[i];
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += absl::StrFormat("\\x%02x", c);
    }
  }
  return out;
}

absl::StatusOr<EfiVariable> DecodeEfiVariable(ByteSpan event_data) {
  ByteReader in(event_data);
  EfiVariable var;
  uint64_t name_length = 0, data_length = 0;
  if (!ReadGuid(in, var.vendor) || !in.ReadU64(name_length) ||
      !in.ReadU64(data_length)) {
    return absl::InvalidArgumentError("UEFI_VARIABLE_DATA: truncated header");
  }
  ByteSpan name, data;
  // name_length counts CHAR16s; compare before multiplying.
  if (name_length > in.remaining() / 2 || !in.ReadSpan(name_length * 2, name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("UEFI_VARIABLE_DATA: UnicodeNameLength ", name_length,
                     " runs past the end"));
  }
  if (!in.ReadSpan(data_length, data)) {
    return absl::InvalidArgumentError(
        absl::StrCat("UEFI_VARIABLE_DATA: VariableDataLength ", data_length,
                     " runs past the end"));
  }
  if (!in.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "UEFI_VARIABLE_DATA: ", in.remaining(), " bytes after VariableData"));
  }
  var.name = Ucs2ToUtf8(name);
  var.data.assign(data.begin(), data.end());
  return var;
}

absl::StatusOr<std::vector<EfiSignatureList>> DecodeSignatureLists(
    ByteSpan data) {
  // EFI_SIGNATURE_LIST: SignatureType, SignatureListSize, SignatureHeaderSize,
  // SignatureSize, SignatureHeader, Signatures[] (UEFI 2.10, 32.4.1).
  constexpr uint32_t kListHeader = 16 + 4 + 4 + 4;
  constexpr uint32_t kOwnerSize = 16;
  std::vector<EfiSignatureList> lists;
  ByteReader in(data);
  while (!in.empty()) {
    size_t at = in.offset();
    EfiSignatureList list;
    uint32_t list_size = 0, header_size = 0, sig_size = 0;
    if (!ReadGuid(in, list.type) || !in.ReadU32(list_size) ||
        !in.ReadU32(header_size) || !in.ReadU32(sig_size)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "EFI_SIGNATURE_LIST at offset ", at, ": truncated header"));
    }
    uint64_t body = static_cast<uint64_t>(list_size);
    if (body < kListHeader + static_cast<uint64_t>(header_size) ||
        sig_size < kOwnerSize ||
        (body - kListHeader - header_size) % sig_size != 0 ||
        body - kListHeader > in.remaining()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "EFI_SIGNATURE_LIST at offset ", at, ": SignatureListSize ",
          list_size, ", SignatureHeaderSize ", header_size,
          " and SignatureSize ", sig_size, " do not fit"));
    }
    in.Skip(header_size);
    uint64_t count = (body - kListHeader - header_size) / sig_size;
    for (uint64_t i = 0; i < count; ++i) {
      EfiSignature sig;
      ByteSpan value;
      // Both reads fit: the list size was checked against what remains.
      ReadGuid(in, sig.owner);
      in.ReadSpan(sig_size - kOwnerSize, value);
      sig.data.assign(value.begin(), value.end());
      list.signatures.push_back(std::move(sig));
    }
    lists.push_back(std::move(list));
  }
  return lists;
}

absl::StatusOr<ImageLoadEvent> DecodeImageLoadEvent(ByteSpan event_data) {
  ByteReader in(event_data);
  ImageLoadEvent image;
  uint64_t path_length = 0;
  if (!in.ReadU64(image.location) || !in.ReadU64(image.length) ||
      !in.ReadU64(image.link_time_address) || !in.ReadU64(path_length)) {
    return absl::InvalidArgumentError(
        "UEFI_IMAGE_LOAD_EVENT: truncated header");
  }
  ByteSpan path;
  if (!in.ReadSpan(path_length, path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("UEFI_IMAGE_LOAD_EVENT: LengthOfDevicePath ", path_length,
                     " runs past the end"));
  }
  // Quirk: some firmware (edk2 in keylime's mb_log) leaves bytes after the
  // device path; they are not part of any field and are ignored.
  image.device_path.assign(path.begin(), path.end());
  return image;
}

absl::StatusOr<std::string> DevicePathToText(ByteSpan path) {
  std::vector<std::string> nodes;
  ByteReader in(path);
  while (!in.empty()) {
    size_t at = in.offset();
    uint8_t type = 0, subtype = 0;
    uint16_t length = 0;
    ByteSpan body;
    if (!in.ReadU8(type) || !in.ReadU8(subtype) || !in.ReadU16(length) ||
        length < 4 || !in.ReadSpan(length - 4, body)) {
      return absl::InvalidArgumentError(
          absl::StrCat("device path node at offset ", at, " has a bad length"));
    }
    if (type == kDpEnd) {
      if (subtype == 0xFF) break;  // End of entire path.
      nodes.push_back(",");        // End of this instance.
      continue;
    }
    if (nodes.size() >= kMaxDevicePathNodes) {
      nodes.push_back("...");
      break;
    }
    nodes.push_back(NodeToText(type, subtype, body));
  }
  return absl::StrJoin(nodes, "/");
}

std::string DescribeEventData(const Event& event) {
  switch (event.type) {
    case kEvNoAction:
      if (event.data.size() >= 16 && event.data[15] == 0) {
        std::string sig = EventText(ByteSpan(event.data).subspan(0, 16));
        if (sig == "StartupLocality" && event.data.size() == 17) {
          return absl::StrCat("StartupLocality ", event.data[16]);
        }
        return sig;
      }
      return absl::StrCat(event.data.size(), " bytes");
    case kEvSeparator:
      return absl::StrCat("0x", HexEncode(event.data));
    case kEvEfiAction:
    case kEvAction:
    case kEvIpl:
    case kEvEventTag:
      return EventText(event.data);
    case kEvSCrtmVersion:
      return Ucs2ToUtf8(event.data);
    case kEvPostCode:
    case kEvSCrtmContents:
    case kEvEfiPlatformFirmwareBlob:
      return DescribeBlob(event.data);
    case kEvEfiVariableDriverConfig:
    case kEvEfiVariableBoot:
    case kEvEfiVariableBoot2:
    case kEvEfiVariableAuthority:
      return DescribeVariable(event);
    case kEvEfiBootServicesApplication:
    case kEvEfiBootServicesDriver:
    case kEvEfiRuntimeServicesDriver:
      return DescribeImage(event);
    case kEvEfiGptEvent:
    case kEvEfiGptEvent2:
      return DescribeGpt(event.data);
    default:
      return absl::StrCat(event.data.size(), " bytes");
  }
}

}  // namespace vouch::core::boot
