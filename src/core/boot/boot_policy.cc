#include "core/boot/boot_policy.h"

#include <re2/re2.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "core/boot/digest.h"
#include "core/boot/efi.h"
#include "core/rule.h"

namespace vouch::core::boot {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// One allowed digest: hash algorithm -> value ({"sha256": "0x..."}).
using DigestSpec = std::map<uint16_t, Bytes>;

struct SignatureSpec {
  std::string owner;  // GUID text as given (lower case), for messages.
  // The owner read in registry order, and read as tpm2-tools < 5.2 printed
  // it (memory order); a log's owner matches either (Keylime issue 1003).
  Guid registry, legacy;
  Bytes data;

  bool Matches(const Guid& log_owner, const Bytes& log_data) const {
    return data == log_data && (log_owner == registry || log_owner == legacy);
  }
};

struct KernelSpec {
  Bytes shim, grub, initrd;
  std::optional<Bytes> kernel;   // Secure Boot: kernel Authenticode digest.
  std::optional<Bytes> vmlinuz;  // No Secure Boot: plain digest from grub.
  std::string cmdline_pattern;
  std::shared_ptr<const RE2> cmdline;
};

struct ScrtmAndBiosSpec {
  DigestSpec scrtm;
  std::vector<DigestSpec> platform_firmware;
};

constexpr char kSha256Name[] = "sha256";
constexpr size_t kSha256Size = 32;
constexpr size_t kMaxFailuresPerRule = 20;

}  // namespace

struct BootPolicy::State {
  bool keylime = false;  // Keylime reference-state fields are present.
  bool has_secureboot = true;
  std::vector<ScrtmAndBiosSpec> scrtm_and_bios;
  std::vector<SignatureSpec> pk, kek, db, dbx, vendor_db;
  std::vector<DigestSpec> mokdig, mokxdig;
  std::vector<Bytes> firmware_apps;  // SHA-256 Authenticode digests.
  std::vector<KernelSpec> kernels;
  uint16_t pcr_bank = kAlgSha256;
  std::map<uint32_t, std::vector<Bytes>> pcrs;
};

namespace {

// ---- Reading the reference state -------------------------------------------

absl::Status Bad(const std::string& field, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("reference state ", field, ": ", what));
}

absl::StatusOr<Bytes> ReadHex(const Json& v, const std::string& field,
                              size_t want_size) {
  if (!v.is_string()) return Bad(field, "is not a string");
  absl::StatusOr<Bytes> bytes = HexDecode(v.get_ref<const std::string&>());
  if (!bytes.ok()) return Bad(field, bytes.status().message());
  if (bytes->empty()) return Bad(field, "is empty");
  if (want_size != 0 && bytes->size() != want_size) {
    return Bad(field,
               absl::StrCat("has ", bytes->size(), " bytes, not ", want_size));
  }
  return bytes;
}

absl::StatusOr<DigestSpec> ReadDigest(const Json& v, const std::string& field) {
  if (!v.is_object() || v.empty()) {
    return Bad(field, "is not an object of algorithm: hex digest");
  }
  DigestSpec spec;
  for (const auto& [name, value] : v.items()) {
    std::optional<uint16_t> alg = HashAlgFromName(name);
    std::string sub = absl::StrCat(field, ".", name);
    if (!alg) return Bad(sub, "is not a known hash algorithm");
    VOUCH_ASSIGN_OR_RETURN(spec[*alg],
                           ReadHex(value, sub, HashAlgDigestSize(*alg)));
  }
  return spec;
}

absl::StatusOr<std::vector<DigestSpec>> ReadDigestList(
    const Json& v, const std::string& field) {
  if (!v.is_array()) return Bad(field, "is not a list");
  std::vector<DigestSpec> out;
  for (size_t i = 0; i < v.size(); ++i) {
    VOUCH_ASSIGN_OR_RETURN(DigestSpec d,
                           ReadDigest(v[i], absl::StrCat(field, "[", i, "]")));
    out.push_back(std::move(d));
  }
  return out;
}

absl::StatusOr<std::vector<SignatureSpec>> ReadSignatures(
    const Json& v, const std::string& field) {
  if (!v.is_array()) return Bad(field, "is not a list");
  std::vector<SignatureSpec> out;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string at = absl::StrCat(field, "[", i, "]");
    const Json& entry = v[i];
    if (!entry.is_object()) return Bad(at, "is not an object");
    auto owner = entry.find("SignatureOwner");
    auto data = entry.find("SignatureData");
    if (owner == entry.end() || data == entry.end() || entry.size() != 2) {
      return Bad(at, "needs exactly SignatureOwner and SignatureData");
    }
    absl::StatusOr<Guid> guid =
        owner->is_string() ? ParseGuid(owner->get_ref<const std::string&>())
                           : absl::InvalidArgumentError("");
    if (!guid.ok()) return Bad(at + ".SignatureOwner", "is not a GUID");
    SignatureSpec sig;
    sig.owner = absl::AsciiStrToLower(owner->get_ref<const std::string&>());
    sig.registry = *guid;
    // Memory order = the text's bytes as written: undo ParseGuid's swap.
    sig.legacy = *guid;
    std::reverse(sig.legacy.bytes.begin(), sig.legacy.bytes.begin() + 4);
    std::reverse(sig.legacy.bytes.begin() + 4, sig.legacy.bytes.begin() + 6);
    std::reverse(sig.legacy.bytes.begin() + 6, sig.legacy.bytes.begin() + 8);
    VOUCH_ASSIGN_OR_RETURN(sig.data, ReadHex(*data, at + ".SignatureData", 0));
    out.push_back(std::move(sig));
  }
  return out;
}

