// The boot policy: reference states learned from real logs accept those logs
// and reject tampered copies; malformed reference states are errors; an
// empty one rejects everything.
#include "core/boot/boot_policy.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boot/test_data.h"
#include "core/boot/efi.h"
#include "core/rule.h"

namespace vouch::core::boot {
namespace {

using testing::DataOffset;
using testing::DigestOffset;
using testing::MustParse;
using testing::ReadTestLog;
using testing::ReadTestText;

constexpr char kSecureBoot[] = "keylime/binary_bios_measurements-secureboot";

Verdict Check(const BootPolicy& policy, const Bytes& bytes) {
  EventLog log = MustParse(bytes);
  absl::StatusOr<PcrBanks> banks = Replay(log);
  REQUIRE(banks.ok());
  return policy.Evaluate(log, *banks);
}

BootPolicy Learn(const Bytes& bytes) {
  absl::StatusOr<std::string> json = CreateReferenceState(MustParse(bytes));
  INFO(json.status().ToString());
  REQUIRE(json.ok());
  absl::StatusOr<BootPolicy> policy = BootPolicy::FromJson(*json);
  INFO(policy.status().ToString());
  REQUIRE(policy.ok());
  return *std::move(policy);
}

// The reference state learned from `bytes`, as a JSON document to edit.
nlohmann::json LearnedJson(const Bytes& bytes) {
  absl::StatusOr<std::string> json = CreateReferenceState(MustParse(bytes));
  REQUIRE(json.ok());
  return nlohmann::json::parse(*json);
}

std::string Describe(const Verdict& v) {
  std::string out;
  for (const Failure& f : v.failures()) {
    absl::StrAppend(&out, RuleName(f.rule), ": ", f.detail, "\n");
  }
  return out;
}

bool HasFailure(const Verdict& v, Rule rule, const std::string& fragment) {
  for (const Failure& f : v.failures()) {
    if (f.rule == rule && absl::StrContains(f.detail, fragment)) return true;
  }
  return false;
}

const Event& FindEvent(const EventLog& log, uint32_t pcr, uint32_t type,
                       const std::string& described = "") {
  for (const Event& e : log.events) {
    if (e.pcr == pcr && e.type == type &&
        absl::StrContains(DescribeEventData(e), described)) {
      return e;
    }
  }
  FAIL("no such event");
  return log.events[0];
}

TEST_CASE("boot: a policy learned from a log accepts that log", "[core]") {
  for (const char* name : {kSecureBoot, "keylime/mb_log.b64",
                           "keylime/binary_bios_measurements"}) {
    INFO(name);
    Bytes bytes = ReadTestLog(name);
    Verdict v = Check(Learn(bytes), bytes);
    INFO(Describe(v));
    CHECK(v.passed());
  }
}

TEST_CASE("boot: a learned policy rejects the log with one thing changed",
          "[core]") {
  Bytes bytes = ReadTestLog(kSecureBoot);
  BootPolicy policy = Learn(bytes);
  EventLog log = MustParse(bytes);
  Bytes tampered = bytes;

  SECTION("the kernel's Authenticode digest") {
    const Event& kernel = log.events[93];
    REQUIRE(kernel.type == kEvEfiBootServicesApplication);
    tampered[DigestOffset(log, kernel, kAlgSha256) + 5] ^= 0x01;
    Verdict v = Check(policy, tampered);
    INFO(Describe(v));
    CHECK_FALSE(v.passed());
    CHECK(HasFailure(v, Rule::kBootKernels,
                     "event 93 (PCR 4, EV_EFI_BOOT_SERVICES_APPLICATION)"));
    CHECK(HasFailure(v, Rule::kBootKernels, "is not kernel_authcode_sha256"));
  }
  SECTION("one db certificate byte") {
    const Event& db = FindEvent(log, 7, kEvEfiVariableDriverConfig, "db (");
    // Inside the first certificate: past the UEFI_VARIABLE_DATA header,
    // the name, the list header and the owner GUID.
    size_t at = DataOffset(log, db) + 32 + 4 + 28 + 16 + 200;
    tampered[at] ^= 0x01;
    Verdict v = Check(policy, tampered);
    INFO(Describe(v));
    CHECK_FALSE(v.passed());
    CHECK(HasFailure(v, Rule::kBootDb, "event 7 (PCR 7"));
    CHECK(HasFailure(v, Rule::kBootEventDigest, "event 7 (PCR 7"));
  }
  SECTION("the SecureBoot variable") {
    const Event& sb =
        FindEvent(log, 7, kEvEfiVariableDriverConfig, "SecureBoot");
    size_t at = DataOffset(log, sb) + sb.data.size() - 1;
    REQUIRE(tampered[at] == 1);
    tampered[at] = 0;
    Verdict v = Check(policy, tampered);
    INFO(Describe(v));
    CHECK_FALSE(v.passed());
    CHECK(HasFailure(v, Rule::kBootSecureboot, "event 4 (PCR 7"));
    CHECK(HasFailure(v, Rule::kBootSecureboot, "SecureBoot is disabled"));
  }
  SECTION("the kernel command line text (digest unchanged)") {
    const Event& cmdline = FindEvent(log, 8, kEvIpl, "kernel_cmdline");
    tampered[DataOffset(log, cmdline) + 30] ^= 0x01;
    Verdict v = Check(policy, tampered);
    INFO(Describe(v));
    CHECK_FALSE(v.passed());
    CHECK(HasFailure(v, Rule::kBootEventDigest, "event 94 (PCR 8, EV_IPL)"));
    CHECK(HasFailure(v, Rule::kBootKernels, "does not match kernel_cmdline"));
  }
  SECTION("the initrd digest") {
    const Event& initrd = FindEvent(log, 9, kEvIpl, "initramfs");
    tampered[DigestOffset(log, initrd, kAlgSha256)] ^= 0x01;
    Verdict v = Check(policy, tampered);
    CHECK(HasFailure(v, Rule::kBootKernels, "is not initrd_plain_sha256"));
  }
  SECTION("the db certificate that verified shim (authority event)") {
    const Event& authority = log.events[27];
    REQUIRE(authority.type == kEvEfiVariableAuthority);
    tampered[DataOffset(log, authority) + 32 + 4 + 16 + 100] ^= 0x01;
    Verdict v = Check(policy, tampered);
    CHECK(HasFailure(v, Rule::kBootDb,
                     "event 27 (PCR 7, EV_EFI_VARIABLE_AUTHORITY)"));
    CHECK(HasFailure(v, Rule::kBootEventDigest, "event 27 (PCR 7"));
  }
  SECTION("a dbx entry") {
    const Event& dbx = FindEvent(log, 7, kEvEfiVariableDriverConfig, "dbx");
    // The first SHA-256 entry: past the header, the name "dbx", the list
    // header and the owner.
    tampered[DataOffset(log, dbx) + 32 + 6 + 28 + 16] ^= 0x01;
    Verdict v = Check(policy, tampered);
    CHECK(HasFailure(v, Rule::kBootDbx, "dbx lacks the required entry"));
  }
  SECTION("an event moved to a PCR the policy does not expect") {
    tampered[log.events[28].offset] = 11;  // GPT event: PCR 5 -> 11.
    Verdict v = Check(policy, tampered);
    CHECK(HasFailure(v, Rule::kBootEventUnexpected, "event 28 (PCR 11"));
  }
  SECTION("a second partition table or SecureBoot variable") {
    for (size_t n : {28, 4}) {
      const Event& e = log.events[n];
      size_t end =
          n + 1 < log.events.size() ? log.events[n + 1].offset : bytes.size();
      tampered.insert(tampered.end(), bytes.begin() + e.offset,
                      bytes.begin() + end);
    }
    Verdict v = Check(policy, tampered);
    CHECK(HasFailure(v, Rule::kBootEventRepeated, "event 99 (PCR 5"));
    CHECK(HasFailure(v, Rule::kBootEventRepeated, "SecureBoot appears again"));
  }
  SECTION("a separator with an error value") {
    const Event& sep = log.events[9];
    REQUIRE(sep.type == kEvSeparator);
    tampered[DataOffset(log, sep)] = 1;
    Verdict v = Check(policy, tampered);
    CHECK(HasFailure(v, Rule::kBootSeparator, "event 9 (PCR 7"));
  }
  SECTION("the MokList digest") {
    const Event& mok = FindEvent(log, 14, kEvIpl, "MokList");
    tampered[DigestOffset(log, mok, kAlgSha256)] ^= 0x80;
    Verdict v = Check(policy, tampered);
    CHECK(HasFailure(v, Rule::kBootMokdig, "event 30 (PCR 14, EV_IPL)"));
  }
  SECTION("the firmware") {
    tampered[DigestOffset(log, log.events[2], kAlgSha256)] ^= 0x01;
    Verdict v = Check(policy, tampered);
    CHECK(HasFailure(v, Rule::kBootScrtmAndBios,
                     "event 2 (PCR 0, EV_EFI_PLATFORM_FIRMWARE_BLOB)"));
  }
}

// The policy learned from the Lenovo log (no Secure Boot, a firmware-volume
// application) judging that log with one event's SHA-256 digest flipped.
Verdict LenovoWithDigestFlipped(uint32_t pcr, uint32_t type,
                                const std::string& described) {
  Bytes bytes = ReadTestLog("keylime/binary_bios_measurements");
  EventLog log = MustParse(bytes);
  const Event& e = FindEvent(log, pcr, type, described);
  Bytes tampered = bytes;
  tampered[DigestOffset(log, e, kAlgSha256)] ^= 0x01;
  return Check(Learn(bytes), tampered);
}

TEST_CASE("boot: firmware applications are pinned by firmware_apps", "[core]") {
  Verdict v =
      LenovoWithDigestFlipped(4, kEvEfiBootServicesApplication, "FvVol");
  CHECK(HasFailure(v, Rule::kBootFirmwareApps, "event 26 (PCR 4"));
}

TEST_CASE("boot: without Secure Boot the vmlinuz digest is pinned", "[core]") {
  Verdict v = LenovoWithDigestFlipped(9, kEvIpl, "/vmlinuz");
  CHECK(HasFailure(v, Rule::kBootKernels, "is not vmlinuz_plain_sha256"));
}

TEST_CASE("boot: an empty reference state rejects everything", "[core]") {
  absl::StatusOr<BootPolicy> policy = BootPolicy::FromJson("{}");
  REQUIRE(policy.ok());
  CHECK(policy->empty());
  CHECK(policy->UsedPcrs().empty());
  for (const std::string& name : testing::GoodLogNames()) {
    INFO(name);
    Verdict v = Check(*policy, ReadTestLog(name));
    CHECK_FALSE(v.passed());
    CHECK(HasFailure(v, Rule::kBootRefstate, "empty"));
  }
}

TEST_CASE("boot: the pcrs map alone", "[core]") {
  Bytes bytes = ReadTestLog(kSecureBoot);
  EventLog log = MustParse(bytes);
  absl::StatusOr<PcrBanks> banks = Replay(log);
  REQUIRE(banks.ok());
  std::string pcr7 = HexEncode(banks->at(kAlgSha256).at(7));
  std::string zero(64, '0');
  absl::StatusOr<BootPolicy> good = BootPolicy::FromJson(
      R"({"pcrs": {"7": ["0x)" + std::string(64, 'a') + R"(", ")" + pcr7 +
      R"("], "11": [")" + zero + R"("]}})");
  REQUIRE(good.ok());
  CHECK(good->UsedPcrs() == std::set<uint32_t>{7, 11});
  CHECK(Check(*good, bytes).passed());

  absl::StatusOr<BootPolicy> bad =
      BootPolicy::FromJson(R"({"pcrs": {"7": [")" + zero + R"("]}})");
  REQUIRE(bad.ok());
  Verdict v = Check(*bad, bytes);
  CHECK_FALSE(v.passed());
  CHECK(HasFailure(v, Rule::kBootPcrs, "sha256 PCR 7 replays to " + pcr7));

  absl::StatusOr<BootPolicy> sha1 =
      BootPolicy::FromJson(R"({"pcr_bank": "sha1", "pcrs": {"7": [")" +
                           std::string(40, '0') + R"("]}})");
  REQUIRE(sha1.ok());
  CHECK(HasFailure(Check(*sha1, bytes), Rule::kBootPcrs, "no sha1 bank"));
}

