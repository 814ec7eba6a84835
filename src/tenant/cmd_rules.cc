// vouchctl rules add|list|delete (enrollment rules) and vouchctl agents
// label (operator labels): the registrar's onboarding RPCs
// (docs/registrar.md, "Onboarding") through the SDK channel (--server /
// VOUCH_SERVER naming the registrar, --tls-dir / VOUCH_TLS_DIR). Exit 0 ok,
// 1 not found or refused, 2 usage or connection trouble.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "tenant/cli_common.h"
#include "tenant/offline_commands.h"
#include "tenant/output.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch::tenant {
namespace {

struct RuleArgs {
  std::string tenant;
  std::string name;
  std::vector<std::string> selector;  // key=value
  std::string runtime_policy;
  std::string boot_policy;
  std::string interval = "60s";
  std::string agent_id;
  std::vector<std::string> labels;  // key=value
};

RuleArgs& ParsedRuleArgs() {
  static RuleArgs* args = new RuleArgs();
  return *args;
}

CLI::App* rules_cmd = nullptr;
CLI::App* rules_add_cmd = nullptr;
CLI::App* rules_list_cmd = nullptr;
CLI::App* rules_delete_cmd = nullptr;
CLI::App* label_cmd = nullptr;

// "k=v" items (also "k=v,k2=v2") into a map; false on an item without '='.
bool ParsePairs(const std::vector<std::string>& items,
                google::protobuf::Map<std::string, std::string>* out) {
  for (const std::string& item : items) {
    size_t start = 0;
    while (start <= item.size()) {
      size_t end = item.find(',', start);
      if (end == std::string::npos) end = item.size();
      const std::string kv = item.substr(start, end - start);
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) return false;
      (*out)[kv.substr(0, eq)] = kv.substr(eq + 1);
      start = end + 1;
    }
  }
  return true;
}

std::string Pairs(const google::protobuf::Map<std::string, std::string>& m) {
  std::map<std::string, std::string> sorted(m.begin(), m.end());
  std::vector<std::string> parts;
  for (const auto& [k, v] : sorted) parts.push_back(k + "=" + v);
  return absl::StrJoin(parts, ",");
}

nlohmann::json RulesToJson(const v1::EnrollmentRule& r) {
  nlohmann::json j;
  j["name"] = r.name();
  j["tenant"] = r.tenant();
  j["selector"] = nlohmann::json::object();
  for (const auto& [k, v] : r.selector()) j["selector"][k] = v;
  j["runtime_policy"] = r.runtime_policy();
  j["boot_policy"] = r.boot_policy();
  j["interval_seconds"] = r.interval_seconds();
  j["created_at"] = Rfc3339(r.created_at());
  return j;
}

int PrintRules(const std::vector<v1::EnrollmentRule>& rules,
               OutputFormat format) {
  Output out;
  out.json["rules"] = nlohmann::json::array();
  out.table = Table({{"NAME"},
                     {"TENANT"},
                     {"SELECTOR"},
                     {"RUNTIME_POLICY"},
                     {"BOOT_POLICY"},
                     {"INTERVAL"},
                     Table::Wide("CREATED")});
  for (const auto& r : rules) {
    out.json["rules"].push_back(RulesToJson(r));
    out.table.AddRow({r.name(), r.tenant(), Pairs(r.selector()),
                      r.runtime_policy(), r.boot_policy(),
                      absl::StrCat(r.interval_seconds(), "s"),
                      Rfc3339(r.created_at())});
    out.names.push_back("rule/" + r.name());
  }
  return PrintOutput(format, out, std::cout);
}

}  // namespace

