// vouchctl ima check|replay and policy create|convert|verify-signature (and
// policy sign, cmd_policy_sign.cc): the offline IMA tools over
// vouch::core_ima. Exit codes: 0 pass/ok, 1 fail (a
// verdict, or an invalid signature), 2 could not evaluate.
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/bytes.h"
#include "common/file.h"
#include "core/ima/dsse.h"
#include "core/ima/ima_evaluator.h"
#include "core/ima/ima_log.h"
#include "core/ima/runtime_policy.h"
#include "tenant/ima_parallel.h"
#include "tenant/offline_commands.h"
#include "tenant/output.h"

namespace vouch::tenant {
namespace {

namespace ima = vouch::core::ima;
using Json = nlohmann::json;

constexpr size_t kMaxLogBytes = size_t{4} << 30;
constexpr size_t kImaMaxPolicyBytes = size_t{1} << 30;
constexpr size_t kMaxSmallFile = size_t{16} << 20;

struct ImaFlags {
  CLI::App* ima = nullptr;
  CLI::App* check = nullptr;
  CLI::App* replay = nullptr;
  CLI::App* policy = nullptr;
  CLI::App* create = nullptr;
  CLI::App* convert = nullptr;
  CLI::App* verify = nullptr;
  std::string log;
  std::string policy_file;
  std::string policy_key;
  std::string pcr10;
  std::string bank;
  bool json = false;
  bool allow_violations = false;
  std::vector<std::string> boot_aggregates;
  std::vector<std::string> excludes;
  std::string output;
  std::string legacy_output;  // The hidden -o FILE.
  std::string allowlist;
  std::string excludelist;
  std::string key;
};

ImaFlags& ParsedImaFlags() {
  static ImaFlags flags;
  return flags;
}

int ImaCannotEvaluate(absl::string_view what) {
  std::cerr << "vouchctl: " << what << "\n";
  return 2;
}

absl::StatusOr<std::string> Read(const std::string& path, size_t max) {
  return ReadFileUpTo(path, max);
}

// A large input (log, policy) mapped read-only instead of copied: no
// buffer growth, no zero-filled pages. Falls back to reading for anything
// that is not a regular file (pipes, /dev/stdin).
class InputFile {
 public:
  static absl::StatusOr<std::unique_ptr<InputFile>> Open(
      const std::string& path, size_t max) {
    auto f = std::unique_ptr<InputFile>(new InputFile());
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      if (static_cast<uint64_t>(st.st_size) > max) {
        ::close(fd);
        return absl::OutOfRangeError(
            absl::StrCat(path, ": larger than ", max, " bytes"));
      }
      f->size_ = static_cast<size_t>(st.st_size);
      if (f->size_ > 0) {
        void* p = ::mmap(nullptr, f->size_, PROT_READ,
                         MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (p != MAP_FAILED) f->map_ = p;
      }
    }
    ::close(fd);
    if (f->map_ == nullptr && f->size_ > 0) f->size_ = 0;
    if (f->map_ == nullptr) {
      absl::StatusOr<std::string> text = ReadFileUpTo(path, max);
      if (!text.ok()) return text.status();
      f->copy_ = *std::move(text);
    }
    return f;
  }
  ~InputFile() {
    if (map_ != nullptr) ::munmap(map_, size_);
  }
  // Bytes after data() that may be read: the rest of a mapped file's last
  // page (zero-filled by the kernel).
  size_t readable_padding() const {
    if (map_ == nullptr) return 0;
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return size_ % page == 0 ? 0 : page - size_ % page;
  }
  absl::string_view data() const {
    return map_ != nullptr
               ? absl::string_view(static_cast<const char*>(map_), size_)
               : absl::string_view(copy_);
  }

