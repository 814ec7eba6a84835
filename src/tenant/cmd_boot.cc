// vouchctl boot: offline measured-boot commands on local files (replay,
// check, create-policy, show) over vouch::core_boot. Exit codes: 0 ok/pass,
// 1 fail (a verdict), 2 could not evaluate (unreadable or malformed input).
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/bytes.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "core/boot/boot_policy.h"
#include "core/boot/efi.h"
#include "core/boot/event_log.h"
#include "core/boot/replay.h"
#include "core/rule.h"
#include "tenant/offline_commands.h"
#include "tenant/output.h"

namespace vouch::tenant {
namespace {

namespace boot = vouch::core::boot;
using Json = nlohmann::json;

constexpr int kPass = 0, kFail = 1, kCannot = 2;

struct BootFlags {
  CLI::App* boot = nullptr;
  CLI::App* replay = nullptr;
  CLI::App* check = nullptr;
  CLI::App* create = nullptr;
  CLI::App* show = nullptr;
  std::string eventlog;
  std::string policy;
  std::string quoted;
  std::string output;         // Empty or '-': stdout.
  std::string legacy_output;  // The hidden -o FILE.
  bool json = false;
};

BootFlags& ParsedBootFlags() {
  static BootFlags flags;
  return flags;
}

int BootCannotEvaluate(const std::string& what, const absl::Status& status) {
  std::cerr << "vouchctl boot: " << what << ": " << status.message() << "\n";
  return kCannot;
}

absl::StatusOr<boot::EventLog> LoadLog(const std::string& path) {
  absl::StatusOr<std::string> bytes =
      ReadFileUpTo(path, boot::ParseLimits{}.max_log_bytes);
  if (!bytes.ok()) return bytes.status();
  return boot::ParseEventLog(AsBytes(*bytes));
}

Json BanksJson(const boot::PcrBanks& banks) {
  Json out = Json::object();
  for (const auto& [alg, pcrs] : banks) {
    Json bank = Json::object();
    for (const auto& [pcr, value] : pcrs) {
      bank[std::to_string(pcr)] = HexEncode(value);
    }
    out[boot::HashAlgName(alg)] = bank;
  }
  return out;
}

int RunReplay(const BootFlags& f) {
  absl::StatusOr<boot::EventLog> log = LoadLog(f.eventlog);
  if (!log.ok()) return BootCannotEvaluate(f.eventlog, log.status());
  absl::StatusOr<boot::PcrBanks> banks = boot::Replay(*log);
  if (!banks.ok()) return BootCannotEvaluate("replay", banks.status());
  if (f.json) {
    std::cout << BanksJson(*banks).dump() << "\n";
    return kPass;
  }
  for (const auto& [alg, pcrs] : *banks) {
    std::cout << boot::HashAlgName(alg) << ":\n";
    for (const auto& [pcr, value] : pcrs) {
      std::cout << absl::StrFormat("  %2d: %s\n", pcr, HexEncode(value));
    }
  }
  return kPass;
}

int RunShow(const BootFlags& f) {
  absl::StatusOr<boot::EventLog> log = LoadLog(f.eventlog);
  if (!log.ok()) return BootCannotEvaluate(f.eventlog, log.status());
  for (const boot::Event& e : log->events) {
    const Bytes* digest = e.DigestFor(boot::kAlgSha256);
    uint16_t alg = boot::kAlgSha256;
    if (digest == nullptr && !e.digests.empty()) {
      digest = &e.digests[0].value;
      alg = e.digests[0].alg;
    }
    std::cout << absl::StrFormat(
        "%4d PCR %2d %-33s %s:%s %s\n", e.number, e.pcr,
        boot::EventTypeName(e.type), boot::HashAlgName(alg),
        digest ? HexEncode(*digest) : "", boot::DescribeEventData(e));
  }
  return kPass;
}

// Quoted PCR values in the shape `replay --json` prints.
absl::StatusOr<std::map<uint16_t, boot::PcrValues>> LoadQuoted(
    const std::string& path) {
  VOUCH_ASSIGN_OR_RETURN(std::string text, ReadFileUpTo(path, 1 << 20));
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError("quoted PCRs are not a JSON object");
  }
  std::map<uint16_t, boot::PcrValues> out;
  for (const auto& [bank, pcrs] : doc.items()) {
    std::optional<uint16_t> alg = boot::HashAlgFromName(bank);
    if (!alg || !pcrs.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("quoted PCRs: bad bank ", bank));
    }
    for (const auto& [index, value] : pcrs.items()) {
      uint32_t pcr = 0;
      absl::StatusOr<Bytes> bytes =
          value.is_string() ? HexDecode(value.get<std::string>())
                            : absl::InvalidArgumentError("not a string");
      if (!absl::SimpleAtoi(index, &pcr) || pcr > 23 || !bytes.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("quoted PCRs: bad entry ", bank, ".", index));
      }
      out[*alg][pcr] = *std::move(bytes);
    }
  }
  return out;
}