absl::StatusOr<KernelSpec> ReadKernel(const Json& v, const std::string& field,
                                      bool has_secureboot) {
  if (!v.is_object()) return Bad(field, "is not an object");
  static const char* const kKnown[] = {
      "shim_authcode_sha256", "grub_authcode_sha256", "kernel_authcode_sha256",
      "vmlinuz_plain_sha256", "initrd_plain_sha256",  "kernel_cmdline"};
  for (const auto& [name, value] : v.items()) {
    if (std::find(std::begin(kKnown), std::end(kKnown), name) ==
        std::end(kKnown)) {
      return Bad(absl::StrCat(field, ".", name), "is not a known field");
    }
  }
  auto required = [&](const char* name) -> absl::StatusOr<Bytes> {
    auto it = v.find(name);
    if (it == v.end()) return Bad(absl::StrCat(field, ".", name), "is missing");
    return ReadHex(*it, absl::StrCat(field, ".", name), kSha256Size);
  };
  KernelSpec k;
  VOUCH_ASSIGN_OR_RETURN(k.shim, required("shim_authcode_sha256"));
  VOUCH_ASSIGN_OR_RETURN(k.grub, required("grub_authcode_sha256"));
  VOUCH_ASSIGN_OR_RETURN(k.initrd, required("initrd_plain_sha256"));
  if (has_secureboot) {
    VOUCH_ASSIGN_OR_RETURN(k.kernel, required("kernel_authcode_sha256"));
  } else {
    VOUCH_ASSIGN_OR_RETURN(k.vmlinuz, required("vmlinuz_plain_sha256"));
  }
  auto cmdline = v.find("kernel_cmdline");
  if (cmdline == v.end() || !cmdline->is_string()) {
    return Bad(field + ".kernel_cmdline", "is missing or not a string");
  }
  k.cmdline_pattern = cmdline->get<std::string>();
  RE2::Options options;
  options.set_log_errors(false);
  // Grouped so that a top-level '|' cannot escape the full match.
  auto re = std::make_shared<RE2>(absl::StrCat("(?:", k.cmdline_pattern, ")"),
                                  options);
  if (!re->ok()) {
    return Bad(field + ".kernel_cmdline",
               absl::StrCat("is not an RE2 pattern: ", re->error()));
  }
  k.cmdline = std::move(re);
  return k;
}

absl::StatusOr<std::vector<ScrtmAndBiosSpec>> ReadScrtmAndBios(const Json& v) {
  if (!v.is_array()) return Bad("scrtm_and_bios", "is not a list");
  std::vector<ScrtmAndBiosSpec> out;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string at = absl::StrCat("scrtm_and_bios[", i, "]");
    const Json& e = v[i];
    auto scrtm = e.is_object() ? e.find("scrtm") : e.end();
    auto firmware = e.is_object() ? e.find("platform_firmware") : e.end();
    if (!e.is_object() || scrtm == e.end() || firmware == e.end() ||
        e.size() != 2) {
      return Bad(at, "needs exactly scrtm and platform_firmware");
    }
    ScrtmAndBiosSpec spec;
    VOUCH_ASSIGN_OR_RETURN(spec.scrtm, ReadDigest(*scrtm, at + ".scrtm"));
    VOUCH_ASSIGN_OR_RETURN(
        spec.platform_firmware,
        ReadDigestList(*firmware, at + ".platform_firmware"));
    out.push_back(std::move(spec));
  }
  return out;
}