 private:
  InputFile() = default;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::string copy_;
};

ima::PolicyLoadOptions LoadOptions(const ima::PathHashKey& key) {
  ima::PolicyLoadOptions o;
  o.path_hash_key = key;
  o.max_json_bytes = kImaMaxPolicyBytes;
  return o;
}

// A random key for the policy's path hash (see core/ima/README.md).
ima::PathHashKey RandomPathHashKey() {
  ima::PathHashKey key{};
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    key = {};  // Still correct; only collision-hardening is lost.
  }
  return key;
}

// Loads a policy file, verifying it first when it is a DSSE envelope.
absl::StatusOr<std::shared_ptr<const ima::RuntimePolicy>> LoadPolicy(
    const ImaFlags& f, const ima::PathHashKey& key) {
  absl::StatusOr<std::unique_ptr<InputFile>> file =
      InputFile::Open(f.policy_file, kImaMaxPolicyBytes);
  if (!file.ok()) return file.status();
  absl::string_view text = (*file)->data();
  // A bare policy first: no text is both (a policy's unknown keys, such as
  // an envelope's "payload", are refused), so a bare policy is not scanned
  // for the envelope's keys (5 % of a 200k-entry check), and only a signed
  // one pays for a parse that fails.
  ima::PolicyLoadOptions options = LoadOptions(key);
  options.readable_padding = (*file)->readable_padding();
  auto policy = ima::RuntimePolicy::FromJson(text, options);
  if (policy.ok()) {
    // Asked to check a signature, a policy without one is refused.
    if (!f.policy_key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.policy_file,
                       ": not a signed (DSSE) policy, and --policy-key "
                       "asks for its signature to be checked"));
    }
    return policy;
  }
  if (ima::IsDsseEnvelope(text)) {
    if (f.policy_key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.policy_file,
                       ": a signed (DSSE) policy needs "
                       "--policy-key"));
    }
    absl::StatusOr<std::string> public_key = Read(f.policy_key, kMaxSmallFile);
    if (!public_key.ok()) return public_key.status();
    absl::StatusOr<ima::DsseVerification> v =
        ima::VerifyDsseEnvelope(text, *public_key);
    if (!v.ok()) return v.status();
    if (!v->valid) {
      return absl::PermissionDeniedError(absl::StrCat(
          f.policy_file, ": the policy signature does not verify with ",
          f.policy_key));
    }
    return ima::RuntimePolicy::FromJson(v->payload, LoadOptions(key));
  }
  return absl::Status(
      policy.status().code(),
      absl::StrCat(f.policy_file, ": ", policy.status().message()));
}

Json PcrJson(const ima::ImaReplayState& s, const ima::ImaEvalOptions& o) {
  Json j = Json::object();
  if (o.replay_sha1) j["sha1"] = HexEncode(ByteSpan(s.pcr_sha1));
  if (o.replay_sha256) j["sha256"] = HexEncode(ByteSpan(s.pcr_sha256));
  return j;
}