TEST_CASE("boot: Keylime's example reference state loads and judges",
          "[core]") {
  absl::StatusOr<BootPolicy> policy = BootPolicy::FromJson(
      ReadTestText("keylime/example_reference_state.json"));
  INFO(policy.status().ToString());
  REQUIRE(policy.ok());
  CHECK(policy->UsedPcrs() ==
        std::set<uint32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14});
  // It describes another machine: our Secure Boot log fails it, with
  // reasons, and the legacy-order GUIDs it carries are understood (no
  // failure complains about an owner GUID form).
  Verdict v = Check(*policy, ReadTestLog(kSecureBoot));
  INFO(Describe(v));
  CHECK_FALSE(v.passed());
  CHECK(HasFailure(v, Rule::kBootScrtmAndBios, "is not scrtm"));
  CHECK(HasFailure(v, Rule::kBootPk, "is not in the reference state's pk"));
}

TEST_CASE("boot: legacy-order owner GUIDs match", "[core]") {
  Bytes bytes = ReadTestLog(kSecureBoot);
  nlohmann::json doc = LearnedJson(bytes);
  for (const char* key : {"pk", "kek", "db", "dbx"}) {
    for (auto& sig : doc[key]) {
      absl::StatusOr<Guid> g =
          ParseGuid(sig["SignatureOwner"].get<std::string>());
      REQUIRE(g.ok());
      sig["SignatureOwner"] = g->ToLegacyString();
    }
  }
  absl::StatusOr<BootPolicy> policy = BootPolicy::FromJson(doc.dump());
  REQUIRE(policy.ok());
  CHECK(Check(*policy, bytes).passed());
}