absl::Status ReadPcrs(const Json& v, BootPolicy::State& state) {
  if (!v.is_object()) return Bad("pcrs", "is not an object");
  size_t size = HashAlgDigestSize(state.pcr_bank);
  for (const auto& [key, values] : v.items()) {
    std::string at = absl::StrCat("pcrs.", key);
    uint32_t pcr = 0;
    if (!absl::SimpleAtoi(key, &pcr) || pcr > 23) {
      return Bad(at, "is not a PCR index 0-23");
    }
    if (!values.is_array() || values.empty()) {
      return Bad(at, "is not a non-empty list of hex values");
    }
    std::vector<Bytes>& allowed = state.pcrs[pcr];
    for (size_t i = 0; i < values.size(); ++i) {
      VOUCH_ASSIGN_OR_RETURN(
          Bytes b, ReadHex(values[i], absl::StrCat(at, "[", i, "]"), size));
      allowed.push_back(std::move(b));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadState(const Json& doc, BootPolicy::State& s) {
  static const char* const kKeylimeRequired[] = {
      "scrtm_and_bios", "pk",      "kek",    "db", "dbx",
      "mokdig",         "mokxdig", "kernels"};
  static const char* const kKeylimeOptional[] = {"has_secureboot", "vendor_db",
                                                 "firmware_apps"};
  auto is_one_of = [](const std::string& key, auto& list) {
    return std::find(std::begin(list), std::end(list), key) != std::end(list);
  };
  for (const auto& [key, value] : doc.items()) {
    if (is_one_of(key, kKeylimeRequired) || is_one_of(key, kKeylimeOptional)) {
      s.keylime = true;
    } else if (key != "pcrs" && key != "pcr_bank") {
      return Bad(key, "is not a known field");
    }
  }
  if (auto bank = doc.find("pcr_bank"); bank != doc.end()) {
    std::optional<uint16_t> alg =
        bank->is_string() ? HashAlgFromName(bank->get<std::string>())
                          : std::nullopt;
    if (!alg) return Bad("pcr_bank", "is not a known hash algorithm");
    s.pcr_bank = *alg;
  }
  if (auto pcrs = doc.find("pcrs"); pcrs != doc.end()) {
    VOUCH_RETURN_IF_ERROR(ReadPcrs(*pcrs, s));
  }
  if (!s.keylime) return absl::OkStatus();

  for (const char* key : kKeylimeRequired) {
    if (doc.find(key) == doc.end()) return Bad(key, "is missing");
  }
  if (auto sb = doc.find("has_secureboot"); sb != doc.end()) {
    if (!sb->is_boolean()) return Bad("has_secureboot", "is not a boolean");
    s.has_secureboot = sb->get<bool>();
  }
  VOUCH_ASSIGN_OR_RETURN(s.scrtm_and_bios,
                         ReadScrtmAndBios(doc.at("scrtm_and_bios")));
  VOUCH_ASSIGN_OR_RETURN(s.pk, ReadSignatures(doc.at("pk"), "pk"));
  VOUCH_ASSIGN_OR_RETURN(s.kek, ReadSignatures(doc.at("kek"), "kek"));
  VOUCH_ASSIGN_OR_RETURN(s.db, ReadSignatures(doc.at("db"), "db"));
  VOUCH_ASSIGN_OR_RETURN(s.dbx, ReadSignatures(doc.at("dbx"), "dbx"));
  if (auto vdb = doc.find("vendor_db"); vdb != doc.end()) {
    VOUCH_ASSIGN_OR_RETURN(s.vendor_db, ReadSignatures(*vdb, "vendor_db"));
  }
  VOUCH_ASSIGN_OR_RETURN(s.mokdig, ReadDigestList(doc.at("mokdig"), "mokdig"));
  VOUCH_ASSIGN_OR_RETURN(s.mokxdig,
                         ReadDigestList(doc.at("mokxdig"), "mokxdig"));
  if (auto apps = doc.find("firmware_apps"); apps != doc.end()) {
    if (!apps->is_array()) return Bad("firmware_apps", "is not a list");
    for (size_t i = 0; i < apps->size(); ++i) {
      VOUCH_ASSIGN_OR_RETURN(
          Bytes d, ReadHex((*apps)[i], absl::StrCat("firmware_apps[", i, "]"),
                           kSha256Size));
      s.firmware_apps.push_back(std::move(d));
    }
  }
  const Json& kernels = doc.at("kernels");
  if (!kernels.is_array()) return Bad("kernels", "is not a list");
  for (size_t i = 0; i < kernels.size(); ++i) {
    VOUCH_ASSIGN_OR_RETURN(
        KernelSpec k, ReadKernel(kernels[i], absl::StrCat("kernels[", i, "]"),
                                 s.has_secureboot));
    s.kernels.push_back(std::move(k));
  }
  return absl::OkStatus();
}

// ---- Evaluating a log -------------------------------------------------------

std::string Where(const Event& e) {
  return absl::StrCat("event ", e.number, " (PCR ", e.pcr, ", ",
                      EventTypeName(e.type), ")");
}

std::string Sha256Hex(const Event& e) {
  const Bytes* d = e.DigestFor(kAlgSha256);
  return d ? HexEncode(*d) : std::string("(none)");
}

// An event matches a digest spec when every algorithm both have agrees and
// there is at least one such algorithm.
bool MatchesDigest(const Event& e, const DigestSpec& spec) {
  bool any = false;
  for (const auto& [alg, value] : spec) {
    const Bytes* d = e.DigestFor(alg);
    if (d == nullptr) continue;
    if (*d != value) return false;
    any = true;
  }
  return any;
}

bool MatchesAny(const Event& e, const std::vector<DigestSpec>& specs) {
  return std::any_of(specs.begin(), specs.end(),
                     [&](const DigestSpec& s) { return MatchesDigest(e, s); });
}

bool Sha256Is(const Event& e, const Bytes& want) {
  const Bytes* d = e.DigestFor(kAlgSha256);
  return d != nullptr && *d == want;
}

bool InSignatures(const Guid& owner, const Bytes& data,
                  const std::vector<SignatureSpec>& allowed) {
  return std::any_of(
      allowed.begin(), allowed.end(),
      [&](const SignatureSpec& s) { return s.Matches(owner, data); });
}

// "BootOrder" or "Boot" and hex digits (UEFI 2.10, section 3.1.1), as
// Keylime's pattern BootOrder|Boot[0-9a-fA-F]+.
bool IsBootVariable(absl::string_view name) {
  if (name == "BootOrder") return true;
  if (!absl::ConsumePrefix(&name, "Boot") || name.empty()) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return absl::ascii_isxdigit(c); });
}

// The bytes up to the trailing NULs of a string event.
std::string RawText(const Event& e) {
  size_t end = e.data.size();
  while (end > 0 && e.data[end - 1] == 0) --end;
  return std::string(reinterpret_cast<const char*>(e.data.data()), end);
}

class Evaluator {
 public:
  Evaluator(const BootPolicy::State& s, const EventLog& log,
            const PcrBanks& replayed, Verdict& verdict)
      : s_(s), log_(log), replayed_(replayed), verdict_(verdict) {}

  void Run() {
    if (s_.keylime) {
      for (const Event& e : log_.events) Dispatch(e);
      CheckRequiredVariables();
      CheckAlternatives(
          Rule::kBootScrtmAndBios, "scrtm_and_bios", s_.scrtm_and_bios,
          [this](const ScrtmAndBiosSpec& spec) { return ScrtmMismatch(spec); });
      CheckFirmwareApps();
      CheckAlternatives(
          Rule::kBootKernels, "kernels", s_.kernels,
          [this](const KernelSpec& spec) { return KernelMismatch(spec); });
    }
    CheckPcrMap();
  }

 private:
  void Fail(Rule rule, std::string detail) {
    size_t& n = failures_per_rule_[rule];
    if (++n <= kMaxFailuresPerRule) {
      verdict_.AddFailure(rule, std::move(detail));
    } else if (n == kMaxFailuresPerRule + 1) {
      verdict_.AddFailure(rule, "more failures of this rule left out");
    }
  }
  void Fail(Rule rule, const Event& e, absl::string_view what) {
    Fail(rule, absl::StrCat(Where(e), ": ", what));
  }
  void Unexpected(const Event& e, absl::string_view what = "") {
    Fail(Rule::kBootEventUnexpected, e,
         absl::StrCat("not allowed by the boot policy", what));
  }
  // Counts `key`; false (with a failure) from its second appearance.
  bool Once(const std::string& key, const Event& e) {
    if (++seen_[key] == 1) return true;
    Fail(Rule::kBootEventRepeated, e, absl::StrCat(key, " appears again"));
    return false;
  }

  // The event's digests in every bank OpenSSL computes must be H(data).
  void CheckDataDigest(const Event& e, ByteSpan data) {
    bool checked = false;
    for (const EventDigest& d : e.digests) {
      if (DigestMd(d.alg) == nullptr) continue;
      absl::StatusOr<Bytes> want = ComputeDigest(d.alg, data);
      if (!want.ok() || *want != d.value) {
        Fail(Rule::kBootEventDigest, e,
             absl::StrCat(HashAlgName(d.alg),
                          " digest does not cover the event data"));
        return;
      }
      checked = true;
    }
    if (!checked) {
      Fail(Rule::kBootEventDigest, e,
           "no digest in a bank that can be checked");
    }
  }

  void Dispatch(const Event& e) {
    if (e.type == kEvNoAction) return;  // Never extended (PFP 10.4.5).
    if (e.type == kEvSeparator && e.pcr <= 7) return CheckSeparator(e);
    switch (e.pcr) {
      case 0:
        if (e.type == kEvSCrtmVersion) {
          s_crtms_.push_back(&e);
        } else {
          firmware_.push_back(&e);  // Pinned by scrtm_and_bios, in order.
        }
        return;
      case 1:
        return Pcr1(e);
      case 2:
        if (e.type == kEvEfiBootServicesDriver) return;  // As Keylime.
        return Unexpected(e);
      case 4:
        if (e.type == kEvEfiAction) return CheckAction(e);
        if (e.type == kEvEfiBootServicesApplication) return Application(e);
        return Unexpected(e);
      case 5:
        if (e.type == kEvEfiAction) return CheckAction(e);
        if (e.type == kEvEfiGptEvent || e.type == kEvEfiGptEvent2) {
          Once("GPT", e);  // One partition table (PFP 1.05, 10.4.4).
          return;
        }
        return Unexpected(e);
      case 7:
        if (e.type == kEvEfiVariableDriverConfig) return DriverConfig(e);
        if (e.type == kEvEfiVariableAuthority) return Authority(e);
        return Unexpected(e);
      case 8:
        return Pcr8(e);
      case 9:
        return Pcr9(e);
      case 14:
        return Pcr14(e);
      default:
        return Unexpected(e);
    }
  }

  // PFP 1.05, section 10.4.1: EV_SEPARATOR data is 0x00000000, or
  // 0xFFFFFFFF on an error, and its digest covers those 4 bytes.
  void CheckSeparator(const Event& e) {
    static const uint8_t kZero[4] = {0, 0, 0, 0};
    static const uint8_t kOnes[4] = {0xFF, 0xFF, 0xFF, 0xFF};
    ByteSpan data(e.data);
    if (data != ByteSpan(kZero) && data != ByteSpan(kOnes)) {
      return Fail(Rule::kBootSeparator, e,
                  absl::StrCat("separator value 0x", HexEncode(data)));
    }
    CheckDataDigest(e, data);
  }

  // EV_EFI_ACTION strings the PFP defines per PCR (section 10.4.4).
  void CheckAction(const Event& e) {
    static const std::map<uint32_t, std::vector<std::string>> kAllowed = {
        {1, {"Entering ROM Based Setup"}},
        {4,
         {"Calling EFI Application from Boot Option",
          "Returning from EFI Application from Boot Option"}},
        {5,
         {"Exit Boot Services Invocation",
          "Exit Boot Services Returned with Failure",
          "Exit Boot Services Returned with Success"}},
    };
    std::string text(AsString(e.data));
    auto allowed = kAllowed.find(e.pcr);
    if (allowed == kAllowed.end() ||
        std::find(allowed->second.begin(), allowed->second.end(), text) ==
            allowed->second.end()) {
      return Fail(Rule::kBootEfiAction, e,
                  absl::StrCat("action \"", EventText(e.data),
                               "\" is not one the PFP defines for this PCR"));
    }
    CheckDataDigest(e, e.data);
  }

  void Pcr1(const Event& e) {
    switch (e.type) {
      case kEvCpuMicrocode:
        Once("EV_CPU_MICROCODE", e);
        return;
      case kEvEfiHandoffTables:
      case kEvEfiHandoffTables2:
        Once(EventTypeName(e.type), e);
        return;
      case kEvPlatformConfigFlags:
        // edk2 measures up to four of these (Keylime issue 1393).
        if (++seen_["EV_PLATFORM_CONFIG_FLAGS"] > 4) {
          Fail(Rule::kBootEventRepeated, e, "more than 4 config flag events");
        }
        return;
      case kEvEfiVariableDriverConfig:
        return;  // Platform configuration (vendor variables); not pinned.
      case kEvEfiAction:
        return CheckAction(e);
      case kEvEfiVariableBoot:
      case kEvEfiVariableBoot2: {
        absl::StatusOr<EfiVariable> var = DecodeEfiVariable(e.data);
        if (!var.ok()) {
          return Fail(Rule::kBootEventData, e, var.status().message());
        }
        if (var->vendor != kEfiGlobalVariable || !IsBootVariable(var->name)) {
          return Unexpected(e, absl::StrCat(" (variable ", var->name, ")"));
        }
        return;
      }
      default:
        return Unexpected(e);
    }
  }

  // PCR 4 applications: firmware-volume ones (FvVol/FvFile device path)
  // are checked against firmware_apps, the rest form the shim/grub/kernel
  // sequence. The device path is unverified, but both sets are allowlists.
  void Application(const Event& e) {
    absl::StatusOr<ImageLoadEvent> image = DecodeImageLoadEvent(e.data);
    if (!image.ok()) {
      return Fail(Rule::kBootEventData, e, image.status().message());
    }
    absl::StatusOr<std::string> path = DevicePathToText(image->device_path);
    if (path.ok() && absl::StartsWith(*path, "FvVol(") &&
        absl::StrContains(*path, "/FvFile(")) {
      fv_apps_.push_back(&e);
    } else {
      applications_.push_back(&e);
    }
  }

  static std::string SignatureText(const Guid& type, const EfiSignature& s) {
    std::string what = type == kEfiCertX509 ? "X.509 certificate" : "entry";
    absl::StatusOr<Bytes> d = ComputeDigest(kAlgSha256, s.data);
    return absl::StrCat(
        what, " (owner ", s.owner.ToString(), ", ",
        type == kEfiCertSha256
            ? absl::StrCat("SHA-256 ", HexEncode(s.data))
            : absl::StrCat("data sha256 ", d.ok() ? HexEncode(*d) : "?"),
        ")");
  }

  // Every entry of the variable must be in `allowed`, with a type from
  // `types` (Keylime KeySubset); `field` names that reference state list.
  void CheckSubset(Rule rule, absl::string_view field, const Event& e,
                   const std::string& name,
                   const std::vector<EfiSignatureList>& lists,
                   const std::vector<SignatureSpec>& allowed,
                   const std::vector<Guid>& types) {
    for (size_t i = 0; i < lists.size(); ++i) {
      const EfiSignatureList& list = lists[i];
      if (std::find(types.begin(), types.end(), list.type) == types.end()) {
        Fail(rule, e,
             absl::StrCat(name, " list ", i, " has signature type ",
                          list.type.ToString()));
        continue;
      }
      for (const EfiSignature& sig : list.signatures) {
        if (!InSignatures(sig.owner, sig.data, allowed)) {
          Fail(rule, e,
               absl::StrCat(name, " ", SignatureText(list.type, sig),
                            " is not in the reference state's ", field));
        }
      }
    }
  }

  // Every required dbx entry must be present (Keylime KeySuperset, over all
  // lists of any type).
  void CheckSuperset(const Event& e,
                     const std::vector<EfiSignatureList>& lists) {
    // Entries of the log by data, so that a full dbx is not quadratic.
    std::map<Bytes, std::vector<Guid>> present;
    for (const EfiSignatureList& list : lists) {
      for (const EfiSignature& sig : list.signatures) {
        present[sig.data].push_back(sig.owner);
      }
    }
    for (const SignatureSpec& want : s_.dbx) {
      auto it = present.find(want.data);
      bool found =
          it != present.end() &&
          std::any_of(it->second.begin(), it->second.end(), [&](const Guid& g) {
            return want.Matches(g, want.data);
          });
      if (!found) {
        Fail(Rule::kBootDbx, e,
             absl::StrCat("dbx lacks the required entry (owner ", want.owner,
                          ", data ", HexEncode(want.data), ")"));
      }
    }
  }

  // PCR 7 EV_EFI_VARIABLE_DRIVER_CONFIG: SecureBoot, PK, KEK, db, dbx and
  // vendor_db (PFP 1.05, section 3.3.4.8). The digest must cover the whole
  // UEFI_VARIABLE_DATA, so the decoded contents are bound to PCR 7.
  void DriverConfig(const Event& e) {
    absl::StatusOr<EfiVariable> var = DecodeEfiVariable(e.data);
    if (!var.ok()) return Fail(Rule::kBootEventData, e, var.status().message());
    CheckDataDigest(e, e.data);
    const std::string& name = var->name;
    bool global = var->vendor == kEfiGlobalVariable;
    bool security_db = var->vendor == kEfiImageSecurityDatabase;
    if (global && name == "SecureBoot") {
      if (!Once("SecureBoot", e)) return;
      bool enabled = var->data.size() == 1 && var->data[0] == 1;
      if (enabled != s_.has_secureboot) {
        Fail(Rule::kBootSecureboot, e,
             absl::StrCat("SecureBoot is ", enabled ? "enabled" : "disabled",
                          " but the reference state has has_secureboot ",
                          s_.has_secureboot ? "true" : "false"));
      }
      return;
    }
    // The variable's reference state list, rule and field (dbx's by default).
    const std::vector<SignatureSpec>* allowed = nullptr;
    std::vector<Guid> types = {kEfiCertX509};
    Rule rule = Rule::kBootDbx;
    const char* field = "dbx";
    if (global && (name == "PK" || name == "KEK")) {
      const bool pk = name == "PK";
      allowed = pk ? &s_.pk : &s_.kek;
      rule = pk ? Rule::kBootPk : Rule::kBootKek;
      field = pk ? "pk" : "kek";
    } else if (security_db && (name == "db" || name == "vendor_db")) {
      const bool db = name == "db";
      allowed = db ? &s_.db : &s_.vendor_db;
      rule = db ? Rule::kBootDb : Rule::kBootVendorDb;
      field = db ? "db" : "vendor_db";
      types.push_back(kEfiCertSha256);
    } else if (!(security_db && name == "dbx")) {
      return Unexpected(e, absl::StrCat(" (variable ", name, ")"));
    }
    if (!Once(name, e)) return;
    absl::StatusOr<std::vector<EfiSignatureList>> lists =
        DecodeSignatureLists(var->data);
    if (!lists.ok()) return Fail(rule, e, lists.status().message());
    if (rule == Rule::kBootDbx) {
      if (!s_.has_secureboot && s_.dbx.empty()) return;
      return CheckSuperset(e, *lists);
    }
    // Keylime: without Secure Boot an empty list accepts whatever is there.
    if (!s_.has_secureboot && allowed->empty()) return;
    CheckSubset(rule, field, e, name, *lists, *allowed, types);
  }

  // PCR 7 EV_EFI_VARIABLE_AUTHORITY: the db / vendor_db entry that verified
  // an image must be an allowed one; shim's own authorities are accepted
  // once each (their image digests are pinned in PCR 4).
  void Authority(const Event& e) {
    absl::StatusOr<EfiVariable> var = DecodeEfiVariable(e.data);
    if (!var.ok()) return Fail(Rule::kBootEventData, e, var.status().message());
    CheckDataDigest(e, e.data);
    const std::string& name = var->name;
    if (var->vendor == kEfiImageSecurityDatabase &&
        (name == "db" || name == "vendor_db")) {
      const std::vector<SignatureSpec>& allowed =
          name == "db" ? s_.db : s_.vendor_db;
      if (!s_.has_secureboot && allowed.empty()) return;
      // The data is one EFI_SIGNATURE_DATA (UEFI 2.10, section 32.4.1).
      EfiSignature sig;
      if (var->data.size() < 16) {
        return Fail(Rule::kBootEventData, e, "authority shorter than a GUID");
      }
      std::copy(var->data.begin(), var->data.begin() + 16,
                sig.owner.bytes.begin());
      sig.data.assign(var->data.begin() + 16, var->data.end());
      if (!InSignatures(sig.owner, sig.data, allowed)) {
        Fail(name == "db" ? Rule::kBootDb : Rule::kBootVendorDb, e,
             absl::StrCat("authority ", SignatureText(kEfiCertX509, sig),
                          " is not in the reference state's ", name));
      }
      return;
    }
    if (var->vendor == kShimLock &&
        (name == "SbatLevel" || name == "Shim" || name == "MokListTrusted" ||
         name == "MokListRT")) {
      Once(absl::StrCat("authority ", name), e);
      return;
    }
    Unexpected(e, absl::StrCat(" (authority ", name, ")"));
  }

  // grub (PCR 8): "grub_cmd: ..." and "kernel_cmdline: ..."; the digest of
  // a kernel_cmdline event is over the text after the prefix.
  void Pcr8(const Event& e) {
    if (e.type != kEvIpl) return Unexpected(e);
    std::string text = RawText(e);
    constexpr absl::string_view kCmdline = "kernel_cmdline: ";
    if (absl::StartsWith(text, "grub_cmd: ")) return;
    if (absl::StartsWith(text, kCmdline)) {
      CheckDataDigest(e,
                      AsBytes(absl::string_view(text).substr(kCmdline.size())));
      cmdlines_.push_back(&e);
      return;
    }
    Fail(Rule::kBootEventUnexpected, e,
         "EV_IPL text is neither grub_cmd nor kernel_cmdline");
  }

  // grub (PCR 9): files it read, classified by path as Keylime does.
  void Pcr9(const Event& e) {
    if (e.type != kEvIpl) return Unexpected(e);
    std::string text = RawText(e);
    if (absl::StrContains(text, "/loader/entries") ||
        absl::StrContains(text, "/grub")) {
      return;
    }
    if (absl::StrContains(text, "/vmlinuz")) {
      vmlinuzes_.push_back(&e);
    } else if (absl::StrContains(text, "/initrd") ||
               absl::StrContains(text, "/initramfs")) {
      initrds_.push_back(&e);
    } else {
      Fail(Rule::kBootEventUnexpected, e,
           absl::StrCat("file \"", EventText(e.data),
                        "\" is not a grub, loader entry, kernel or initrd"));
    }
  }

  // shim (PCR 14): MokList, MokListX, MokListTrusted.
  void Pcr14(const Event& e) {
    if (e.type != kEvIpl) return Unexpected(e);
    std::string text = RawText(e);
    if (text == "MokList") {
      if (!MatchesAny(e, s_.mokdig)) {
        Fail(Rule::kBootMokdig, e,
             absl::StrCat("MokList digest sha256 ", Sha256Hex(e),
                          " is not in mokdig"));
      }
    } else if (text == "MokListX") {
      if (!MatchesAny(e, s_.mokxdig)) {
        Fail(Rule::kBootMokxdig, e,
             absl::StrCat("MokListX digest sha256 ", Sha256Hex(e),
                          " is not in mokxdig"));
      }
    } else if (text == "MokListTrusted") {
      Once("MokListTrusted", e);
    } else {
      Fail(Rule::kBootEventUnexpected, e,
           absl::StrCat("EV_IPL \"", EventText(e.data), "\" on PCR 14"));
    }
  }

  void CheckRequiredVariables() {
    std::vector<std::pair<const char*, Rule>> required = {
        {"SecureBoot", Rule::kBootSecureboot}};
    if (s_.has_secureboot) {
      required.insert(required.end(), {{"PK", Rule::kBootPk},
                                       {"KEK", Rule::kBootKek},
                                       {"db", Rule::kBootDb},
                                       {"dbx", Rule::kBootDbx}});
    }
    for (const auto& [name, rule] : required) {
      if (seen_[name] == 0) {
        Fail(rule,
             absl::StrCat("PCR 7: the log has no ", name,
                          " measurement (EV_EFI_VARIABLE_DRIVER_CONFIG)"));
      }
    }
  }

  static std::string Numbers(const std::vector<const Event*>& events) {
    return absl::StrJoin(events, ", ", [](std::string* out, const Event* e) {
      absl::StrAppend(out, e->number);
    });
  }

  // Why the PCR 0 events do not match one scrtm_and_bios entry ("" if they
  // do).
  std::string ScrtmMismatch(const ScrtmAndBiosSpec& spec) const {
    if (s_crtms_.size() != 1) {
      return absl::StrCat("the log has ", s_crtms_.size(),
                          " EV_S_CRTM_VERSION events, not 1");
    }
    if (!MatchesDigest(*s_crtms_[0], spec.scrtm)) {
      return absl::StrCat(Where(*s_crtms_[0]), ": sha256 ",
                          Sha256Hex(*s_crtms_[0]), " is not scrtm");
    }
    if (firmware_.size() != spec.platform_firmware.size()) {
      return absl::StrCat("the log has ", firmware_.size(),
                          " PCR 0 firmware events (", Numbers(firmware_),
                          "), platform_firmware lists ",
                          spec.platform_firmware.size());
    }
    for (size_t i = 0; i < firmware_.size(); ++i) {
      if (!MatchesDigest(*firmware_[i], spec.platform_firmware[i])) {
        return absl::StrCat(Where(*firmware_[i]), ": sha256 ",
                            Sha256Hex(*firmware_[i]),
                            " is not platform_firmware[", i, "]");
      }
    }
    return "";
  }

  // The log must match one of `alternatives` (Keylime's Or): `mismatch`
  // says why an alternative does not fit, "" when it does. Without a match,
  // every alternative's reason is a failure of `rule`.
  template <typename Spec, typename Mismatch>
  void CheckAlternatives(Rule rule, const std::string& field,
                         const std::vector<Spec>& alternatives,
                         Mismatch mismatch) {
    std::vector<std::string> why;
    for (size_t i = 0; i < alternatives.size(); ++i) {
      std::string m = mismatch(alternatives[i]);
      if (m.empty()) return;
      why.push_back(absl::StrCat(field, "[", i, "]: ", m));
    }
    if (why.empty()) why.push_back(absl::StrCat(field, " allows nothing"));
    for (std::string& w : why) Fail(rule, std::move(w));
  }

  void CheckFirmwareApps() {
    for (const Event* e : fv_apps_) {
      const Bytes* d = e->DigestFor(kAlgSha256);
      if (d == nullptr ||
          std::find(s_.firmware_apps.begin(), s_.firmware_apps.end(), *d) ==
              s_.firmware_apps.end()) {
        Fail(Rule::kBootFirmwareApps, *e,
             absl::StrCat("firmware application sha256 ", Sha256Hex(*e),
                          " is not in firmware_apps"));
      }
    }
  }

  // Why the boot chain does not match kernels[i] ("" if it does).
  std::string KernelMismatch(const KernelSpec& k) const {
    std::vector<std::pair<const Bytes*, const char*>> chain = {
        {&k.shim, "shim_authcode_sha256"}, {&k.grub, "grub_authcode_sha256"}};
    if (k.kernel) chain.push_back({&*k.kernel, "kernel_authcode_sha256"});
    // Some boots measure the kernel twice (Keylime accepts both).
    size_t n = applications_.size();
    bool twice = k.kernel && n == chain.size() + 1;
    if (n != chain.size() && !twice) {
      return absl::StrCat("the log has ", n,
                          " boot applications on PCR 4 (events ",
                          Numbers(applications_), "), expected ", chain.size(),
                          k.kernel ? " or 4" : "");
    }
    if (twice) chain.push_back({&*k.kernel, "kernel_authcode_sha256"});
    for (size_t i = 0; i < n; ++i) {
      if (!Sha256Is(*applications_[i], *chain[i].first)) {
        return absl::StrCat(Where(*applications_[i]), ": sha256 ",
                            Sha256Hex(*applications_[i]), " is not ",
                            chain[i].second);
      }
    }
    if (initrds_.size() != 1) {
      return absl::StrCat("the log has ", initrds_.size(),
                          " initrd events on PCR 9, not 1");
    }
    if (!Sha256Is(*initrds_[0], k.initrd)) {
      return absl::StrCat(Where(*initrds_[0]), ": sha256 ",
                          Sha256Hex(*initrds_[0]),
                          " is not initrd_plain_sha256");
    }
    if (vmlinuzes_.size() != 1) {
      return absl::StrCat("the log has ", vmlinuzes_.size(),
                          " vmlinuz events on PCR 9, not 1");
    }
    if (k.vmlinuz && !Sha256Is(*vmlinuzes_[0], *k.vmlinuz)) {
      return absl::StrCat(Where(*vmlinuzes_[0]), ": sha256 ",
                          Sha256Hex(*vmlinuzes_[0]),
                          " is not vmlinuz_plain_sha256");
    }
    if (cmdlines_.size() != 1) {
      return absl::StrCat("the log has ", cmdlines_.size(),
                          " kernel_cmdline events on PCR 8, not 1");
    }
    std::string text = RawText(*cmdlines_[0]).substr(16);
    if (!RE2::FullMatch(text, *k.cmdline)) {
      return absl::StrCat(Where(*cmdlines_[0]), ": kernel command line \"",
                          EventText(AsBytes(text)),
                          "\" does not match kernel_cmdline");
    }
    return "";
  }

  void CheckPcrMap() {
    if (s_.pcrs.empty()) return;
    auto bank = replayed_.find(s_.pcr_bank);
    if (bank == replayed_.end()) {
      return Fail(Rule::kBootPcrs,
                  absl::StrCat("the event log has no ",
                               HashAlgName(s_.pcr_bank), " bank"));
    }
    size_t size = HashAlgDigestSize(s_.pcr_bank);
    for (const auto& [pcr, allowed] : s_.pcrs) {
      auto it = bank->second.find(pcr);
      Bytes value = it != bank->second.end() ? it->second
                                             : InitialPcrValue(log_, pcr, size);
      if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
        Fail(
            Rule::kBootPcrs,
            absl::StrCat(HashAlgName(s_.pcr_bank), " PCR ", pcr, " replays to ",
                         HexEncode(value), ", which pcrs does not allow"));
      }
    }
  }

  const BootPolicy::State& s_;
  const EventLog& log_;
  const PcrBanks& replayed_;
  Verdict& verdict_;
  std::map<Rule, size_t> failures_per_rule_;
  std::map<std::string, int> seen_;
  std::vector<const Event*> s_crtms_, firmware_, applications_, fv_apps_,
      initrds_, vmlinuzes_, cmdlines_;
};

}  // namespace

