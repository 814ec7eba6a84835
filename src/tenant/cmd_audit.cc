// vouchctl audit: the offline audit of durable attestation (docs/audit.md).
// `audit export --agent ID --at TIME -f BUNDLE` asks a verifier for the
// bundle of the record in force at TIME (Admin ExportAudit) and writes it;
// `audit verify BUNDLE [--ek-ca DIR] [--log-key PEM]` re-verifies a bundle
// with no server (core/audit: the bundle is untrusted, bounded input; with
// --log-key its transparency-log proofs too).
// Exit codes of verify: 0 pass, 1 fail, 2 the bundle itself does not
// verify (naming the part) or bad usage; export: 0 written, 1 refused (no
// record then, its evidence not kept, not allowed), 2 otherwise.
#include <openssl/rand.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file.h"
#include "core/audit/bundle.h"
#include "core/tpm/ek_cert.h"
#include "sdk/client.h"
#include "tenant/cli_common.h"
#include "tenant/offline_commands.h"
#include "vouch/v1/admin.grpc.pb.h"

namespace vouch::tenant {
namespace {

struct AuditCommandArgs {
  std::string agent_id;
  std::string tenant;
  std::string at;
  std::string file;
  std::string bundle;
  std::string ek_ca;
  std::string log_key;
};

AuditCommandArgs& ParsedAuditCommandArgs() {
  static AuditCommandArgs* args = new AuditCommandArgs();
  return *args;
}

CLI::App* audit_cmd = nullptr;
CLI::App* export_cmd = nullptr;
CLI::App* audit_verify_cmd = nullptr;

constexpr size_t kMaxCaFiles = 256;
constexpr size_t kMaxCaFileBytes = 1 << 20;
constexpr size_t kMaxLogKeyBytes = 64 << 10;

int AuditFail(const std::string& what, const absl::Status& st) {
  std::cerr << "vouchctl audit " << what << ": " << st.message() << "\n";
  return 2;
}

int RunExport(AppContext& ctx) {
  const AuditCommandArgs& a = ParsedAuditCommandArgs();
  absl::Time at;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, a.at, &at, &err)) {
    return AuditFail("export", absl::InvalidArgumentError(
                                   absl::StrCat("--at: not RFC 3339: ", err)));
  }
  std::string server;
  std::unique_ptr<sdk::Client> client = AdminClient(ctx, "audit", &server);
  if (client == nullptr) return 2;
  v1::ExportAuditRequest req;
  req.set_tenant(a.tenant);
  req.set_agent_id(a.agent_id);
  const int64_t us = absl::ToUnixMicros(at);
  const int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
  req.mutable_at()->set_seconds(secs);
  req.mutable_at()->set_nanos(
      static_cast<int32_t>((us - secs * 1000000) * 1000));
  v1::AuditBundle bundle;
  if (absl::Status st =
          client->Call(&v1::Admin::Stub::ExportAudit, req, &bundle);
      !st.ok()) {
    return RpcError("audit export", st, server, Service::kVerifier);
  }
  absl::StatusOr<std::string> json = core::audit::BundleJson(bundle);
  if (!json.ok()) return AuditFail("export", json.status());
  if (absl::Status st = WriteFileAtomic(a.file, *json + "\n", 0644); !st.ok()) {
    return AuditFail("export", st);
  }
  std::cout << "wrote " << a.file << " (record "
            << bundle.record().attestation_id() << " of "
            << Rfc3339(bundle.record().verified_at()) << "; "
            << (bundle.has_log() ? "with" : "without")
            << " transparency-log proofs)\n";
  return 0;
}

// Every regular file of DIR, each a PEM or DER certificate.
absl::StatusOr<std::vector<std::string>> ReadCaDir(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    if (out.size() >= kMaxCaFiles) {
      return absl::InvalidArgumentError("--ek-ca: over 256 files");
    }
    absl::StatusOr<std::string> text =
        ReadFileUpTo(entry.path().string(), kMaxCaFileBytes);
    if (!text.ok()) return text.status();
    out.push_back(*std::move(text));
  }
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--ek-ca ", dir, ": ", ec.message()));
  }
  return out;
}

