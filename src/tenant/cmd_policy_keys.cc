// vouchctl policy-keys add|list|delete: a tenant's trusted policy-signing
// keys (docs/ima.md "Policy lifecycle"), through the SDK (the verifier
// address from contexts.h), printed through output.h. A DSSE-signed policy
// the tenant imports must verify with one of them (or with a pool-wide
// verifier.policy_signing_keys key). Exit 0 ok, 1 refused, 2 usage or
// connection trouble.
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/file.h"
#include "sdk/client.h"
#include "tenant/cli_common.h"
#include "tenant/offline_commands.h"
#include "tenant/output.h"
#include "vouch/v1/admin.grpc.pb.h"

namespace vouch::tenant {
namespace {

struct KeyArgs {
  std::string tenant;
  std::string name;
  std::string file;
};

KeyArgs& ParsedKeyArgs() {
  static KeyArgs* args = new KeyArgs();
  return *args;
}

CLI::App* keys_cmd = nullptr;
CLI::App* keys_add = nullptr;
CLI::App* keys_list = nullptr;
CLI::App* keys_delete = nullptr;

Output KeysOutput(const std::vector<v1::PolicySigningKey>& keys) {
  Output out;
  out.json["keys"] = nlohmann::json::array();
  out.table = Table({{"NAME"},
                     {"KEY_ID"},
                     {"CREATED"},
                     Table::Wide("TENANT"),
                     Table::Wide("CREATED_BY")});
  for (const v1::PolicySigningKey& k : keys) {
    nlohmann::json j;
    j["name"] = k.name();
    j["tenant"] = k.tenant();
    j["key_id"] = k.key_id();
    j["created_at"] = Rfc3339(k.created_at());
    j["created_by"] = k.created_by();
    j["pem"] = k.pem();
    out.json["keys"].push_back(std::move(j));
    out.table.AddRow({k.name(), k.key_id().substr(0, 16),
                      Rfc3339(k.created_at()), k.tenant(), k.created_by()});
    out.names.push_back("policy-key/" + k.name());
  }
  return out;
}

int RunKeys(AppContext& ctx) {
  const KeyArgs& a = ParsedKeyArgs();
  std::string server;
  std::unique_ptr<sdk::Client> client =
      AdminClient(ctx, "policy-keys", &server);
  if (client == nullptr) return 2;
  auto fail = [&](const absl::Status& st) {
    return RpcError("policy-keys", st, server, Service::kVerifier);
  };
  const OutputFormat format = OutputFormatOf(ctx);
  if (keys_add->parsed()) {
    absl::StatusOr<std::string> pem = ReadFileUpTo(a.file, 64 << 10);
    if (!pem.ok()) {
      std::cerr << "vouchctl policy-keys: " << pem.status().message() << "\n";
      return 2;
    }
    v1::AddPolicySigningKeyRequest req;
    req.set_tenant(a.tenant);
    req.set_name(a.name);
    req.set_pem(*pem);
    v1::PolicySigningKey key;
    if (absl::Status st =
            client->Call(&v1::Admin::Stub::AddPolicySigningKey, req, &key);
        !st.ok()) {
      return fail(st);
    }
    return PrintOutput(format, KeysOutput({key}), std::cout);
  }
  if (keys_delete->parsed()) {
    v1::DeletePolicySigningKeyRequest req;
    req.set_tenant(a.tenant);
    req.set_name(a.name);
    v1::DeletePolicySigningKeyResponse resp;
    if (absl::Status st =
            client->Call(&v1::Admin::Stub::DeletePolicySigningKey, req, &resp);
        !st.ok()) {
      return fail(st);
    }
    std::cout << "policy-key/" << a.name << " deleted\n";
    return 0;
  }
  v1::ListPolicySigningKeysRequest req;
  req.set_tenant(a.tenant);
  v1::ListPolicySigningKeysResponse resp;
  if (absl::Status st =
          client->Call(&v1::Admin::Stub::ListPolicySigningKeys, req, &resp);
      !st.ok()) {
    return fail(st);
  }
  return PrintOutput(format,
                     KeysOutput(std::vector<v1::PolicySigningKey>(
                         resp.keys().begin(), resp.keys().end())),
                     std::cout);
}

}  // namespace

void AddPolicyKeyCommands(CLI::App& cli) {
  KeyArgs& a = ParsedKeyArgs();
  keys_cmd = cli.add_subcommand(
      "policy-keys", "Trusted policy-signing keys of a tenant (admin)");
  keys_cmd->require_subcommand(1);
  keys_add = keys_cmd->add_subcommand(
      "add", "Trust a PEM public key or certificate for signed policies");
  keys_list = keys_cmd->add_subcommand("list", "List the trusted keys");
  keys_delete = keys_cmd->add_subcommand("delete", "Stop trusting a key");
  for (CLI::App* c : {keys_add, keys_delete}) {
    c->add_option("name", a.name, "Key name")->required();
  }
  keys_add->add_option("--file,-f", a.file, "PEM public key or certificate")
      ->required();
  for (CLI::App* c : {keys_add, keys_list, keys_delete}) {
    c->add_option("--tenant", a.tenant,
                  "Tenant (default: your certificate's only tenant)");
  }
}

std::optional<int> RunPolicyKeyCommands(AppContext& ctx) {
  if (keys_cmd == nullptr || !keys_cmd->parsed()) return std::nullopt;
  return RunKeys(ctx);
}

}  // namespace vouch::tenant
