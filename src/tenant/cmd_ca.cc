// vouchctl ca: one-command TLS for an install (sdk/ca.h). `ca init DIR`
// creates the CA; `ca issue DIR --server NAME | --client NAME | --agent ID`
// issues an ECDSA P-256 certificate into its own directory. Local files only.
// Exit 0 ok, 1 refused (the file exists), 2 usage or bad input.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/principal.h"
#include "sdk/ca.h"
#include "tenant/offline_commands.h"

namespace vouch::tenant {
namespace {

struct CaArgs {
  std::string dir;
  std::string common_name = "Vouch CA";
  std::string server;
  std::string client;
  std::string agent;
  std::string tenant = std::string(kDefaultTenant);
  std::vector<std::string> roles;
  std::vector<std::string> sans;
  std::string out;
  int days = 825;
};

CaArgs& ParsedCaArgs() {
  static CaArgs* args = new CaArgs();
  return *args;
}

CLI::App* ca_cmd = nullptr;
CLI::App* init_cmd = nullptr;
CLI::App* issue_cmd = nullptr;

int CaReport(const absl::Status& status, const std::string& done) {
  if (status.ok()) {
    std::cout << done << "\n";
    return 0;
  }
  std::cerr << "vouchctl ca: " << status.message() << "\n";
  return absl::IsAlreadyExists(status) ? 1 : 2;
}

int RunIssue() {
  const CaArgs& a = ParsedCaArgs();
  const int kinds = !a.server.empty() + !a.client.empty() + !a.agent.empty();
  if (kinds != 1) {
    std::cerr << "vouchctl ca issue: give exactly one of --server NAME, "
                 "--client NAME, --agent ID\n";
    return 2;
  }
  sdk::IssueOptions opts;
  opts.ca_dir = a.dir;
  opts.tenant = a.tenant;
  opts.sans = a.sans;
  opts.out_dir = a.out;
  opts.validity = absl::Hours(24) * a.days;
  if (!a.server.empty()) {
    opts.kind = sdk::CertKind::kServer;
    opts.name = a.server;
  } else if (!a.client.empty()) {
    opts.kind = sdk::CertKind::kClient;
    opts.name = a.client;
    for (const std::string& r : a.roles) {
      absl::StatusOr<Role> role = ParseRole(r);
      if (!role.ok() || *role == Role::kAgent) {
        std::cerr << "vouchctl ca issue: --role must be viewer, operator or "
                     "admin\n";
        return 2;
      }
      opts.roles.push_back(*role);
    }
  } else {
    opts.kind = sdk::CertKind::kAgent;
    opts.name = a.agent;
  }
  if ((opts.kind != sdk::CertKind::kServer && !a.sans.empty()) ||
      (opts.kind != sdk::CertKind::kClient && !a.roles.empty())) {
    std::cerr << "vouchctl ca issue: --san is for --server, --role for "
                 "--client\n";
    return 2;
  }
  const std::string out = sdk::IssuedDir(opts);
  const std::string stem = sdk::CertFileStem(opts.kind);
  return CaReport(sdk::IssueCertificate(opts),
                  absl::StrCat("wrote ", out, "/", stem, ".pem, ", out, "/",
                               stem, ".key and ", out, "/ca.pem"));
}

}  // namespace

void AddCaCommands(CLI::App& cli) {
  CaArgs& a = ParsedCaArgs();
  ca_cmd = cli.add_subcommand(
      "ca", "A certificate authority for this install (mTLS everywhere)");
  ca_cmd->require_subcommand(1);
  init_cmd = ca_cmd->add_subcommand(
      "init",
      "Create a CA: DIR/ca.pem and DIR/ca.key (ECDSA P-256), and the "
      "results key DIR/results.key + DIR/results.pub");
  init_cmd->add_option("dir", a.dir, "CA directory (created 0700)")->required();
  init_cmd->add_option("--name", a.common_name, "The CA's common name");
  issue_cmd = ca_cmd->add_subcommand(
      "issue",
      "Issue a server, operator (client) or agent certificate signed by the "
      "CA in DIR");
  issue_cmd->add_option("dir", a.dir, "CA directory (from `ca init`)")
      ->required();
  issue_cmd->add_option("--server", a.server,
                        "Server certificate for this DNS name or IP");
  issue_cmd->add_option("--san", a.sans,
                        "More DNS names / IPs for --server (repeatable)");
  issue_cmd->add_option("--client", a.client,
                        "Operator certificate for this person or tool");
  issue_cmd->add_option("--role", a.roles,
                        "--client role in the tenant: admin (default), "
                        "operator, viewer (repeatable)");
  issue_cmd->add_option("--agent", a.agent,
                        "Agent certificate for this agent_id (see "
                        "`vouch-agent --print-agent-id`)");
  issue_cmd->add_option("--tenant", a.tenant, "Tenant (default: default)");
  issue_cmd->add_option("--out", a.out,
                        "Output directory (default DIR/servers|clients|"
                        "agents/NAME); a client's is a --tls-dir");
  issue_cmd->add_option("--days", a.days, "Validity in days (default 825)")
      ->check(CLI::Range(1, 36500));
}

std::optional<int> RunCaCommands(AppContext& ctx) {
  (void)ctx;
  if (ca_cmd == nullptr || !ca_cmd->parsed()) return std::nullopt;
  if (init_cmd->parsed()) {
    sdk::CaInitOptions opts;
    opts.dir = ParsedCaArgs().dir;
    opts.common_name = ParsedCaArgs().common_name;
    if (int rc = CaReport(sdk::InitCa(opts),
                          absl::StrCat("wrote ", opts.dir, "/ca.pem and ",
                                       opts.dir, "/ca.key"));
        rc != 0) {
      return rc;
    }
    // The pool's results key (verifier.results_key), kept beside the CA.
    return CaReport(sdk::CreateResultsKey(opts.dir + "/results.key",
                                          opts.dir + "/results.pub"),
                    absl::StrCat("wrote ", opts.dir, "/results.key and ",
                                 opts.dir, "/results.pub"));
  }
  return RunIssue();
}

}  // namespace vouch::tenant