absl::StatusOr<BootPolicy> BootPolicy::FromJson(absl::string_view json) {
  if (json.size() > kMaxReferenceStateBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("reference state of ", json.size(),
                     " bytes exceeds the limit of ", kMaxReferenceStateBytes));
  }
  Json doc = Json::parse(json.begin(), json.end(), /*cb=*/nullptr,
                         /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError("reference state is not valid JSON");
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError("reference state is not a JSON object");
  }
  auto state = std::make_shared<State>();
  VOUCH_RETURN_IF_ERROR(ReadState(doc, *state));
  return BootPolicy(std::move(state));
}

bool BootPolicy::empty() const {
  return !state_->keylime && state_->pcrs.empty();
}

std::set<uint32_t> BootPolicy::UsedPcrs() const {
  std::set<uint32_t> used;
  if (state_->keylime) {
    for (uint32_t pcr = 0; pcr <= 9; ++pcr) used.insert(pcr);
    used.insert(14);
  }
  for (const auto& [pcr, allowed] : state_->pcrs) used.insert(pcr);
  return used;
}

Verdict BootPolicy::Evaluate(const EventLog& log,
                             const PcrBanks& replayed) const {
  Verdict verdict;
  if (empty()) {
    verdict.AddFailure(Rule::kBootRefstate,
                       "the reference state is empty: nothing is trusted");
  } else {
    Evaluator(*state_, log, replayed, verdict).Run();
  }
  verdict.MarkComplete();
  return verdict;
}