// Shared by check and replay.
int RunEvaluate(const ImaFlags& f, bool with_policy) {
  ima::ImaEvalOptions options;
  options.allow_violations = f.allow_violations;
  options.boot_aggregates = f.boot_aggregates;
  if (!f.bank.empty()) {
    options.replay_sha1 = f.bank == "sha1";
    options.replay_sha256 = f.bank == "sha256";
  }
  std::optional<ima::QuotedPcr10> quoted;
  if (!f.pcr10.empty()) {
    absl::StatusOr<Bytes> pcr = HexDecode(f.pcr10);
    if (!pcr.ok())
      return ImaCannotEvaluate("--pcr10: " + pcr.status().ToString());
    std::string bank = f.bank;
    if (bank.empty()) bank = pcr->size() == 32 ? "sha256" : "sha1";
    quoted.emplace();
    if (bank == "sha1" && pcr->size() == 20) {
      quoted->sha1.emplace();
      std::copy(pcr->begin(), pcr->end(), quoted->sha1->begin());
    } else if (bank == "sha256" && pcr->size() == 32) {
      quoted->sha256.emplace();
      std::copy(pcr->begin(), pcr->end(), quoted->sha256->begin());
    } else {
      return ImaCannotEvaluate(
          "--pcr10 must be 40 hex digits (sha1) or 64 "
          "(sha256) and match --bank");
    }
  }
  // With a policy, it loads on a second thread while this one maps, parses
  // and replays the log (the integrity pass needs only the path-hash key);
  // the evaluation's own second thread waits for it and then checks the
  // content of the entries already replayed. A bad policy is reported before
  // a bad log, as when the two ran one after the other.
  const ima::PathHashKey key = RandomPathHashKey();
  std::future<absl::StatusOr<std::shared_ptr<const ima::RuntimePolicy>>>
      pending;
  if (with_policy) {
    pending = std::async(std::launch::async,
                         [&f, &key] { return LoadPolicy(f, key); });
  }
  absl::StatusOr<std::shared_ptr<const ima::RuntimePolicy>> policy = nullptr;
  auto await_policy = [&]() -> absl::StatusOr<const ima::RuntimePolicy*> {
    if (pending.valid()) policy = pending.get();
    if (!policy.ok()) return policy.status();
    return policy->get();
  };
  absl::StatusOr<std::unique_ptr<InputFile>> log =
      InputFile::Open(f.log, kMaxLogBytes);
  absl::StatusOr<ima::ImaEvaluation> result = absl::UnknownError("no log");
  if (log.ok() && with_policy) {
    result = EvaluateImaLogWhileLoading(ima::ImaReplayState{}, (*log)->data(),
                                        quoted, key, await_policy, options);
  } else if (log.ok()) {
    result = ima::EvaluateImaLog(ima::ImaReplayState{}, (*log)->data(), quoted,
                                 nullptr, options);
  }
  if (absl::Status s = await_policy().status(); !s.ok()) {
    return ImaCannotEvaluate(s.ToString());
  }
  if (!log.ok()) return ImaCannotEvaluate(log.status().ToString());
  if (!result.ok()) {
    return ImaCannotEvaluate(
        absl::StrCat(f.log, ": ", result.status().message()));
  }
  const ima::ImaEvaluation& r = *result;
  bool pass = r.verdict.passed();
  if (f.json) {
    Json j;
    if (with_policy) j["verdict"] = pass ? "pass" : "fail";
    j["entries"] = r.entries_parsed;
    j["entries_accepted"] = r.entries_accepted;
    j["format"] = r.format == ima::LogFormat::kAscii ? "ascii" : "binary";
    j["pcr10"] = PcrJson(r.state, options);
    j["pcr_checked"] = r.pcr_checked;
    Json failures = Json::array();
    for (const ima::ImaFailure& fl : r.failures) {
      failures.push_back(
          {{"index", fl.index},
           {"path", ima::DisplayPath(fl.path)},
           {"reason", std::string(ima::ImaReasonName(fl.reason))},
           {"detail", fl.detail}});
    }
    j["failures"] = std::move(failures);
    j["failure_count"] = r.failure_count;
    std::cout << j.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
  } else {
    if (with_policy) {
      std::cout << (pass ? "PASS" : "FAIL") << ": " << r.entries_parsed
                << " entries (" << r.entries_accepted << " accepted), "
                << r.failure_count << " failure(s)\n";
    } else {
      std::cout << "entries: " << r.entries_parsed << "\n";
    }
    if (options.replay_sha1) {
      std::cout << "pcr10 sha1:   " << HexEncode(ByteSpan(r.state.pcr_sha1))
                << "\n";
    }
    if (options.replay_sha256) {
      std::cout << "pcr10 sha256: " << HexEncode(ByteSpan(r.state.pcr_sha256))
                << "\n";
    }
    for (const ima::ImaFailure& fl : r.failures) {
      std::cout << "  entry " << fl.index << " "
                << ima::ImaReasonName(fl.reason) << " "
                << ima::DisplayPath(fl.path) << ": " << fl.detail << "\n";
    }
    if (r.failure_count > r.failures.size()) {
      std::cout << "  ... " << r.failure_count - r.failures.size() << " more\n";
    }
  }
  return pass ? 0 : 1;
}

