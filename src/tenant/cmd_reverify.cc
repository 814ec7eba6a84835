// vouchctl agents reverify AGENT_ID [--attestation ID] [--runtime-policy
// NAME[@VERSION]] [--boot-policy ...] [--pcr-policy ...]: core's evaluation
// run again by the verifier on a kept record (the agent's newest by
// default), against the record's own policy versions or named ones
// (ReverifyAttestation; docs/audit.md). With a shadow's candidate as the
// runtime policy it shows what the candidate fails in the agent's whole
// boot (docs/ima.md). Joins the `agents` group of cmd_agents.cc. Exit 0
// pass, 1 fail or refused, 2 usage or connection trouble.
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sdk/client.h"
#include "sdk/names.h"
#include "tenant/cli_common.h"
#include "tenant/offline_commands.h"
#include "tenant/output.h"
#include "tenant/records.h"
#include "vouch/v1/admin.grpc.pb.h"

namespace vouch::tenant {
namespace {

struct ReverifyArgs {
  std::string tenant;
  std::string agent_id;
  std::string attestation_id;
  std::string runtime_policy;
  std::string boot_policy;
  std::string pcr_policy;
};

ReverifyArgs& ParsedReverifyArgs() {
  static ReverifyArgs* args = new ReverifyArgs();
  return *args;
}

CLI::App* reverify_cmd = nullptr;

// NAME or NAME@VERSION into `ref`; false when VERSION is not a number.
bool ParseRef(const std::string& text, v1::PolicyRef* ref) {
  const size_t at = text.rfind('@');
  ref->set_name(text.substr(0, at));
  if (at == std::string::npos) return true;
  uint64_t version = 0;
  if (!absl::SimpleAtoi(text.substr(at + 1), &version)) return false;
  ref->set_version(version);
  return true;
}

std::string RefText(const v1::PolicyRef& r) {
  return r.name().empty() ? "-" : absl::StrCat(r.name(), "@", r.version());
}

int RunReverify(AppContext& ctx) {
  const ReverifyArgs& a = ParsedReverifyArgs();
  std::string server;
  std::unique_ptr<sdk::Client> client =
      AdminClient(ctx, "agents reverify", &server);
  if (client == nullptr) return 2;
  auto fail = [&](const absl::Status& st) {
    return RpcError("agents reverify", st, server, Service::kVerifier);
  };
  v1::ReverifyAttestationRequest req;
  req.set_tenant(a.tenant);
  req.set_attestation_id(a.attestation_id);
  if (req.attestation_id().empty()) {
    v1::GetAgentStatusRequest get;
    get.set_tenant(a.tenant);
    get.set_agent_id(a.agent_id);
    v1::AgentStatus status;
    if (absl::Status st =
            client->Call(&v1::Admin::Stub::GetAgentStatus, get, &status);
        !st.ok()) {
      return fail(st);
    }
    if (status.last_attestation_id().empty()) {
      std::cerr << "vouchctl agents reverify: " << a.agent_id
                << " has no attestation record yet\n";
      return 1;
    }
    req.set_attestation_id(status.last_attestation_id());
  }
  for (const auto& [text, ref] :
       {std::pair<const std::string&, v1::PolicyRef*>{
            a.runtime_policy, req.mutable_runtime_policy()},
        {a.boot_policy, req.mutable_boot_policy()},
        {a.pcr_policy, req.mutable_pcr_policy()}}) {
    if (!text.empty() && !ParseRef(text, ref)) {
      std::cerr << "vouchctl agents reverify: " << text
                << ": want NAME or NAME@VERSION\n";
      return 2;
    }
  }
  if (a.runtime_policy.empty()) req.clear_runtime_policy();
  if (a.boot_policy.empty()) req.clear_boot_policy();
  if (a.pcr_policy.empty()) req.clear_pcr_policy();
  v1::ReverifyAttestationResponse resp;
  if (absl::Status st =
          client->Call(&v1::Admin::Stub::ReverifyAttestation, req, &resp);
      !st.ok()) {
    return fail(st);
  }
  const bool pass = resp.state() == v1::ATTESTATION_STATE_PASS;
  Output out;
  out.json["attestation_id"] = req.attestation_id();
  out.json["state"] = sdk::StateName(resp.state());
  out.json["failures"] = FailuresJson(resp.failures());
  out.json["failures_truncated"] = resp.failures_truncated();
  out.json["runtime_policy"] = RefText(resp.runtime_policy());
  out.json["boot_policy"] = RefText(resp.boot_policy());
  out.json["pcr_policy"] = RefText(resp.pcr_policy());
  out.json["matches_record"] = resp.matches_record();
  out.table = Table({{"RECORD"},
                     {"STATE"},
                     {"RUNTIME_POLICY"},
                     {"BOOT_POLICY"},
                     {"MATCHES_RECORD"},
                     Table::Wide("PCR_POLICY")});
  out.table.AddRow({req.attestation_id(), sdk::StateName(resp.state()),
                    RefText(resp.runtime_policy()), RefText(resp.boot_policy()),
                    resp.matches_record() ? "yes" : "no",
                    RefText(resp.pcr_policy())});
  for (const v1::Failure& f : resp.failures()) {
    out.table.AddDetail(FailureLine(f));
  }
  out.names.push_back("attestation/" + req.attestation_id());
  PrintOutput(OutputFormatOf(ctx), out, std::cout);
  return pass ? 0 : 1;
}

}  // namespace

void AddReverifyCommands(CLI::App& cli) {
  ReverifyArgs& a = ParsedReverifyArgs();
  std::vector<CLI::App*> found = cli.get_subcommands(
      [](CLI::App* sub) { return sub->get_name() == "agents"; });
  if (found.empty()) return;
  reverify_cmd = found.front()->add_subcommand(
      "reverify",
      "Re-run the evaluation of an agent's kept record (the newest by "
      "default), against its own policy versions or named ones");
  reverify_cmd->add_option("agent_id", a.agent_id, "The agent")->required();
  reverify_cmd->add_option("--attestation", a.attestation_id,
                           "This record instead of the newest");
  reverify_cmd->add_option(
      "--runtime-policy", a.runtime_policy,
      "NAME or NAME@VERSION instead of the record's (e.g. a shadow's "
      "candidate)");
  reverify_cmd->add_option("--boot-policy", a.boot_policy,
                           "NAME or NAME@VERSION instead of the record's");
  reverify_cmd->add_option("--pcr-policy", a.pcr_policy,
                           "NAME or NAME@VERSION instead of the record's");
  reverify_cmd->add_option("--tenant", a.tenant,
                           "Tenant (default: your certificate's only tenant)");
}

std::optional<int> RunReverifyCommands(AppContext& ctx) {
  if (reverify_cmd == nullptr || !reverify_cmd->parsed()) return std::nullopt;
  return RunReverify(ctx);
}

}  // namespace vouch::tenant