int RunCheck(const BootFlags& f) {
  absl::StatusOr<boot::EventLog> log = LoadLog(f.eventlog);
  if (!log.ok()) return BootCannotEvaluate(f.eventlog, log.status());
  absl::StatusOr<std::string> text =
      ReadFileUpTo(f.policy, boot::kMaxReferenceStateBytes);
  if (!text.ok()) return BootCannotEvaluate(f.policy, text.status());
  absl::StatusOr<boot::BootPolicy> policy = boot::BootPolicy::FromJson(*text);
  if (!policy.ok()) return BootCannotEvaluate(f.policy, policy.status());
  absl::StatusOr<boot::PcrBanks> banks = boot::Replay(*log);
  if (!banks.ok()) return BootCannotEvaluate("replay", banks.status());

  core::Verdict verdict;
  verdict.MarkComplete();
  if (!f.quoted.empty()) {
    auto quoted = LoadQuoted(f.quoted);
    if (!quoted.ok()) return BootCannotEvaluate(f.quoted, quoted.status());
    for (const auto& [alg, values] : *quoted) {
      verdict.Merge(
          boot::CheckQuotedPcrs(*log, *banks, alg, values, policy->UsedPcrs()));
    }
  }
  verdict.Merge(policy->Evaluate(*log, *banks));

  if (f.json) {
    Json out = {{"passed", verdict.passed()}, {"failures", Json::array()}};
    for (const core::Failure& failure : verdict.failures()) {
      out["failures"].push_back(
          {{"rule", std::string(core::RuleName(failure.rule))},
           {"detail", failure.detail}});
    }
    std::cout << out.dump(-1, ' ', false, Json::error_handler_t::replace)
              << "\n";
  } else {
    std::cout << (verdict.passed() ? "PASS" : "FAIL") << "\n";
    for (const core::Failure& failure : verdict.failures()) {
      std::cout << "  " << core::RuleName(failure.rule) << ": "
                << failure.detail << "\n";
    }
  }
  return verdict.passed() ? kPass : kFail;
}

int RunCreatePolicy(const BootFlags& f) {
  absl::StatusOr<boot::EventLog> log = LoadLog(f.eventlog);
  if (!log.ok()) return BootCannotEvaluate(f.eventlog, log.status());
  absl::StatusOr<std::string> refstate = boot::CreateReferenceState(*log);
  if (!refstate.ok()) return BootCannotEvaluate(f.eventlog, refstate.status());
  if (f.output.empty() || f.output == "-") {
    std::cout << *refstate;
    return kPass;
  }
  std::ofstream out(f.output, std::ios::binary | std::ios::trunc);
  out << *refstate;
  out.close();
  if (!out) {
    std::cerr << "vouchctl boot: cannot write " << f.output << "\n";
    return kCannot;
  }
  return kPass;
}

}  // namespace

void AddBootCommands(CLI::App& cli) {
  BootFlags& f = ParsedBootFlags();
  f.boot = cli.add_subcommand(
      "boot", "Measured boot: TCG event logs and boot policies (offline)");
  f.boot->require_subcommand(1);

  f.replay = f.boot->add_subcommand(
      "replay", "Print the PCR values an event log replays to, per bank");
  f.replay->add_option("--eventlog", f.eventlog, "Binary TCG event log")
      ->required();
  f.replay->add_flag("--json", f.json,
                     R"(JSON: {"sha256": {"0": "hex", ...}, ...})");

  f.check = f.boot->add_subcommand(
      "check",
      "Evaluate an event log against a reference state: exit 0 pass, 1 fail, "
      "2 could not evaluate");
  f.check->add_option("--eventlog", f.eventlog, "Binary TCG event log")
      ->required();
  f.check->add_option("--policy", f.policy, "Reference state (JSON)")
      ->required();
  f.check->add_option("--quoted", f.quoted,
                      "Quoted PCR values to compare with the replay (JSON "
                      "shaped like `replay --json`)");
  f.check->add_flag("--json", f.json, "Print the verdict as JSON");

  f.create = f.boot->add_subcommand(
      "create-policy", "Learn a reference state from a known-good event log");
  f.create->add_option("--eventlog", f.eventlog, "Binary TCG event log")
      ->required();
  AddFileFlags(f.create, &f.output, &f.legacy_output,
               "Where to write the reference state (default '-': stdout)");

  f.show =
      f.boot->add_subcommand("show", "Print the decoded events, one per line");
  f.show->add_option("--eventlog", f.eventlog, "Binary TCG event log")
      ->required();
}

std::optional<int> RunBootCommands(AppContext& ctx) {
  BootFlags& f = ParsedBootFlags();
  if (f.boot == nullptr || !f.boot->parsed()) return std::nullopt;
  // The global `-o json` / VOUCH_OUTPUT=json asks for JSON too.
  f.json = f.json || ctx.config.GetString("client", "output") == "json";
  if (f.replay->parsed()) return RunReplay(f);
  if (f.check->parsed()) return RunCheck(f);
  if (f.create->parsed()) {
    if (!ResolveFileFlags("boot create-policy", &f.output, f.legacy_output,
                          false)) {
      return kCannot;
    }
    return RunCreatePolicy(f);
  }
  if (f.show->parsed()) return RunShow(f);
  return kCannot;
}

}  // namespace vouch::tenant