void AddRuleCommands(CLI::App& cli) {
  RuleArgs& a = ParsedRuleArgs();
  rules_cmd = cli.add_subcommand(
      "rules",
      "Enrollment rules (registrar): agents whose labels match are enrolled "
      "when they activate");
  rules_cmd->require_subcommand(1);
  rules_add_cmd =
      rules_cmd->add_subcommand("add", "Add an enrollment rule (admin)");
  rules_add_cmd
      ->add_option("name", a.name, "Rule name (rules apply in name order)")
      ->required();
  rules_add_cmd
      ->add_option("--selector,-l", a.selector,
                   "Labels the agent must carry: key=value[,key=value]")
      ->required();
  rules_add_cmd
      ->add_option("--runtime-policy", a.runtime_policy,
                   "Runtime (IMA) policy to enroll with")
      ->required();
  rules_add_cmd->add_option("--boot-policy", a.boot_policy, "Boot policy");
  rules_add_cmd->add_option("--interval", a.interval,
                            "Attestation interval (default 60s)");
  rules_list_cmd = rules_cmd->add_subcommand("list", "List enrollment rules");
  rules_delete_cmd = rules_cmd->add_subcommand(
      "delete", "Delete an enrollment rule (admin); enrolled agents stay");
  rules_delete_cmd->add_option("name", a.name, "Rule name")->required();
  std::vector<CLI::App*> with_tenant = {rules_add_cmd, rules_list_cmd,
                                        rules_delete_cmd};
  // `agents label` sits with the other agent commands (cmd_agents.cc makes
  // the `agents` group; AddAdminCommands runs first).
  std::vector<CLI::App*> found = cli.get_subcommands(
      [](CLI::App* sub) { return sub->get_name() == "agents"; });
  if (!found.empty()) {
    CLI::App* agents = found.front();
    label_cmd = agents->add_subcommand(
        "label",
        "Set an agent's operator labels at the registrar (replacing them); "
        "--server names the registrar");
    label_cmd->add_option("agent_id", a.agent_id, "The agent")->required();
    label_cmd->add_option("labels", a.labels, "key=value ... (none: clear)");
    with_tenant.push_back(label_cmd);
  }
  for (CLI::App* c : with_tenant) {
    c->add_option("--tenant", a.tenant,
                  "Tenant (default: your certificate's only tenant)");
  }
}

std::optional<int> RunRuleCommands(AppContext& ctx) {
  const bool rules = rules_cmd != nullptr && rules_cmd->parsed();
  const bool label = label_cmd != nullptr && label_cmd->parsed();
  if (!rules && !label) return std::nullopt;
  const RuleArgs& a = ParsedRuleArgs();
  const char* command = rules ? "rules" : "agents label";
  std::string server;
  std::shared_ptr<grpc::Channel> channel =
      ClientChannel(ctx, command, Service::kRegistrar, &server);
  if (channel == nullptr) return 2;
  auto stub = v1::Registrar::NewStub(channel);
  const OutputFormat format = OutputFormatOf(ctx);
  grpc::ClientContext c;
  c.set_deadline(RpcDeadline());
  if (label) {
    v1::SetAgentLabelsRequest req;
    req.set_tenant(a.tenant);
    req.set_agent_id(a.agent_id);
    if (!ParsePairs(a.labels, req.mutable_labels())) {
      std::cerr << "vouchctl agents label: labels are key=value\n";
      return 2;
    }
    v1::RegisteredAgent agent;
    grpc::Status st = stub->SetAgentLabels(&c, req, &agent);
    if (!st.ok()) return RpcError(command, st, server, Service::kRegistrar);
    std::cout << "labelled " << a.agent_id << " " << Pairs(agent.labels())
              << "\n";
    return 0;
  }
  if (rules_add_cmd->parsed()) {
    v1::EnrollmentRule req;
    req.set_tenant(a.tenant);
    req.set_name(a.name);
    req.set_runtime_policy(a.runtime_policy);
    req.set_boot_policy(a.boot_policy);
    absl::Duration interval;
    if (!absl::ParseDuration(a.interval, &interval) ||
        interval < absl::Seconds(1)) {
      std::cerr << "vouchctl rules add: --interval " << a.interval
                << " is not a duration of at least 1s\n";
      return 2;
    }
    req.set_interval_seconds(
        static_cast<int32_t>(absl::ToInt64Seconds(interval)));
    if (!ParsePairs(a.selector, req.mutable_selector())) {
      std::cerr << "vouchctl rules add: --selector takes key=value\n";
      return 2;
    }
    v1::EnrollmentRule created;
    grpc::Status st = stub->CreateEnrollmentRule(&c, req, &created);
    if (!st.ok()) return RpcError(command, st, server, Service::kRegistrar);
    std::cout << "added rule " << created.name() << "\n";
    return 0;
  }
  if (rules_delete_cmd->parsed()) {
    v1::DeleteEnrollmentRuleRequest req;
    req.set_tenant(a.tenant);
    req.set_name(a.name);
    v1::DeleteEnrollmentRuleResponse resp;
    grpc::Status st = stub->DeleteEnrollmentRule(&c, req, &resp);
    if (!st.ok()) return RpcError(command, st, server, Service::kRegistrar);
    std::cout << "deleted rule " << a.name << "\n";
    return 0;
  }
  v1::ListEnrollmentRulesRequest req;
  req.set_tenant(a.tenant);
  v1::ListEnrollmentRulesResponse resp;
  grpc::Status st = stub->ListEnrollmentRules(&c, req, &resp);
  if (!st.ok()) return RpcError(command, st, server, Service::kRegistrar);
  return PrintRules({resp.rules().begin(), resp.rules().end()}, format);
}

}  // namespace vouch::tenant
