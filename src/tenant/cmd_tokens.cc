// vouchctl tokens create|list|delete: join tokens of the registrar
// (onboarding, docs/registrar.md) through the SDK channel (--server /
// VOUCH_SERVER, --tls-dir / VOUCH_TLS_DIR). The token is printed once, by
// create; the registrar keeps only its hash. Exit 0 ok, 1 not found or
// refused, 2 usage or connection trouble.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tenant/cli_common.h"
#include "tenant/offline_commands.h"
#include "tenant/output.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch::tenant {
namespace {

struct TokenArgs {
  std::string tenant;
  std::string id;
  int uses = 1;
  std::string expires;  // a duration ("24h"); empty = never
  std::string description;
};

TokenArgs& ParsedTokenArgs() {
  static TokenArgs* args = new TokenArgs();
  return *args;
}

CLI::App* tokens_cmd = nullptr;
CLI::App* create_cmd = nullptr;
CLI::App* tokens_list_cmd = nullptr;
CLI::App* tokens_delete_cmd = nullptr;

nlohmann::json TokensToJson(const v1::JoinToken& t) {
  nlohmann::json j;
  j["id"] = t.id();
  j["tenant"] = t.tenant();
  j["uses"] = t.uses();
  j["used"] = t.used();
  j["expires_at"] = t.has_expires_at() ? nlohmann::json(Rfc3339(t.expires_at()))
                                       : nlohmann::json(nullptr);
  j["created_at"] = Rfc3339(t.created_at());
  j["revoked"] = t.revoked();
  j["description"] = t.description();
  return j;
}

// The list (and one created token) in the shared output formats.
Output TokensOutput(const std::vector<v1::JoinToken>& tokens,
                    nlohmann::json json) {
  Output out;
  out.json = std::move(json);
  out.table = Table({{"ID"},
                     {"TENANT"},
                     {"USED"},
                     {"EXPIRES"},
                     {"REVOKED"},
                     {"DESCRIPTION"},
                     Table::Wide("CREATED")});
  for (const auto& t : tokens) {
    out.table.AddRow({t.id(), t.tenant(), absl::StrCat(t.used(), "/", t.uses()),
                      t.has_expires_at() ? Rfc3339(t.expires_at()) : "never",
                      t.revoked() ? "true" : "false", t.description(),
                      Rfc3339(t.created_at())});
    out.names.push_back("token/" + t.id());
  }
  return out;
}

}  // namespace

void AddTokenCommands(CLI::App& cli) {
  TokenArgs& a = ParsedTokenArgs();
  tokens_cmd = cli.add_subcommand(
      "tokens", "Join tokens: how agents without a certificate join a tenant");
  tokens_cmd->require_subcommand(1);
  create_cmd = tokens_cmd->add_subcommand(
      "create", "Create a join token (admin); it is printed once");
  create_cmd->add_option("--uses", a.uses, "Joins allowed (default 1)")
      ->check(CLI::Range(1, 1000000));
  create_cmd->add_option("--expires", a.expires,
                         "Lifetime, e.g. 24h or 30m (default: never)");
  create_cmd->add_option("--description", a.description, "Free text");
  tokens_list_cmd = tokens_cmd->add_subcommand(
      "list", "List join tokens (admin); never the tokens themselves");
  tokens_delete_cmd = tokens_cmd->add_subcommand(
      "delete", "Revoke a join token (admin); joins with it are refused");
  tokens_delete_cmd->add_option("id", a.id, "Token id (from `tokens list`)")
      ->required();
  for (CLI::App* c : {create_cmd, tokens_list_cmd, tokens_delete_cmd}) {
    c->add_option("--tenant", a.tenant,
                  "Tenant (default: your certificate's only tenant)");
  }
}

std::optional<int> RunTokenCommands(AppContext& ctx) {
  if (tokens_cmd == nullptr || !tokens_cmd->parsed()) return std::nullopt;
  const TokenArgs& a = ParsedTokenArgs();
  std::string server;
  std::shared_ptr<grpc::Channel> channel =
      ClientChannel(ctx, "tokens", Service::kRegistrar, &server);
  if (channel == nullptr) return 2;
  auto stub = v1::Registrar::NewStub(channel);
  const OutputFormat format = OutputFormatOf(ctx);
  if (create_cmd->parsed()) {
    v1::CreateJoinTokenRequest req;
    req.set_tenant(a.tenant);
    req.set_uses(a.uses);
    req.set_description(a.description);
    if (!a.expires.empty()) {
      absl::Duration d;
      if (!absl::ParseDuration(a.expires, &d) || d <= absl::ZeroDuration()) {
        std::cerr << "vouchctl tokens create: --expires " << a.expires
                  << " is not a positive duration (e.g. 24h)\n";
        return 2;
      }
      req.set_ttl_seconds(std::max<int64_t>(
          1, absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1)))));
    }
    v1::CreateJoinTokenResponse resp;
    grpc::ClientContext c;
    c.set_deadline(RpcDeadline());
    grpc::Status st = stub->CreateJoinToken(&c, req, &resp);
    if (!st.ok()) return RpcError("tokens", st, server, Service::kRegistrar);
    // The token is the one thing create exists for: table and wide print
    // it alone on stdout (the record goes to stderr), json and yaml carry
    // it in the record, name prints token/ID and the token.
    nlohmann::json j = TokensToJson(resp.info());
    j["token"] = resp.token();
    if (format == OutputFormat::kJson || format == OutputFormat::kYaml) {
      return PrintOutput(format, TokensOutput({resp.info()}, std::move(j)),
                         std::cout);
    }
    if (format == OutputFormat::kName) {
      std::cout << "token/" << resp.info().id() << "\n";
    }
    std::cout << resp.token() << "\n";
    std::cerr << "join token " << resp.info().id() << " for tenant "
              << resp.info().tenant() << " (" << resp.info().uses()
              << " use(s)); it is shown only now\n";
    return 0;
  }
  if (tokens_delete_cmd->parsed()) {
    v1::DeleteJoinTokenRequest req;
    req.set_tenant(a.tenant);
    req.set_id(a.id);
    v1::DeleteJoinTokenResponse resp;
    grpc::ClientContext c;
    c.set_deadline(RpcDeadline());
    grpc::Status st = stub->DeleteJoinToken(&c, req, &resp);
    if (!st.ok()) return RpcError("tokens", st, server, Service::kRegistrar);
    std::cout << "revoked " << a.id << "\n";
    return 0;
  }
  v1::ListJoinTokensRequest req;
  req.set_tenant(a.tenant);
  v1::ListJoinTokensResponse resp;
  grpc::ClientContext c;
  c.set_deadline(RpcDeadline());
  grpc::Status st = stub->ListJoinTokens(&c, req, &resp);
  if (!st.ok()) return RpcError("tokens", st, server, Service::kRegistrar);
  std::vector<v1::JoinToken> tokens(resp.tokens().begin(), resp.tokens().end());
  nlohmann::json j;
  j["tokens"] = nlohmann::json::array();
  for (const auto& t : tokens) j["tokens"].push_back(TokensToJson(t));
  return PrintOutput(format, TokensOutput(tokens, std::move(j)), std::cout);
}

}  // namespace vouch::tenant