absl::StatusOr<Verdict> VerifyBootLog(ByteSpan log_bytes, uint16_t alg,
                                      const PcrValues& quoted,
                                      const BootPolicy& policy) {
  VOUCH_ASSIGN_OR_RETURN(EventLog log, ParseEventLog(log_bytes));
  VOUCH_ASSIGN_OR_RETURN(PcrBanks replayed, Replay(log));
  Verdict verdict =
      CheckQuotedPcrs(log, replayed, alg, quoted, policy.UsedPcrs());
  verdict.Merge(policy.Evaluate(log, replayed));
  return verdict;
}

// ---- Learning a reference state ---------------------------------------------

namespace {

std::string Hex0x(ByteSpan b) { return absl::StrCat("0x", HexEncode(b)); }

OrderedJson Sha256Spec(const Event& e) {
  OrderedJson j = OrderedJson::object();
  j[kSha256Name] = Hex0x(*e.DigestFor(kAlgSha256));
  return j;
}

OrderedJson SignaturesJson(const std::vector<EfiSignatureList>& lists) {
  OrderedJson out = OrderedJson::array();
  for (const EfiSignatureList& list : lists) {
    for (const EfiSignature& s : list.signatures) {
      out.push_back({{"SignatureOwner", s.owner.ToString()},
                     {"SignatureData", Hex0x(s.data)}});
    }
  }
  return out;
}

absl::Status Cannot(absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("cannot learn a reference state: ", what));
}

}  // namespace

