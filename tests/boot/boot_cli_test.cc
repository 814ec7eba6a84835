// `vouchctl boot` end to end, and the replay cross-checked against
// tpm2_eventlog (Debian's tpm2-tools) on every real log.
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "boot/test_data.h"
#include "harness/process.h"
#include "harness/temp_dir.h"

namespace vouch::core::boot {
namespace {

using vouch::testing::TempDir;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Result Run(const std::vector<std::string>& argv) {
  vouch::testing::RunResult run =
      vouch::testing::RunCapture(argv, {}, std::chrono::seconds(60));
  INFO(run.status.ToString() << "\n" << run.err);
  REQUIRE(run.status.exited);  // Never a crash.
  return Result{run.status.code, run.out, run.err};
}

// Writes the (decoded) test log into `dir` and returns its path.
std::string LogFile(const TempDir& dir, const std::string& name) {
  std::string path = dir.Join(absl::StrReplaceAll(name, {{"/", "_"}}));
  Bytes bytes = testing::ReadTestLog(name);
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  return path;
}

using Banks = std::map<std::string, std::map<std::string, std::string>>;

// The final "pcrs:" section of tpm2_eventlog's YAML:
//   pcrs:
//     sha256:
//       0  : 0xabc...
Banks ParseTpm2Pcrs(const std::string& yaml) {
  Banks banks;
  size_t at = yaml.rfind("\npcrs:\n");
  REQUIRE(at != std::string::npos);
  std::string bank;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(yaml).substr(at + 7), '\n')) {
    if (line.empty()) continue;
    if (absl::StartsWith(line, "    ")) {
      std::vector<std::string> kv = absl::StrSplit(line, ':');
      REQUIRE(kv.size() == 2);
      std::string index(absl::StripAsciiWhitespace(kv[0]));
      absl::string_view value = absl::StripAsciiWhitespace(kv[1]);
      REQUIRE(absl::ConsumePrefix(&value, "0x"));
      banks[bank][index] = std::string(value);
    } else if (absl::StartsWith(line, "  ")) {
      bank =
          std::string(absl::StripSuffix(absl::StripAsciiWhitespace(line), ":"));
    } else {
      break;
    }
  }
  return banks;
}

Banks ParseOurs(const std::string& json) {
  nlohmann::json doc = nlohmann::json::parse(json);
  Banks banks;
  for (const auto& [bank, pcrs] : doc.items()) {
    for (const auto& [index, value] : pcrs.items()) {
      banks[bank][index] = value.get<std::string>();
    }
  }
  return banks;
}

TEST_CASE("boot: a generated SHA-1 log replays like tpm2_eventlog", "[e2e]") {
  auto dir = TempDir::Create("boot-sha1-");
  REQUIRE(dir.ok());
  auto replay = [&](const std::string& file, const Bytes& log) {
    std::string path = dir->Join(file);
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(log.data()),
               static_cast<std::streamsize>(log.size()));
    Result ours =
        Run({VOUCHCTL_BIN, "boot", "replay", "--eventlog", path, "--json"});
    Result theirs = Run({"tpm2_eventlog", path});
    REQUIRE(ours.code == 0);
    REQUIRE(theirs.code == 0);
    return std::make_pair(ParseOurs(ours.out), ParseTpm2Pcrs(theirs.out));
  };
  Bytes plain = testing::Concat({
      testing::Sha1Event(0, 0x8, "N40ET41W"),
      testing::Sha1Event(0, 0x1, "POST"),
      testing::Sha1Event(4, 0x5, "Calling"),
      testing::Sha1Event(7, 0x4, std::string(4, '\0')),
      testing::Sha1Event(23, 0xD, "last PCR"),
  });
  auto [mine, reference] = replay("plain.log", plain);
  CHECK(mine == reference);
  CHECK(mine["sha1"].size() == 4);  // PCRs 0, 4, 7, 23.

  // An EV_NO_ACTION event changes nothing for us; tpm2-tools 5.4 extends it
  // into PCR 0 (its issue 3224), so only PCR 0 differs there.
  Bytes with_no_action =
      testing::Concat({plain, testing::Sha1Event(0, 0x3, "not extended")});
  auto [mine2, reference2] = replay("no_action.log", with_no_action);
  CHECK(mine2 == mine);
  CHECK(reference2["sha1"]["0"] != mine2["sha1"]["0"]);
  reference2["sha1"].erase("0");
  mine2["sha1"].erase("0");
  CHECK(mine2 == reference2);
}