TEST_CASE("boot: malformed reference states are errors naming the field",
          "[core]") {
  Bytes bytes = ReadTestLog(kSecureBoot);
  nlohmann::json base = LearnedJson(bytes);

  auto expect = [](const std::string& text, const std::string& fragment) {
    absl::StatusOr<BootPolicy> p = BootPolicy::FromJson(text);
    INFO(fragment);
    REQUIRE_FALSE(p.ok());
    CHECK(p.status().code() == absl::StatusCode::kInvalidArgument);
    INFO(p.status().message());
    CHECK(absl::StrContains(p.status().message(), fragment));
  };
  expect("", "not valid JSON");
  expect("[]", "not a JSON object");
  expect(R"({"pk": []})", "scrtm_and_bios: is missing");
  expect(R"({"colour": 1})", "colour: is not a known field");
  expect(R"({"pcrs": {"24": ["00"]}})", "pcrs.24");
  expect(R"({"pcrs": {"7": ["00"]}})", "pcrs.7[0]: has 1 bytes, not 32");
  expect(R"({"pcr_bank": "md5"})", "pcr_bank");

  nlohmann::json doc = base;
  doc.erase("dbx");
  expect(doc.dump(), "dbx: is missing");
  // One field of the learned state replaced (JSON pointer -> value).
  struct Edit {
    const char* pointer;
    nlohmann::json value;
    const char* fragment;
  };
  const Edit edits[] = {
      {"/kernels/0/kernel_cmdline", "(unclosed",
       "kernels[0].kernel_cmdline: is not an RE2 pattern"},
      {"/kernels/0/initrd_plain_sha256", "0xzz",
       "kernels[0].initrd_plain_sha256"},
      {"/kernels/0/extra", "x", "kernels[0].extra: is not a known field"},
      {"/db/0/SignatureOwner", "not-a-guid",
       "db[0].SignatureOwner: is not a GUID"},
      {"/mokdig/0",
       {{"sha3", "0x00"}},
       "mokdig[0].sha3: is not a known hash algorithm"},
      {"/has_secureboot", "yes", "has_secureboot: is not a boolean"},
      {"/scrtm_and_bios/0/scrtm", nlohmann::json::object(),
       "scrtm_and_bios[0].scrtm"},
  };
  for (const Edit& edit : edits) {
    nlohmann::json edited = base;
    edited[nlohmann::json::json_pointer(edit.pointer)] = edit.value;
    expect(edited.dump(), edit.fragment);
  }
  expect(std::string(kMaxReferenceStateBytes + 1, ' '), "exceeds the limit");
  // Deep nesting within the size bound neither overflows the stack nor
  // passes.
  const size_t depth = 1000000;
  expect(
      R"({"pcrs": )" + std::string(depth, '[') + std::string(depth, ']') + "}",
      "pcrs: is not an object");
  expect(std::string(depth, '['), "not valid JSON");
}