absl::StatusOr<std::string> CreateReferenceState(const EventLog& log) {
  bool has_sha256 =
      std::any_of(log.algorithms.begin(), log.algorithms.end(),
                  [](const AlgorithmSize& a) { return a.alg == kAlgSha256; });
  if (!has_sha256) return Cannot("the log has no sha256 bank");

  bool secureboot = false;
  const Event* scrtm = nullptr;
  OrderedJson firmware = OrderedJson::array();
  OrderedJson keys = {{"pk", OrderedJson::array()},
                      {"kek", OrderedJson::array()},
                      {"db", OrderedJson::array()},
                      {"dbx", OrderedJson::array()}};
  OrderedJson vendor_db = OrderedJson::array();
  OrderedJson mokdig = OrderedJson::array(), mokxdig = OrderedJson::array();
  OrderedJson firmware_apps = OrderedJson::array();
  std::vector<const Event*> apps;
  const Event *initrd = nullptr, *vmlinuz = nullptr, *cmdline = nullptr;

  for (const Event& e : log.events) {
    if (e.type == kEvNoAction) continue;
    if (e.pcr == 0 && e.type != kEvSeparator) {
      if (e.type == kEvSCrtmVersion) {
        if (scrtm == nullptr) scrtm = &e;
      } else {
        firmware.push_back(Sha256Spec(e));
      }
    } else if (e.pcr == 7 && (e.type == kEvEfiVariableDriverConfig ||
                              e.type == kEvEfiVariableAuthority)) {
      absl::StatusOr<EfiVariable> var = DecodeEfiVariable(e.data);
      if (!var.ok()) {
        return Cannot(absl::StrCat(Where(e), ": ", var.status().message()));
      }
      std::string key = absl::AsciiStrToLower(var->name);
      if (e.type == kEvEfiVariableDriverConfig && var->name == "SecureBoot") {
        secureboot = var->data.size() == 1 && var->data[0] == 1;
      } else if (e.type == kEvEfiVariableDriverConfig && keys.contains(key)) {
        VOUCH_ASSIGN_OR_RETURN(auto lists, DecodeSignatureLists(var->data));
        keys[key] = SignaturesJson(lists);
      } else if (var->name == "vendor_db") {
        if (e.type == kEvEfiVariableDriverConfig) {
          VOUCH_ASSIGN_OR_RETURN(auto lists, DecodeSignatureLists(var->data));
          for (auto& s : SignaturesJson(lists)) vendor_db.push_back(s);
        } else if (var->data.size() >= 16) {
          Guid owner;
          std::copy(var->data.begin(), var->data.begin() + 16,
                    owner.bytes.begin());
          vendor_db.push_back(
              {{"SignatureOwner", owner.ToString()},
               {"SignatureData", Hex0x(ByteSpan(var->data).subspan(16))}});
        }
      }
    } else if (e.pcr == 4 && e.type == kEvEfiBootServicesApplication) {
      absl::StatusOr<ImageLoadEvent> image = DecodeImageLoadEvent(e.data);
      absl::StatusOr<std::string> path =
          image.ok() ? DevicePathToText(image->device_path)
                     : absl::StatusOr<std::string>(image.status());
      if (path.ok() && absl::StartsWith(*path, "FvVol(") &&
          absl::StrContains(*path, "/FvFile(")) {
        firmware_apps.push_back(Hex0x(*e.DigestFor(kAlgSha256)));
      } else {
        apps.push_back(&e);
      }
    } else if (e.type == kEvIpl && e.pcr == 14) {
      std::string text = RawText(e);
      if (text == "MokList") mokdig.push_back(Sha256Spec(e));
      if (text == "MokListX") mokxdig.push_back(Sha256Spec(e));
    } else if (e.type == kEvIpl && e.pcr == 9) {
      std::string text = RawText(e);
      if (absl::StrContains(text, "/loader/entries") ||
          absl::StrContains(text, "/grub")) {
        continue;
      }
      if (absl::StrContains(text, "/vmlinuz")) {
        if (vmlinuz == nullptr) vmlinuz = &e;
      } else if (absl::StrContains(text, "/initrd") ||
                 absl::StrContains(text, "/initramfs")) {
        if (initrd == nullptr) initrd = &e;
      }
    } else if (e.type == kEvIpl && e.pcr == 8 && cmdline == nullptr &&
               absl::StartsWith(RawText(e), "kernel_cmdline: ")) {
      cmdline = &e;
    }
  }

  if (scrtm == nullptr) return Cannot("the log has no EV_S_CRTM_VERSION");
  size_t want = secureboot ? 3 : 2;
  if (apps.size() != want && !(secureboot && apps.size() == 4)) {
    return Cannot(absl::StrCat(
        "the log has ", apps.size(), " boot applications on PCR 4; a ",
        secureboot ? "Secure Boot" : "non-Secure Boot", " chain (shim, grub",
        secureboot ? ", kernel" : "", ") needs ", want));
  }
  if (initrd == nullptr) return Cannot("the log has no initrd on PCR 9");
  if (vmlinuz == nullptr) return Cannot("the log has no vmlinuz on PCR 9");
  if (cmdline == nullptr) {
    return Cannot("the log has no kernel_cmdline on PCR 8");
  }

  OrderedJson kernel = OrderedJson::object();
  kernel["shim_authcode_sha256"] = Hex0x(*apps[0]->DigestFor(kAlgSha256));
  kernel["grub_authcode_sha256"] = Hex0x(*apps[1]->DigestFor(kAlgSha256));
  if (secureboot) {
    kernel["kernel_authcode_sha256"] = Hex0x(*apps[2]->DigestFor(kAlgSha256));
  } else {
    kernel["vmlinuz_plain_sha256"] = Hex0x(*vmlinuz->DigestFor(kAlgSha256));
  }
  kernel["initrd_plain_sha256"] = Hex0x(*initrd->DigestFor(kAlgSha256));
  kernel["kernel_cmdline"] = RE2::QuoteMeta(RawText(*cmdline).substr(16));

  OrderedJson out = OrderedJson::object();
  out["has_secureboot"] = secureboot;
  out["scrtm_and_bios"] = OrderedJson::array(
      {{{"scrtm", Sha256Spec(*scrtm)}, {"platform_firmware", firmware}}});
  for (const char* key : {"pk", "kek", "db", "dbx"}) out[key] = keys[key];
  out["vendor_db"] = vendor_db;
  out["mokdig"] = mokdig;
  out["mokxdig"] = mokxdig;
  out["firmware_apps"] = firmware_apps;
  out["kernels"] = OrderedJson::array({kernel});
  // Invalid UTF-8 from the log is replaced rather than thrown on.
  return out.dump(2, ' ', false, OrderedJson::error_handler_t::replace) + "\n";
}

}  // namespace vouch::core::boot
