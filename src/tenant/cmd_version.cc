// vouchctl version: vouchctl's own version and commit, and those of the
// verifier and the registrar it is configured for (GetServerInfo on each,
// any authenticated principal). `--client` asks no server. Output through
// output.h. Exit 0 when every configured server answered (or none is
// configured), 1 when one refused, 2 connection trouble.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/app.h"
#include "sdk/channel.h"
#include "tenant/cli_common.h"
#include "tenant/contexts.h"
#include "tenant/offline_commands.h"
#include "tenant/output.h"
#include "vouch/v1/admin.grpc.pb.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch::tenant {
namespace {

CLI::App* version_cmd = nullptr;
bool client_only = false;

// GetServerInfo of `service` at `address`; the exit code of a failure
// (RpcError prints it).
template <typename Stub>
int AskServer(const sdk::ClientOptions& base, const std::string& address,
              Service service, v1::ServerInfo* info) {
  sdk::ClientOptions opts = base;
  opts.server = address;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      sdk::CreateChannel(opts);
  if (!channel.ok()) {
    return RpcError("version", channel.status(), address, service);
  }
  auto stub = Stub::NewStub(*channel);
  grpc::ClientContext c;
  c.set_deadline(RpcDeadline());
  grpc::Status st = stub->GetServerInfo(&c, v1::GetServerInfoRequest(), info);
  if (!st.ok()) return RpcError("version", st, address, service);
  return 0;
}

}  // namespace

void AddVersionCommand(CLI::App& cli) {
  version_cmd = cli.add_subcommand(
      "version",
      "Print vouchctl's version and those of the configured verifier and "
      "registrar");
  version_cmd->add_flag("--client", client_only,
                        "Only vouchctl's own version (asks no server)");
}

std::optional<int> RunVersionCommand(AppContext& ctx) {
  if (version_cmd == nullptr || !version_cmd->parsed()) return std::nullopt;
  Output out;
  out.table = Table({{"COMPONENT"}, {"ADDRESS"}, {"VERSION"}, {"COMMIT"}});
  auto add = [&](const std::string& component, const std::string& address,
                 const std::string& version, const std::string& commit) {
    out.json[component] = {
        {"version", version}, {"commit", commit}, {"address", address}};
    out.table.AddRow({component, address, version, commit});
    out.names.push_back(component + "/" + version);
    // Table and wide: one line each, the client's first (as before servers
    // were asked: "vouchctl 0.1.0 (commit ...)").
    absl::StrAppend(&out.text, component, " ", version, " (commit ", commit,
                    ")", address.empty() ? "" : " at ", address, "\n");
  };
  add("vouchctl", "", BuildVersion(), BuildCommit());
  int code = 0;
  if (!client_only) {
    absl::StatusOr<Endpoints> endpoints = ResolveEndpoints(ctx.config);
    if (!endpoints.ok()) {
      std::cerr << "vouchctl version: " << endpoints.status().message() << "\n";
      return 2;
    }
    sdk::ClientOptions base;
    base.tls_dir = endpoints->tls_dir;
    // The first verifier of a list stands for the pool.
    const std::string verifier =
        endpoints->verifier.substr(0, endpoints->verifier.find(','));
    v1::ServerInfo info;
    if (!verifier.empty()) {
      if (int c =
              AskServer<v1::Admin>(base, verifier, Service::kVerifier, &info)) {
        code = std::max(code, c);
      } else {
        add(info.server(), verifier, info.version(), info.commit());
      }
    }
    if (!endpoints->registrar.empty()) {
      info.Clear();
      if (int c = AskServer<v1::Registrar>(base, endpoints->registrar,
                                           Service::kRegistrar, &info)) {
        code = std::max(code, c);
      } else {
        add(info.server(), endpoints->registrar, info.version(), info.commit());
      }
    }
  }
  PrintOutput(OutputFormatOf(ctx), out, std::cout);
  return code;
}

}  // namespace vouch::tenant