TEST_CASE("boot: an empty kernels or scrtm_and_bios list allows nothing",
          "[core]") {
  Bytes bytes = ReadTestLog(kSecureBoot);
  nlohmann::json doc = LearnedJson(bytes);
  doc["kernels"] = nlohmann::json::array();
  doc["scrtm_and_bios"] = nlohmann::json::array();
  absl::StatusOr<BootPolicy> policy = BootPolicy::FromJson(doc.dump());
  REQUIRE(policy.ok());
  Verdict v = Check(*policy, bytes);
  CHECK(HasFailure(v, Rule::kBootKernels, "allows nothing"));
  CHECK(HasFailure(v, Rule::kBootScrtmAndBios, "allows nothing"));
}

TEST_CASE("boot: a second kernels entry is an alternative", "[core]") {
  Bytes bytes = ReadTestLog(kSecureBoot);
  nlohmann::json doc = LearnedJson(bytes);
  nlohmann::json other = doc["kernels"][0];
  other["kernel_cmdline"] = "something else";
  doc["kernels"] = {other, doc["kernels"][0]};
  absl::StatusOr<BootPolicy> policy = BootPolicy::FromJson(doc.dump());
  REQUIRE(policy.ok());
  CHECK(Check(*policy, bytes).passed());
  doc["kernels"] = {other};
  policy = BootPolicy::FromJson(doc.dump());
  REQUIRE(policy.ok());
  CHECK(
      HasFailure(Check(*policy, bytes), Rule::kBootKernels,
                 "kernels[0]: event 94 (PCR 8, EV_IPL): kernel command line"));
}