int RunCreate(const ImaFlags& f) {
  absl::StatusOr<std::string> log = Read(f.log, kMaxLogBytes);
  if (!log.ok()) return ImaCannotEvaluate(log.status().ToString());
  // Learn only from a log whose template hashes hold.
  auto integrity = ima::EvaluateImaLog(ima::ImaReplayState{}, *log,
                                       std::nullopt, nullptr, [] {
                                         ima::ImaEvalOptions o;
                                         o.replay_sha256 = false;
                                         o.allow_violations = true;
                                         return o;
                                       }());
  if (!integrity.ok()) {
    return ImaCannotEvaluate(
        absl::StrCat(f.log, ": ", integrity.status().message()));
  }
  if (!integrity->verdict.passed()) {
    return ImaCannotEvaluate(
        absl::StrCat(f.log, ": not a known-good log: ",
                     integrity->verdict.failures().front().detail));
  }
  ima::PolicyDraft draft;
  draft.excludes = f.excludes;
  ima::ImaLogParser parser(*log);
  ima::ImaEntry e;
  size_t skipped = 0;
  while (true) {
    absl::StatusOr<bool> more = parser.Next(&e);
    if (!more.ok()) return ImaCannotEvaluate(more.status().ToString());
    if (!*more) break;
    draft.log_hash_alg = std::string(ima::HashAlgName(e.template_hash_alg));
    if (e.violation || !ima::IsValidUtf8(e.path)) {
      ++skipped;
      continue;
    }
    std::string hex = HexEncode(ByteSpan(e.digest, e.digest_size));
    auto& list = e.tmpl == ima::ImaTemplate::kImaBuf
                     ? draft.keyrings[std::string(e.path)]
                     : draft.digests[std::string(e.path)];
    if (std::find(list.begin(), list.end(), hex) == list.end()) {
      list.push_back(hex);
    }
  }
  absl::StatusOr<std::string> json = ima::WriteRuntimePolicy(draft);
  if (!json.ok()) return ImaCannotEvaluate(json.status().ToString());
  // Prove the result loads (bad --exclude regexes are caught here).
  if (auto check = ima::RuntimePolicy::FromJson(*json); !check.ok()) {
    return ImaCannotEvaluate(check.status().ToString());
  }
  if (absl::Status s = WriteFile(f.output, *json); !s.ok()) {
    return ImaCannotEvaluate(s.ToString());
  }
  std::cerr << "vouchctl: wrote " << f.output << " (" << draft.digests.size()
            << " paths, " << draft.keyrings.size() << " keyrings";
  if (skipped > 0) {
    std::cerr << "; skipped " << skipped << " violation or non-UTF-8 entries";
  }
  std::cerr << ")\n";
  return 0;
}

int RunConvert(const ImaFlags& f) {
  absl::StatusOr<std::string> allow = Read(f.allowlist, kImaMaxPolicyBytes);
  if (!allow.ok()) return ImaCannotEvaluate(allow.status().ToString());
  std::string excl;
  if (!f.excludelist.empty()) {
    absl::StatusOr<std::string> e = Read(f.excludelist, kMaxSmallFile);
    if (!e.ok()) return ImaCannotEvaluate(e.status().ToString());
    excl = *std::move(e);
  }
  absl::StatusOr<ima::PolicyDraft> draft = ima::ConvertAllowlist(*allow, excl);
  if (!draft.ok()) return ImaCannotEvaluate(draft.status().ToString());
  absl::StatusOr<std::string> json = ima::WriteRuntimePolicy(*draft);
  if (!json.ok()) return ImaCannotEvaluate(json.status().ToString());
  if (absl::Status s = WriteFile(f.output, *json); !s.ok()) {
    return ImaCannotEvaluate(s.ToString());
  }
  return 0;
}

int RunVerifySignature(const ImaFlags& f) {
  absl::StatusOr<std::string> env = Read(f.policy_file, kImaMaxPolicyBytes);
  if (!env.ok()) return ImaCannotEvaluate(env.status().ToString());
  absl::StatusOr<std::string> key = Read(f.key, kMaxSmallFile);
  if (!key.ok()) return ImaCannotEvaluate(key.status().ToString());
  absl::StatusOr<ima::DsseVerification> v = ima::VerifyDsseEnvelope(*env, *key);
  if (!v.ok()) return ImaCannotEvaluate(v.status().ToString());
  std::cout << (v->valid ? "valid" : "INVALID") << ": " << f.policy_file
            << "\n";
  return v->valid ? 0 : 1;
}

}  // namespace

