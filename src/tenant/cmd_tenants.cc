// vouchctl tenants: a tenant's settings (docs/actions.md). `tenants get [T]`
// prints them, `tenants set [T] --peer-notices on|off` changes them (role
// admin of the tenant). Exit 0 ok, 2 usage or an RPC error.
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "sdk/client.h"
#include "tenant/cli_common.h"
#include "tenant/offline_commands.h"
#include "vouch/v1/admin.grpc.pb.h"

namespace vouch::tenant {
namespace {

struct TenantsArgs {
  std::string tenant;
  std::string peer_notices;  // "on" | "off" | "" (unchanged)
};

TenantsArgs& ParsedTenantsArgs() {
  static TenantsArgs* args = new TenantsArgs();
  return *args;
}

CLI::App* tenants_cmd = nullptr;
CLI::App* tenants_get_cmd = nullptr;
CLI::App* tenants_set_cmd = nullptr;

void TenantsPrint(AppContext& ctx, const v1::TenantSettings& s) {
  if (ctx.config.GetString("client", "output") == "json") {
    std::cout << nlohmann::json{{"tenant", s.tenant()},
                                {"peer_notices", s.peer_notices()}}
                     .dump(2)
              << "\n";
    return;
  }
  std::cout << "tenant        " << s.tenant() << "\n"
            << "peer-notices  " << (s.peer_notices() ? "on" : "off") << "\n";
}

}  // namespace

void AddTenantCommands(CLI::App& cli) {
  TenantsArgs& a = ParsedTenantsArgs();
  tenants_cmd = cli.add_subcommand("tenants", "A tenant's settings");
  tenants_cmd->require_subcommand(1);
  tenants_get_cmd =
      tenants_cmd->add_subcommand("get", "Show a tenant's settings");
  tenants_get_cmd->add_option(
      "tenant", a.tenant, "Tenant (default: your certificate's only tenant)");
  tenants_set_cmd =
      tenants_cmd->add_subcommand("set", "Change a tenant's settings");
  tenants_set_cmd->add_option(
      "tenant", a.tenant, "Tenant (default: your certificate's only tenant)");
  tenants_set_cmd
      ->add_option("--peer-notices", a.peer_notices,
                   "on: each agent of the tenant is told of every other "
                   "agent's failure (its local actions run); off: only of "
                   "its own")
      ->check(CLI::IsMember({"on", "off"}))
      ->required();
}

std::optional<int> RunTenantCommands(AppContext& ctx) {
  if (tenants_cmd == nullptr || !tenants_cmd->parsed()) return std::nullopt;
  const TenantsArgs& a = ParsedTenantsArgs();
  std::string server;
  std::unique_ptr<sdk::Client> client = AdminClient(ctx, "tenants", &server);
  if (client == nullptr) return 2;
  v1::TenantSettings settings;
  absl::Status st;
  if (tenants_set_cmd->parsed()) {
    v1::SetTenantSettingsRequest req;
    req.set_tenant(a.tenant);
    req.set_peer_notices(a.peer_notices == "on");
    st = client->Call(&v1::Admin::Stub::SetTenantSettings, req, &settings);
  } else {
    v1::GetTenantSettingsRequest req;
    req.set_tenant(a.tenant);
    st = client->Call(&v1::Admin::Stub::GetTenantSettings, req, &settings);
  }
  if (!st.ok()) return RpcError("tenants", st, server, Service::kVerifier);
  TenantsPrint(ctx, settings);
  return 0;
}

}  // namespace vouch::tenant
