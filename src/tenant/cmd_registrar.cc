// vouchctl registrar get|list|delete: the registrar's operator RPCs through
// the SDK channel to the registrar address (--registrar / VOUCH_REGISTRAR /
// the context's registrar; contexts.h), printed through output.h.
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
#include "tenant/output.h"
#include "tenant/records.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch::tenant {

nlohmann::json RegistrationJson(const v1::RegisteredAgent& a) {
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

namespace {

struct RegistrarArgs {
  std::string agent_id;
  std::string tenant;
  std::string active;  // "", "true", "false"
  int limit = 0;       // 0: every page.
  int page_size = 0;   // Hidden, the spelling before --limit.
  bool all = false;    // Hidden: every page is the default now.
};

RegistrarArgs& ParsedRegistrarArgs() {
  static RegistrarArgs* args = new RegistrarArgs();
  return *args;
}

CLI::App* registrar_cmd = nullptr;
CLI::App* registrar_get_cmd = nullptr;
CLI::App* registrar_list_cmd = nullptr;
CLI::App* registrar_delete_cmd = nullptr;

Output RegistrationsOutput(const std::vector<v1::RegisteredAgent>& agents,
                           nlohmann::json json) {
  Output out;
  out.json = std::move(json);
  out.table = Table({{"AGENT_ID"},
                     {"TENANT"},
                     {"ACTIVE"},
                     {"REGISTERED"},
                     {"EK_SHA256"},
                     Table::Wide("ACTIVATED"),
                     Table::Wide("EK_CERT_ISSUER"),
                     Table::Wide("AGENT_VERSION")});
  for (const auto& a : agents) {
    out.table.AddRow({a.agent_id(), a.tenant(), a.active() ? "true" : "false",
                      Rfc3339(a.registered_at()),
                      HexEncode(AsBytes(a.ek_sha256())).substr(0, 16),
                      a.has_activated_at() ? Rfc3339(a.activated_at()) : "",
                      a.ek_certificate_issuer(), a.agent_version()});
    out.names.push_back("registration/" + a.agent_id());
  }
  return out;
}

}  // namespace

void AddRegistrarCommands(CLI::App& cli) {
  RegistrarArgs& a = ParsedRegistrarArgs();
  registrar_cmd = cli.add_subcommand(
      "registrar", "Agent registrations held by the registrar");
  registrar_cmd->require_subcommand(1);
  registrar_get_cmd =
      registrar_cmd->add_subcommand("get", "Show one registration");
  registrar_get_cmd->add_option("agent_id", a.agent_id, "The agent")
      ->required();
  registrar_list_cmd =
      registrar_cmd->add_subcommand("list", "List registrations");
  registrar_list_cmd
      ->add_option("--active", a.active,
                   "Only active (true) or never-activated (false)")
      ->check(CLI::IsMember({"true", "false"}));
  registrar_list_cmd
      ->add_option("--limit", a.limit,
                   "At most this many (default: every page)")
      ->check(CLI::Range(1, 1000000));
  // Hidden, the spellings before --limit.
  registrar_list_cmd->add_option("--page-size", a.page_size)
      ->check(CLI::Range(1, 1000))
      ->group("");
  registrar_list_cmd->add_flag("--all", a.all)->group("");
  registrar_delete_cmd = registrar_cmd->add_subcommand(
      "delete", "Delete a registration (admin); its binding log is kept");
  registrar_delete_cmd->alias("remove");  // Hidden: the spelling before delete.
  registrar_delete_cmd->add_option("agent_id", a.agent_id, "The agent")
      ->required();
  for (CLI::App* c :
       {registrar_get_cmd, registrar_list_cmd, registrar_delete_cmd}) {
    c->add_option("--tenant", a.tenant,
                  "Tenant (default: your certificate's only tenant)");
  }
}

std::optional<int> RunRegistrarCommands(AppContext& ctx) {
  if (registrar_cmd == nullptr || !registrar_cmd->parsed()) return std::nullopt;
  const RegistrarArgs& a = ParsedRegistrarArgs();
  std::string server;
  std::shared_ptr<grpc::Channel> channel =
      ClientChannel(ctx, "registrar", Service::kRegistrar, &server);
  if (channel == nullptr) return 2;
  auto stub = v1::Registrar::NewStub(channel);
  const OutputFormat format = OutputFormatOf(ctx);
  if (registrar_get_cmd->parsed()) {
    v1::GetRegisteredAgentRequest req;
    req.set_tenant(a.tenant);
    req.set_agent_id(a.agent_id);
    v1::RegisteredAgent agent;
    grpc::ClientContext c;
    c.set_deadline(RpcDeadline());
    grpc::Status st = stub->GetRegisteredAgent(&c, req, &agent);
    if (!st.ok()) return RpcError("registrar", st, server, Service::kRegistrar);
    return PrintOutput(format,
                       RegistrationsOutput({agent}, RegistrationJson(agent)),
                       std::cout);
  }
  if (registrar_delete_cmd->parsed()) {
    v1::DeleteRegisteredAgentRequest req;
    req.set_tenant(a.tenant);
    req.set_agent_id(a.agent_id);
    v1::DeleteRegisteredAgentResponse resp;
    grpc::ClientContext c;
    c.set_deadline(RpcDeadline());
    grpc::Status st = stub->DeleteRegisteredAgent(&c, req, &resp);
    if (!st.ok()) return RpcError("registrar", st, server, Service::kRegistrar);
    std::cout << "registration/" << a.agent_id << " deleted\n";
    return 0;
  }
  v1::ListRegisteredAgentsRequest req;
  req.set_tenant(a.tenant);
  if (!a.active.empty()) req.set_active(a.active == "true");
  std::vector<v1::RegisteredAgent> agents;
  std::string next;
  grpc::Status failed;
  const int limit =
      a.limit > 0 ? a.limit : (a.page_size > 0 && !a.all ? a.page_size : 0);
  absl::Status st =
      FetchPages(limit, [&](const std::string& token, int page_size,
                            std::string* next_token, size_t* fetched) {
        req.set_page_token(token);
        req.set_page_size(page_size);
        v1::ListRegisteredAgentsResponse resp;
        grpc::ClientContext c;
        c.set_deadline(RpcDeadline());
        failed = stub->ListRegisteredAgents(&c, req, &resp);
        if (!failed.ok()) return absl::UnknownError("see failed");
        agents.insert(agents.end(), resp.agents().begin(), resp.agents().end());
        *next_token = next = resp.next_page_token();
        *fetched = agents.size();
        return absl::OkStatus();
      });
  if (!st.ok())
    return RpcError("registrar", failed, server, Service::kRegistrar);
  nlohmann::json j;
  j["agents"] = nlohmann::json::array();
  for (const auto& agent : agents)
    j["agents"].push_back(RegistrationJson(agent));
  j["next_page_token"] = next;
  return PrintOutput(format, RegistrationsOutput(agents, std::move(j)),
                     std::cout);
}

}  // namespace vouch::tenant