TEST_CASE("boot: replay equals tpm2_eventlog's pcrs on every real log",
          "[e2e]") {
  auto dir = TempDir::Create("boot-tpm2-");
  REQUIRE(dir.ok());
  for (const std::string& name : testing::GoodLogNames()) {
    INFO(name);
    std::string path = LogFile(*dir, name);
    Result ours =
        Run({VOUCHCTL_BIN, "boot", "replay", "--eventlog", path, "--json"});
    REQUIRE(ours.code == 0);
    Banks mine = ParseOurs(ours.out);
    Result theirs = Run({"tpm2_eventlog", path});

    if (name == "go-attestation/short_no_action_eventlog") {
      // tpm2_eventlog 5.4 takes any leading EV_NO_ACTION for a Spec ID
      // event and rejects this SHA-1 log ("invalid eventDataSize in specid
      // event"). We read it as a SHA-1 log whose only event sets the startup
      // locality (docs/boot.md).
      CHECK(theirs.code != 0);
      CHECK(absl::StrContains(theirs.err, "specid"));
      CHECK(mine == Banks{{"sha1", {{"0", std::string(39, '0') + "3"}}}});
      continue;
    }
    REQUIRE(theirs.code == 0);
    Banks reference = ParseTpm2Pcrs(theirs.out);
    if (name == "keylime/binary_bios_measurements") {
      // tpm2-tools 5.4 extends EV_NO_ACTION events (tpm2-tools issue 3224,
      // fixed later) and ignores StartupLocality (PR 3242): its PCR 0
      // differs. Every other PCR must match; PCR 0 is checked against an
      // independent computation in event_log_test.cc.
      for (auto& [bank, pcrs] : reference) {
        CHECK(mine[bank]["0"] != pcrs["0"]);
        pcrs.erase("0");
        mine[bank].erase("0");
      }
    }
    CHECK(mine == reference);
  }
}

TEST_CASE("boot: bogus and truncated logs exit 2 with a clear error", "[e2e]") {
  auto dir = TempDir::Create("boot-bad-");
  REQUIRE(dir.ok());
  std::string bogus = LogFile(*dir, "keylime/binary_bios_measurements-bogus");
  Bytes good = testing::ReadTestLog("keylime/binary_bios_measurements");
  std::string truncated = dir->Join("truncated");
  std::ofstream(truncated, std::ios::binary)
      .write(reinterpret_cast<const char*>(good.data()), 20000);
  std::string policy = dir->Join("empty.json");
  std::ofstream(policy) << "{}";
  for (const std::string& log : {bogus, truncated}) {
    for (const std::vector<std::string>& args :
         std::vector<std::vector<std::string>>{
             {"replay", "--json"},
             {"show"},
             {"create-policy", "-f", dir->Join("out.json")},
             {"check", "--policy", policy}}) {
      std::vector<std::string> argv = {VOUCHCTL_BIN, "boot"};
      argv.insert(argv.end(), args.begin(), args.end());
      argv.insert(argv.end(), {"--eventlog", log});
      Result r = Run(argv);
      INFO(args[0] << " " << log << ": " << r.err);
      CHECK(r.code == 2);
      CHECK(absl::StrContains(r.err, "event log entry"));
      CHECK(r.err.find('\n') == r.err.size() - 1);  // One line.
    }
  }
  Result missing = Run({VOUCHCTL_BIN, "boot", "show", "--eventlog",
                        dir->Join("does-not-exist")});
  CHECK(missing.code == 2);
}