void AddImaCommands(CLI::App& cli) {
  ImaFlags& f = ParsedImaFlags();
  f.ima = cli.add_subcommand("ima", "Offline IMA log checks");
  f.ima->require_subcommand(1);
  f.check = f.ima->add_subcommand(
      "check",
      "Check an IMA log against a runtime policy (exit 0 pass, "
      "1 fail, 2 could not evaluate)");
  f.check->add_option("--log", f.log, "IMA log (ascii or binary)")->required();
  f.check
      ->add_option("--policy", f.policy_file,
                   "Keylime runtime policy (JSON, or DSSE-signed)")
      ->required();
  f.check->add_option("--policy-key", f.policy_key,
                      "PEM key or certificate that signed a DSSE policy "
                      "(an unsigned policy is then refused)");
  f.check->add_option("--pcr10", f.pcr10,
                      "Quoted PCR 10 (hex); accept the shortest prefix "
                      "that replays to it");
  f.check->add_option("--bank", f.bank, "PCR bank to replay")
      ->check(CLI::IsMember({"sha1", "sha256"}));
  f.check->add_flag("--json", f.json, "One JSON object on stdout");
  f.check->add_flag("--allow-violations", f.allow_violations,
                    "Do not fail on ToMToU/open-writers violation entries");
  f.check->add_option("--boot-aggregate", f.boot_aggregates,
                      "Also accept this boot_aggregate digest (hex)");

  f.replay = f.ima->add_subcommand(
      "replay", "Replay an IMA log and print the final PCR 10");
  f.replay->add_option("--log", f.log, "IMA log (ascii or binary)")->required();
  f.replay->add_option("--bank", f.bank, "PCR bank to replay")
      ->check(CLI::IsMember({"sha1", "sha256"}));
  f.replay->add_flag("--json", f.json, "One JSON object on stdout");

  // Offline runtime policy files; the server's policy objects are
  // `policies`. `policy` is the hidden spelling of one release ago.
  f.policy = cli.add_subcommand(
      "policy-file",
      "Runtime policy files, offline: create, convert, sign, verify");
  f.policy->alias("policy");
  f.policy->require_subcommand(1);
  f.create = f.policy->add_subcommand(
      "create", "Learn a runtime policy from a known-good IMA log");
  f.create->add_option("--from-ima-log", f.log, "IMA log")->required();
  f.create->add_option("--exclude", f.excludes, "Exclude regex (repeatable)");
  AddFileFlags(f.create, &f.output, &f.legacy_output,
               "Policy file to write (required)");
  f.convert = f.policy->add_subcommand(
      "convert", "Convert a legacy allowlist (+ exclude list) to a policy");
  f.convert
      ->add_option("--allowlist", f.allowlist, "Lines '<hex digest>  <path>'")
      ->required();
  f.convert->add_option("--excludelist", f.excludelist, "One regex per line");
  AddFileFlags(f.convert, &f.output, &f.legacy_output,
               "Policy file to write (required)");
  f.verify = f.policy->add_subcommand(
      "verify-signature",
      "Verify a DSSE-signed policy (exit 0 valid, 1 invalid, 2 error)");
  f.verify->alias("verify");
  f.verify->add_option("--policy", f.policy_file, "Signed policy")->required();
  f.verify->add_option("--key", f.key, "PEM public key or certificate")
      ->required();
  AddPolicySignCommand(*f.policy);
}

std::optional<int> RunImaCommands(AppContext& /*ctx*/) {
  ImaFlags& f = ParsedImaFlags();
  if (f.check == nullptr) return std::nullopt;
  if (f.check->parsed()) return RunEvaluate(f, true);
  if (f.replay->parsed()) return RunEvaluate(f, false);
  if (f.create->parsed() || f.convert->parsed()) {
    if (!ResolveFileFlags(
            f.create->parsed() ? "policy-file create" : "policy-file convert",
            &f.output, f.legacy_output, true)) {
      return 2;
    }
    return f.create->parsed() ? RunCreate(f) : RunConvert(f);
  }
  if (f.verify->parsed()) return RunVerifySignature(f);
  if (std::optional<int> code = RunPolicySignCommand()) return code;
  return std::nullopt;
}

}  // namespace vouch::tenant
