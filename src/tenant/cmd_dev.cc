// vouchctl dev ima-append --tcti TCTI --log FILE PATH...: a development
// tool that models the kernel's IMA for demos and tests. For each PATH it
// measures the file (SHA-256), appends an ima-ng entry to FILE (in FILE's
// format, ASCII for a new file, SHA-1 template-hash column like the kernel's
// default lists) and then extends PCR 10 in the TPM: the SHA-1 bank with the
// template hash, the SHA-256 bank with the SHA-256 of the template data (as
// kernels with a SHA-256 bank do). The entry is written and synced before
// the extend, like the kernel: the log may run ahead of PCR 10, never
// behind. The TPM is opened only for the command (swtpm serves one
// connection at a time). Exit 0 ok, 2 unreadable file, TPM error or usage.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/bytes.h"
#include "common/file.h"
#include "core/ima/hash_alg.h"
#include "core/ima/ima_log.h"
#include "core/ima/ima_log_writer.h"
#include "tenant/offline_commands.h"
#include "tpm/esys_tpm.h"

namespace vouch::tenant {
namespace {

namespace cima = ::vouch::core::ima;

struct DevArgs {
  std::string tcti;
  std::string log;
  std::vector<std::string> paths;
};

DevArgs& ParsedDevArgs() {
  static DevArgs* args = new DevArgs();
  return *args;
}

CLI::App* dev_cmd = nullptr;
CLI::App* append_cmd = nullptr;

constexpr size_t kMaxMeasuredBytes = size_t{1} << 30;

int DevFail(const std::string& what) {
  std::cerr << "vouchctl dev ima-append: " << what << "\n";
  return 2;
}

absl::Status AppendSynced(const std::string& path, const std::string& data) {
  const int fd =
      open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat(path, ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return absl::UnavailableError(
          absl::StrCat(path, ": ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = fsync(fd) == 0;
  close(fd);
  if (!synced) return absl::UnavailableError(absl::StrCat(path, ": fsync"));
  return absl::OkStatus();
}

int RunAppend() {
  const DevArgs& a = ParsedDevArgs();
  // Measure everything first: a missing file appends nothing.
  std::vector<cima::ImaRecord> records;
  for (const std::string& p : a.paths) {
    absl::StatusOr<std::string> content = ReadFileUpTo(p, kMaxMeasuredBytes);
    if (!content.ok()) return DevFail(std::string(content.status().message()));
    cima::ImaRecord r;
    r.tmpl = cima::ImaTemplate::kImaNg;
    r.digest_alg = cima::HashAlg::kSha256;
    r.digest.resize(32);
    cima::Digester(cima::HashAlg::kSha256).Digest(*content, r.digest.data());
    char cwd[4096];
    r.path = !p.empty() && p[0] == '/'            ? p
             : getcwd(cwd, sizeof cwd) != nullptr ? absl::StrCat(cwd, "/", p)
                                                  : p;
    records.push_back(std::move(r));
  }
  absl::StatusOr<std::string> existing = ReadFileUpTo(a.log, size_t{1} << 30);
  cima::LogFormat format = cima::LogFormat::kAscii;
  uint64_t index = 0;
  if (existing.ok() && !existing->empty()) {
    format = cima::DetectLogFormat(*existing);
    cima::ImaLogParser parser(*existing, 0, std::nullopt,
                              cima::ParseMode::kContentOnly);
    cima::ImaEntry e;
    while (true) {
      absl::StatusOr<bool> more = parser.Next(&e);
      if (!more.ok()) {
        return DevFail(absl::StrCat(a.log, ": ", more.status().message()));
      }
      if (!*more) break;
    }
    index = parser.next_index();
  }
  absl::StatusOr<std::unique_ptr<tpm::EsysTpm>> t = tpm::EsysTpm::Open(a.tcti);
  if (!t.ok()) return DevFail(std::string(t.status().message()));
  cima::ImaLogWriter writer;
  cima::Digester sha1(cima::HashAlg::kSha1);
  cima::Digester sha256(cima::HashAlg::kSha256);
  for (const cima::ImaRecord& r : records) {
    std::string entry;
    writer.Append(r, &entry, format);
    if (absl::Status s = AppendSynced(a.log, entry); !s.ok()) {
      return DevFail(std::string(s.message()));
    }
    const std::string data = cima::BuildTemplateData(r);
    uint8_t h1[20];
    uint8_t h256[32];
    sha1.Digest(data, h1);
    sha256.Digest(data, h256);
    for (auto [alg, digest] :
         {std::pair<TPMI_ALG_HASH, ByteSpan>{TPM2_ALG_SHA1, ByteSpan(h1, 20)},
          std::pair<TPMI_ALG_HASH, ByteSpan>{TPM2_ALG_SHA256,
                                             ByteSpan(h256, 32)}}) {
      if (absl::Status s = (*t)->PcrExtend(10, alg, digest); !s.ok()) {
        return DevFail(absl::StrCat("extending PCR 10: ", s.message()));
      }
    }
    std::cout << index++ << " sha256:" << HexEncode(r.digest) << " " << r.path
              << "\n";
  }
  return 0;
}

}  // namespace

void AddDevCommands(CLI::App& cli) {
  DevArgs& a = ParsedDevArgs();
  dev_cmd = cli.add_subcommand(
      "dev", "Development tools (demos and tests; not for production)");
  dev_cmd->require_subcommand(1);
  append_cmd = dev_cmd->add_subcommand(
      "ima-append",
      "Measure files like the kernel's IMA: append ima-ng entries to a log "
      "and extend PCR 10 in a (software) TPM");
  append_cmd->add_option("--tcti", a.tcti, "TPM, e.g. swtpm:host=H,port=P")
      ->required();
  append_cmd->add_option("--log", a.log, "Measurement list to append to")
      ->required();
  append_cmd->add_option("paths", a.paths, "Files to measure")->required();
}

std::optional<int> RunDevCommands(AppContext&) {
  if (append_cmd == nullptr || !append_cmd->parsed()) return std::nullopt;
  return RunAppend();
}

}  // namespace vouch::tenant