TEST_CASE("boot: create-policy then check: pass, fail, empty, exit codes",
          "[e2e]") {
  auto dir = TempDir::Create("boot-check-");
  REQUIRE(dir.ok());
  const std::string name = "keylime/binary_bios_measurements-secureboot";
  std::string log = LogFile(*dir, name);
  std::string refstate = dir->Join("refstate.json");
  // -o on the subcommand is the output file, not the global --output.
  Result created = Run({VOUCHCTL_BIN, "boot", "create-policy", "--eventlog",
                        log, "-f", refstate});
  REQUIRE(created.code == 0);
  CHECK(created.out.empty());
  nlohmann::json doc = nlohmann::json::parse(ReadFile(refstate));
  CHECK(doc["has_secureboot"] == true);

  Result pass = Run({VOUCHCTL_BIN, "boot", "check", "--eventlog", log,
                     "--policy", refstate, "--json"});
  CHECK(pass.code == 0);
  CHECK(nlohmann::json::parse(pass.out)["passed"] == true);

  // The same log with the SecureBoot variable cleared.
  Bytes bytes = testing::ReadTestLog(name);
  EventLog parsed = testing::MustParse(bytes);
  size_t at = testing::DataOffset(parsed, parsed.events[4]) +
              parsed.events[4].data.size() - 1;
  REQUIRE(bytes[at] == 1);
  bytes[at] = 0;
  std::string tampered = dir->Join("tampered");
  std::ofstream(tampered, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  Result fail = Run({VOUCHCTL_BIN, "boot", "check", "--eventlog", tampered,
                     "--policy", refstate});
  CHECK(fail.code == 1);
  CHECK(absl::StartsWith(fail.out, "FAIL\n"));
  CHECK(absl::StrContains(fail.out, "boot.secureboot: event 4 (PCR 7"));

  std::string empty = dir->Join("empty.json");
  std::ofstream(empty) << "{}\n";
  Result rejected = Run({VOUCHCTL_BIN, "boot", "check", "--eventlog", log,
                         "--policy", empty, "--json"});
  CHECK(rejected.code == 1);
  CHECK(nlohmann::json::parse(rejected.out)["failures"][0]["rule"] ==
        "boot.refstate");

  std::string broken = dir->Join("broken.json");
  std::ofstream(broken) << "{\"kernels\": 1";
  Result cannot = Run(
      {VOUCHCTL_BIN, "boot", "check", "--eventlog", log, "--policy", broken});
  CHECK(cannot.code == 2);
  CHECK(absl::StrContains(cannot.err, "not valid JSON"));

  // Quoted PCRs: the replay itself passes; one changed PCR fails.
  Result replay =
      Run({VOUCHCTL_BIN, "boot", "replay", "--eventlog", log, "--json"});
  REQUIRE(replay.code == 0);
  std::string quoted = dir->Join("quoted.json");
  std::ofstream(quoted) << replay.out;
  CHECK(Run({VOUCHCTL_BIN, "boot", "check", "--eventlog", log, "--policy",
             refstate, "--quoted", quoted})
            .code == 0);
  nlohmann::json q = nlohmann::json::parse(replay.out);
  q["sha256"]["7"] = std::string(64, '0');
  std::ofstream(quoted, std::ios::trunc) << q.dump();
  Result mismatch = Run({VOUCHCTL_BIN, "boot", "check", "--eventlog", log,
                         "--policy", refstate, "--quoted", quoted});
  CHECK(mismatch.code == 1);
  CHECK(absl::StrContains(mismatch.out, "boot.pcr_quote: sha256 PCR 7"));
}

TEST_CASE("boot: show prints one line per event", "[e2e]") {
  auto dir = TempDir::Create("boot-show-");
  REQUIRE(dir.ok());
  const std::string name = "keylime/binary_bios_measurements-secureboot";
  std::string log = LogFile(*dir, name);
  Result r = Run({VOUCHCTL_BIN, "boot", "show", "--eventlog", log});
  REQUIRE(r.code == 0);
  std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  CHECK(lines.size() ==
        testing::MustParse(testing::ReadTestLog(name)).events.size());
  CHECK(absl::StrContains(lines[4], "PCR  7 EV_EFI_VARIABLE_DRIVER_CONFIG"));
  CHECK(absl::StrContains(lines[4], "SecureBoot"));
  CHECK(absl::StrContains(lines[4], "enabled"));
  CHECK(absl::StrContains(lines[29], "shimx64.efi"));
}

}  // namespace
}  // namespace vouch::core::boot

namespace vouch::core::boot {
namespace {

TEST_CASE("boot: the global -o json also selects JSON", "[e2e]") {
  auto dir = TempDir::Create("boot-json-");
  REQUIRE(dir.ok());
  std::string log = LogFile(*dir, "keylime/mb_log.b64");
  Result flag =
      Run({VOUCHCTL_BIN, "boot", "replay", "--eventlog", log, "--json"});
  Result global =
      Run({VOUCHCTL_BIN, "-o", "json", "boot", "replay", "--eventlog", log});
  REQUIRE(flag.code == 0);
  CHECK(global.code == 0);
  CHECK(global.out == flag.out);
  CHECK(nlohmann::json::parse(flag.out)["sha256"]["0"] ==
        "9d24421442591dbdb8e8220ae8f26e7ebac76eb52cf3ced2d2b753d747e37b88");
}

}  // namespace
}  // namespace vouch::core::boot