int AuditReport(AppContext& ctx, const core::audit::AuditResult& r,
                const v1::AuditBundle* b) {
  using Kind = core::audit::AuditResult::Kind;
  const std::string state = r.kind == Kind::kPass   ? "pass"
                            : r.kind == Kind::kFail ? "fail"
                                                    : "invalid";
  // The verdict the record was committed (and logged) with: a pass can
  // audit as a fail, since the audit judges the whole boot against the
  // record's one policy version (docs/audit.md).
  const bool record_passed =
      b != nullptr && b->record().state() == v1::ATTESTATION_STATE_PASS;
  if (ctx.config.GetString("client", "output") == "json") {
    nlohmann::json j{{"state", state}};
    if (r.kind == Kind::kInvalid) {
      j["part"] = r.part;
      j["reason"] = r.reason;
    } else {
      j["agent_id"] = b->agent_id();
      j["attestation_id"] = b->record().attestation_id();
      j["verified_at"] = Rfc3339(b->record().verified_at());
      j["record_state"] = record_passed ? "pass" : "fail";
      j["ek_chain_checked"] = r.ek_chain_checked;
      j["log"] = !b->has_log()   ? "absent"
                 : r.log_checked ? "checked"
                                 : "not checked";
      nlohmann::json reasons = nlohmann::json::array();
      for (const v1::Failure& f : r.failures) {
        reasons.push_back({{"code", v1::FailureCode_Name(f.code())},
                           {"path", f.path()},
                           {"detail", f.detail()}});
      }
      j["reasons"] = reasons;
      j["reasons_truncated"] = r.failures_truncated;
    }
    std::cout << j.dump(2) << "\n";
  } else if (r.kind == Kind::kInvalid) {
    std::cout << "invalid: " << r.part << ": " << r.reason << "\n";
  } else {
    std::cout << state << "\n";
    for (const v1::Failure& f : r.failures) {
      std::cout << "  " << v1::FailureCode_Name(f.code());
      if (!f.path().empty()) std::cout << " " << f.path();
      if (!f.detail().empty()) std::cout << ": " << f.detail();
      std::cout << "\n";
    }
    if (r.kind == Kind::kFail && record_passed) {
      std::cout << "the record itself passed: the entries above were "
                   "accepted as they arrived (by an earlier policy version "
                   "or an update window); the audit judges the whole boot "
                   "against the record's policy version\n";
    }
    std::cout << "record " << b->record().attestation_id() << " of "
              << Rfc3339(b->record().verified_at()) << "; EK chain "
              << (r.ek_chain_checked ? "checked" : "not checked (no --ek-ca)")
              << "; log "
              << (!b->has_log()   ? "absent"
                  : r.log_checked ? "checked"
                                  : "not checked (no --log-key)")
              << "\n";
  }
  return r.kind == Kind::kPass ? 0 : r.kind == Kind::kFail ? 1 : 2;
}

int AuditRunVerify(AppContext& ctx) {
  const AuditCommandArgs& a = ParsedAuditCommandArgs();
  absl::StatusOr<std::string> text =
      ReadFileUpTo(a.bundle, core::audit::kMaxBundleBytes);
  if (!text.ok()) return AuditFail("verify", text.status());
  absl::StatusOr<v1::AuditBundle> bundle = core::audit::ParseBundle(*text);
  if (!bundle.ok()) {
    core::audit::AuditResult r;
    r.part = "bundle";
    r.reason = std::string(bundle.status().message());
    return AuditReport(ctx, r, nullptr);
  }
  core::audit::AuditOptions options;
  std::unique_ptr<core::tpm::EkCertVerifier> cas;
  if (!a.ek_ca.empty()) {
    absl::StatusOr<std::vector<std::string>> certs = ReadCaDir(a.ek_ca);
    if (!certs.ok()) return AuditFail("verify", certs.status());
    auto created = core::tpm::EkCertVerifier::Create(*certs);
    if (!created.ok()) return AuditFail("verify", created.status());
    cas = *std::move(created);
    options.ek_cas = cas.get();
  }
  if (!a.log_key.empty()) {
    absl::StatusOr<std::string> key = ReadFileUpTo(a.log_key, kMaxLogKeyBytes);
    if (!key.ok()) return AuditFail("verify", key.status());
    options.log_key_pem = *std::move(key);
  }
  RAND_bytes(options.path_hash_key.data(), options.path_hash_key.size());
  core::audit::AuditResult r =
      core::audit::VerifyBundle(*bundle, options, absl::Now());
  return AuditReport(ctx, r, &*bundle);
}

}  // namespace

void AddAuditCommands(CLI::App& cli) {
  AuditCommandArgs& a = ParsedAuditCommandArgs();
  audit_cmd = cli.add_subcommand(
      "audit", "Offline audit: an agent's attested state at a past moment");
  audit_cmd->require_subcommand(1);
  export_cmd = audit_cmd->add_subcommand(
      "export", "Write the audit bundle of an agent at a moment (a verifier)");
  export_cmd->add_option("--agent", a.agent_id, "The agent")->required();
  export_cmd->add_option("--at", a.at, "The moment, RFC 3339")->required();
  export_cmd->add_option("--file,-f", a.file, "Bundle file to write")
      ->required();
  export_cmd->add_option("--tenant", a.tenant,
                         "Tenant (default: your certificate's only tenant)");
  audit_verify_cmd = audit_cmd->add_subcommand(
      "verify",
      "Re-verify a bundle without any server: exit 0 pass, 1 fail, 2 the "
      "bundle does not verify");
  audit_verify_cmd->add_option("bundle", a.bundle, "Bundle file")->required();
  audit_verify_cmd->add_option("--ek-ca", a.ek_ca,
                               "Directory of EK CA certificates (PEM or DER)");
  audit_verify_cmd->add_option("--log-key", a.log_key,
                               "The transparency log's public key (PEM): check "
                               "the bundle's log proofs (required then)");
}

std::optional<int> RunAuditCommands(AppContext& ctx) {
  if (audit_cmd == nullptr || !audit_cmd->parsed()) return std::nullopt;
  if (audit_verify_cmd->parsed()) return AuditRunVerify(ctx);
  return RunExport(ctx);
}

}  // namespace vouch::tenant
