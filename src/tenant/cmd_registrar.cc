// vouchctl registrar get|list|remove: the registrar's operator RPCs through
// the SDK channel (--server / VOUCH_SERVER, --tls-dir / VOUCH_TLS_DIR).
// Exit 0 ok, 1 not found or refused, 2 usage or connection trouble.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/bytes.h"
#include "tenant/cli_common.h"
#include "tenant/offline_commands.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch::tenant {
namespace {

struct RegistrarArgs {
  std::string agent_id;
  std::string tenant;
  std::string active;  // "", "true", "false"
  int page_size = 0;
  bool all = false;
};

RegistrarArgs& Args() {
  static RegistrarArgs* args = new RegistrarArgs();
  return *args;
}

CLI::App* registrar_cmd = nullptr;
CLI::App* get_cmd = nullptr;
CLI::App* list_cmd = nullptr;
CLI::App* remove_cmd = nullptr;

nlohmann::json ToJson(const v1::RegisteredAgent& a) {
  nlohmann::json j;
  j["agent_id"] = a.agent_id();
  j["tenant"] = a.tenant();
  j["active"] = a.active();
  j["activation_pending"] = a.activation_pending();
  j["ek_sha256"] = HexEncode(AsBytes(a.ek_sha256()));
  j["aik_name"] = HexEncode(AsBytes(a.aik_name()));
  j["pending_aik_name"] = HexEncode(AsBytes(a.pending_aik_name()));
  j["registered_at"] = Rfc3339(a.registered_at());
  j["activated_at"] = a.has_activated_at()
                          ? nlohmann::json(Rfc3339(a.activated_at()))
                          : nlohmann::json(nullptr);
  j["ek_certificate_issuer"] = a.ek_certificate_issuer();
  j["agent_version"] = a.agent_version();
  return j;
}

void PrintTable(const std::vector<v1::RegisteredAgent>& agents) {
  std::printf("%-40s %-12s %-7s %-20s %s\n", "AGENT_ID", "TENANT", "ACTIVE",
              "REGISTERED", "EK_SHA256");
  for (const auto& a : agents) {
    std::printf("%-40s %-12s %-7s %-20s %s\n", a.agent_id().c_str(),
                a.tenant().c_str(), a.active() ? "true" : "false",
                Rfc3339(a.registered_at()).c_str(),
                HexEncode(AsBytes(a.ek_sha256())).substr(0, 16).c_str());
  }
}

int Print(const nlohmann::json& j, const std::string& format,
          const std::vector<v1::RegisteredAgent>& agents) {
  if (format == "json") {
    std::cout << j.dump(2) << "\n";
  } else if (format == "yaml") {
    PrintYaml(j, "", std::cout);
  } else {
    PrintTable(agents);
  }
  return 0;
}

}  // namespace

void AddRegistrarCommands(CLI::App& cli) {
  RegistrarArgs& a = Args();
  registrar_cmd = cli.add_subcommand(
      "registrar", "Agent registrations held by the registrar");
  registrar_cmd->require_subcommand(1);
  get_cmd = registrar_cmd->add_subcommand("get", "Show one registration");
  get_cmd->add_option("agent_id", a.agent_id, "The agent")->required();
  list_cmd = registrar_cmd->add_subcommand("list", "List registrations");
  list_cmd
      ->add_option("--active", a.active,
                   "Only active (true) or never-activated (false)")
      ->check(CLI::IsMember({"true", "false"}));
  list_cmd->add_option("--page-size", a.page_size, "Page size (default 100)")
      ->check(CLI::Range(1, 1000));
  list_cmd->add_flag("--all", a.all, "Fetch every page");
  remove_cmd = registrar_cmd->add_subcommand(
      "remove", "Delete a registration (admin); its binding log is kept");
  remove_cmd->add_option("agent_id", a.agent_id, "The agent")->required();
  for (CLI::App* c : {get_cmd, list_cmd, remove_cmd}) {
    c->add_option("--tenant", a.tenant,
                  "Tenant (default: your certificate's only tenant)");
  }
}

std::optional<int> RunRegistrarCommands(AppContext& ctx) {
  if (registrar_cmd == nullptr || !registrar_cmd->parsed()) return std::nullopt;
  const RegistrarArgs& a = Args();
  std::string server;
  std::shared_ptr<grpc::Channel> channel =
      ClientChannel(ctx, "registrar", &server);
  if (channel == nullptr) return 2;
  auto stub = v1::Registrar::NewStub(channel);
  const std::string format = ctx.config.GetString("client", "output");
  if (get_cmd->parsed()) {
    v1::GetRegisteredAgentRequest req;
    req.set_tenant(a.tenant);
    req.set_agent_id(a.agent_id);
    v1::RegisteredAgent agent;
    grpc::ClientContext c;
    c.set_deadline(RpcDeadline());
    grpc::Status st = stub->GetRegisteredAgent(&c, req, &agent);
    if (!st.ok()) return RpcError("registrar", st, server, "registrar");
    return Print(ToJson(agent), format, {agent});
  }
  if (remove_cmd->parsed()) {
    v1::DeleteRegisteredAgentRequest req;
    req.set_tenant(a.tenant);
    req.set_agent_id(a.agent_id);
    v1::DeleteRegisteredAgentResponse resp;
    grpc::ClientContext c;
    c.set_deadline(RpcDeadline());
    grpc::Status st = stub->DeleteRegisteredAgent(&c, req, &resp);
    if (!st.ok()) return RpcError("registrar", st, server, "registrar");
    std::cout << "deleted " << a.agent_id << "\n";
    return 0;
  }
  v1::ListRegisteredAgentsRequest req;
  req.set_tenant(a.tenant);
  req.set_page_size(a.page_size);
  if (!a.active.empty()) req.set_active(a.active == "true");
  std::vector<v1::RegisteredAgent> agents;
  std::string next;
  do {
    v1::ListRegisteredAgentsResponse resp;
    grpc::ClientContext c;
    c.set_deadline(RpcDeadline());
    grpc::Status st = stub->ListRegisteredAgents(&c, req, &resp);
    if (!st.ok()) return RpcError("registrar", st, server, "registrar");
    agents.insert(agents.end(), resp.agents().begin(), resp.agents().end());
    next = resp.next_page_token();
    req.set_page_token(next);
  } while (a.all && !next.empty());
  nlohmann::json j;
  j["agents"] = nlohmann::json::array();
  for (const auto& agent : agents) j["agents"].push_back(ToJson(agent));
  j["next_page_token"] = next;
  return Print(j, format, agents);
}

}  // namespace vouch::tenant
