// UEFI structure decoders on real event data and on hostile bytes.
#include "core/boot/efi.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/match.h"
#include "boot/test_data.h"

namespace vouch::core::boot {
namespace {

using testing::MustParse;
using testing::ReadTestLog;

const Event& FindEvent(const EventLog& log, uint32_t type,
                       const std::string& described) {
  for (const Event& e : log.events) {
    if (e.type == type && absl::StrContains(DescribeEventData(e), described)) {
      return e;
    }
  }
  FAIL("no such event: " << described);
  return log.events[0];
}

TEST_CASE("boot: GUIDs print in registry and legacy byte order", "[core]") {
  CHECK(kEfiGlobalVariable.ToString() ==
        "8be4df61-93ca-11d2-aa0d-00e098032b8c");
  CHECK(kEfiGlobalVariable.ToLegacyString() ==
        "61dfe48b-ca93-d211-aa0d-00e098032b8c");
  CHECK(kEfiGlobalVariable.Matches("8BE4DF61-93CA-11D2-AA0D-00E098032B8C"));
  CHECK(kEfiGlobalVariable.Matches("61dfe48b-ca93-d211-aa0d-00e098032b8c"));
  CHECK_FALSE(kEfiGlobalVariable.Matches(kEfiCertX509.ToString()));
  absl::StatusOr<Guid> parsed =
      ParseGuid("d719b2cb-3d3a-4596-a3bc-dad00e67656f");
  REQUIRE(parsed.ok());
  CHECK(*parsed == kEfiImageSecurityDatabase);
  CHECK_FALSE(ParseGuid("d719b2cb3d3a-4596-a3bc-dad00e67656f0").ok());
  CHECK_FALSE(ParseGuid("g719b2cb-3d3a-4596-a3bc-dad00e67656f").ok());
  CHECK_FALSE(ParseGuid("").ok());
}

TEST_CASE("boot: variables, signature lists and device paths of a real log",
          "[core]") {
  EventLog log =
      MustParse(ReadTestLog("keylime/binary_bios_measurements-secureboot"));
  const Event& sb = FindEvent(log, kEvEfiVariableDriverConfig, "SecureBoot");
  absl::StatusOr<EfiVariable> var = DecodeEfiVariable(sb.data);
  REQUIRE(var.ok());
  CHECK(var->vendor == kEfiGlobalVariable);
  CHECK(var->data == Bytes{1});
  CHECK(DescribeEventData(sb) ==
        "SecureBoot (8be4df61-93ca-11d2-aa0d-00e098032b8c): enabled");

  const Event& dbx = FindEvent(log, kEvEfiVariableDriverConfig, "dbx");
  absl::StatusOr<EfiVariable> dbx_var = DecodeEfiVariable(dbx.data);
  REQUIRE(dbx_var.ok());
  absl::StatusOr<std::vector<EfiSignatureList>> lists =
      DecodeSignatureLists(dbx_var->data);
  REQUIRE(lists.ok());
  REQUIRE(lists->size() == 1);
  CHECK((*lists)[0].type == kEfiCertSha256);
  CHECK((*lists)[0].signatures.size() == 371);
  CHECK((*lists)[0].signatures[0].data.size() == 32);

  const Event& shim =
      FindEvent(log, kEvEfiBootServicesApplication, "shimx64.efi");
  CHECK(DescribeEventData(shim) ==
        "PciRoot(0x0)/Pci(0x2,0x3)/Pci(0x0,0x0)/"
        "HD(1,GPT,a88ed452-9a52-45c4-91ce-3da7707caaab,0x800,0x12c000)/"
        "\\EFI\\redhat\\shimx64.efi");

  CHECK(DescribeEventData(log.events[15]) ==
        "BootOrder (8be4df61-93ca-11d2-aa0d-00e098032b8c): 0001,0002,0000");
  CHECK(DescribeEventData(log.events[16]) ==
        "Boot0001 (8be4df61-93ca-11d2-aa0d-00e098032b8c): \"Red Hat "
        "Enterprise Linux\" HD(1,GPT,a88ed452-9a52-45c4-91ce-3da7707caaab,"
        "0x800,0x12c000)/\\EFI\\redhat\\shimx64.efi");

  CHECK(DescribeEventData(log.events[28]) ==
        "GPT disk a8d60e59-43a9-4968-b0c2-3cf775e007b2, 3 partitions");

  const Event& action = FindEvent(log, kEvEfiAction, "Calling");
  CHECK(DescribeEventData(action) ==
        "Calling EFI Application from Boot Option");
}

TEST_CASE("boot: firmware volume paths decode", "[core]") {
  EventLog log = MustParse(ReadTestLog("keylime/binary_bios_measurements"));
  const Event& app = FindEvent(log, kEvEfiBootServicesApplication, "FvVol");
  CHECK(DescribeEventData(app) ==
        "FvVol(8fc151ae-c96f-4bc9-8c33-107992c7735b)/"
        "FvFile(821aca26-29ea-4993-839f-597fc021708d)");
}

TEST_CASE("boot: UEFI_VARIABLE_DATA lengths are checked before use", "[core]") {
  Bytes header(16 + 8 + 8, 0);
  SECTION("huge name length") {
    Bytes b = header;
    for (int i = 0; i < 8; ++i) b[16 + i] = 0xFF;  // 2^64-1 CHAR16s.
    absl::StatusOr<EfiVariable> v = DecodeEfiVariable(b);
    REQUIRE_FALSE(v.ok());
    CHECK(absl::StrContains(v.status().message(), "UnicodeNameLength"));
  }
  SECTION("data length past the end") {
    Bytes b = header;
    b[24] = 1;
    absl::StatusOr<EfiVariable> v = DecodeEfiVariable(b);
    REQUIRE_FALSE(v.ok());
    CHECK(absl::StrContains(v.status().message(), "VariableDataLength"));
  }
  SECTION("trailing bytes") {
    Bytes b = header;
    b.push_back(0);
    CHECK_FALSE(DecodeEfiVariable(b).ok());
  }
  SECTION("truncated header") {
    CHECK_FALSE(DecodeEfiVariable(Bytes(10, 0)).ok());
  }
  SECTION("empty name and data are fine") {
    absl::StatusOr<EfiVariable> v = DecodeEfiVariable(header);
    REQUIRE(v.ok());
    CHECK(v->name.empty());
  }
}

TEST_CASE("boot: EFI_SIGNATURE_LIST sizes must fit", "[core]") {
  auto list = [](uint32_t list_size, uint32_t header, uint32_t sig) {
    Bytes b(16, 0);
    for (uint32_t v : {list_size, header, sig}) {
      for (int i = 0; i < 4; ++i)
        b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    }
    return b;
  };
  CHECK(DecodeSignatureLists({}).ok());
  Bytes good = list(28 + 48, 0, 48);
  good.resize(28 + 48, 0x22);
  absl::StatusOr<std::vector<EfiSignatureList>> ok = DecodeSignatureLists(good);
  REQUIRE(ok.ok());
  CHECK((*ok)[0].signatures.size() == 1);
  CHECK((*ok)[0].signatures[0].data.size() == 32);

  Bytes too_long = list(28 + 48, 0, 48);  // Claims 48 more bytes; none.
  CHECK_FALSE(DecodeSignatureLists(too_long).ok());
  Bytes tiny_sig = list(28 + 8, 0, 8);
  tiny_sig.resize(36, 0);
  CHECK_FALSE(DecodeSignatureLists(tiny_sig).ok());
  Bytes uneven = list(28 + 50, 0, 48);
  uneven.resize(78, 0);
  CHECK_FALSE(DecodeSignatureLists(uneven).ok());
  Bytes header_overflow = list(28, 0xFFFFFFF0, 16);
  CHECK_FALSE(DecodeSignatureLists(header_overflow).ok());
  Bytes list_smaller_than_header = list(10, 0, 16);
  CHECK_FALSE(DecodeSignatureLists(list_smaller_than_header).ok());
  CHECK_FALSE(DecodeSignatureLists(Bytes(20, 0)).ok());
}

TEST_CASE("boot: device paths and image load events are bounded", "[core]") {
  CHECK_FALSE(DevicePathToText(Bytes{4, 4, 2, 0}).ok());  // length 2 < 4
  CHECK_FALSE(DevicePathToText(Bytes{4, 4, 9, 0}).ok());  // past the end
  CHECK(*DevicePathToText(Bytes{0x7F, 0xFF, 4, 0}) == "");
  CHECK(*DevicePathToText(Bytes{9, 9, 4, 0}) == "Path(9,9)");
  Bytes many;
  for (int i = 0; i < 1000; ++i) many.insert(many.end(), {9, 9, 4, 0});
  std::string text = *DevicePathToText(many);
  CHECK(absl::EndsWith(text, "/..."));
  CHECK(text.size() < 1000);

  Bytes image(24, 0);
  image.insert(image.end(), {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF});
  CHECK_FALSE(DecodeImageLoadEvent(image).ok());  // Path length 2^64-1.
  Bytes trailing(40, 0);  // Tolerated quirk: bytes after the path.
  CHECK(DecodeImageLoadEvent(trailing).ok());
  CHECK(DecodeImageLoadEvent(Bytes(32, 0)).ok());
  CHECK_FALSE(DecodeImageLoadEvent(Bytes(31, 0)).ok());
}

TEST_CASE("boot: strings are printed on one line", "[core]") {
  std::string raw = "grub_cmd: a\nb\\c\x01";
  raw.push_back('\0');
  CHECK(EventText(AsBytes(raw)) == "grub_cmd: a\\x0ab\\x5cc\\x01");
  // UCS-2: "Aé", an unpaired surrogate, then NUL and more.
  Bytes ucs2 = {'A', 0, 0xE9, 0, 0x00, 0xD8, 'B', 0, 0, 0, 'C', 0};
  CHECK(Ucs2ToUtf8(ucs2) ==
        "A\xC3\xA9\xEF\xBF\xBD"
        "B");
}

}  // namespace
}  // namespace vouch::core::boot