TEST_CASE("boot: learning needs a complete boot chain", "[core]") {
  auto cannot = [](const char* name, const std::string& fragment) {
    absl::StatusOr<std::string> json =
        CreateReferenceState(MustParse(ReadTestLog(name)));
    REQUIRE_FALSE(json.ok());
    INFO(json.status().message());
    CHECK(absl::StrContains(json.status().message(), fragment));
  };
  cannot("go-attestation/short_no_action_eventlog", "no sha256 bank");
  cannot("go-attestation/crypto_agile_eventlog", "no initrd on PCR 9");
}

}  // namespace
}  // namespace vouch::core::boot

namespace vouch::core::boot {
namespace {

TEST_CASE("boot: VerifyBootLog ties quote, replay and policy together",
          "[core]") {
  Bytes bytes = testing::ReadTestLog(kSecureBoot);
  BootPolicy policy = Learn(bytes);
  absl::StatusOr<PcrBanks> banks = Replay(testing::MustParse(bytes));
  REQUIRE(banks.ok());
  PcrValues quoted = banks->at(kAlgSha256);

  absl::StatusOr<Verdict> ok = VerifyBootLog(bytes, kAlgSha256, quoted, policy);
  REQUIRE(ok.ok());
  CHECK(ok->passed());

  PcrValues other = quoted;
  other[4][0] ^= 1;  // The quote disagrees with the log about PCR 4.
  absl::StatusOr<Verdict> bad = VerifyBootLog(bytes, kAlgSha256, other, policy);
  REQUIRE(bad.ok());
  CHECK_FALSE(bad->passed());
  CHECK(HasFailure(*bad, Rule::kBootPcrQuote, "sha256 PCR 4"));

  // A quote of a bank the log lacks proves nothing.
  absl::StatusOr<Verdict> sha1 = VerifyBootLog(bytes, kAlgSha1, quoted, policy);
  REQUIRE(sha1.ok());
  CHECK_FALSE(sha1->passed());

  Bytes truncated(bytes.begin(), bytes.begin() + 1000);
  absl::StatusOr<Verdict> cannot =
      VerifyBootLog(truncated, kAlgSha256, quoted, policy);
  CHECK(cannot.status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vouch::core::boot
