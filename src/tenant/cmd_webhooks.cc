// vouchctl webhooks add|get|list|delete: webhook subscriptions of a tenant
// (docs/webhooks.md) through the verifier's Admin API. `add` prints a
// generated secret once (it is never shown again); get and list show the
// delivery state (cursor, attempts, last error, dead-lettered count)
// through the shared output layer. Exit 0 ok, 1 refused or not found, 2
// usage, bad input or connection trouble.
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "core/agent_state.h"
#include "core/webhook/webhook.h"
#include "sdk/client.h"
#include "tenant/cli_common.h"
#include "tenant/offline_commands.h"
#include "tenant/output.h"
#include "vouch/v1/admin.grpc.pb.h"

namespace vouch::tenant {
namespace {

struct WebhookArgs {
  std::string tenant;
  std::string name;
  std::string url;
  std::string states;
  std::string secret_file;
  int limit = 0;
};

WebhookArgs& ParsedWebhookArgs() {
  static WebhookArgs* args = new WebhookArgs();
  return *args;
}

CLI::App* webhooks_cmd = nullptr;
CLI::App* webhooks_add_cmd = nullptr;
CLI::App* webhooks_get_cmd = nullptr;
CLI::App* webhooks_list_cmd = nullptr;
CLI::App* webhooks_delete_cmd = nullptr;

int WebhooksFail(const absl::Status& st) {
  std::cerr << "vouchctl webhooks: " << st.message() << "\n";
  return 2;
}

std::string States(const v1::Webhook& w) {
  std::vector<std::string> names;
  for (int s : w.states()) names.emplace_back(core::AgentStateName(s));
  return names.empty() ? "all" : absl::StrJoin(names, ",");
}

std::string TimeOrEmpty(bool has, const google::protobuf::Timestamp& t) {
  return has ? Rfc3339(t) : "";
}

nlohmann::json WebhooksToJson(const v1::Webhook& w) {
  nlohmann::json states = nlohmann::json::array();
  for (int s : w.states()) {
    states.push_back(std::string(core::AgentStateName(s)));
  }
  auto time = [](bool has, const google::protobuf::Timestamp& t) {
    return has ? nlohmann::json(Rfc3339(t)) : nlohmann::json(nullptr);
  };
  return {
      {"tenant", w.tenant()},
      {"name", w.name()},
      {"url", w.url()},
      {"states", states},
      {"created_by", w.created_by()},
      {"created_at", Rfc3339(w.created_at())},
      {"cursor", w.cursor()},
      {"attempts", w.attempts()},
      {"failing_since", time(w.has_failing_since(), w.failing_since())},
      {"last_error", w.last_error()},
      {"next_attempt_at", time(w.has_next_attempt_at(), w.next_attempt_at())},
      {"last_delivered_at",
       time(w.has_last_delivered_at(), w.last_delivered_at())},
      {"delivered", w.delivered()},
      {"failed_attempts", w.failed_attempts()},
      {"dead_lettered", w.dead_lettered()},
      {"last_dead_letter_id", w.last_dead_letter_id()},
      {"owner", w.owner()}};
}

Output WebhooksOutput(const std::vector<v1::Webhook>& hooks,
                      nlohmann::json json) {
  Output out;
  out.json = std::move(json);
  out.table = Table({{"NAME"},
                     {"URL"},
                     {"STATES"},
                     {"DELIVERED"},
                     {"ATTEMPTS"},
                     {"DEAD_LETTERED"},
                     {"LAST_ERROR"},
                     Table::Wide("CURSOR"),
                     Table::Wide("LAST_DELIVERED"),
                     Table::Wide("FAILING_SINCE"),
                     Table::Wide("OWNER"),
                     Table::Wide("TENANT")});
  for (const v1::Webhook& w : hooks) {
    out.table.AddRow(
        {w.name(), w.url(), States(w), absl::StrCat(w.delivered()),
         absl::StrCat(w.attempts()), absl::StrCat(w.dead_lettered()),
         w.last_error(), w.cursor(),
         TimeOrEmpty(w.has_last_delivered_at(), w.last_delivered_at()),
         TimeOrEmpty(w.has_failing_since(), w.failing_since()), w.owner(),
         w.tenant()});
    out.names.push_back("webhook/" + w.name());
  }
  return out;
}

absl::StatusOr<v1::AddWebhookRequest> AddRequest(const WebhookArgs& a) {
  v1::AddWebhookRequest req;
  req.set_tenant(a.tenant);
  req.set_name(a.name);
  req.set_url(a.url);
  VOUCH_RETURN_IF_ERROR(core::webhook::ValidateName(a.name));
  VOUCH_RETURN_IF_ERROR(core::webhook::ValidateUrl(a.url));
  VOUCH_ASSIGN_OR_RETURN(std::vector<core::AgentState> states,
                         core::webhook::ParseStates(a.states));
  for (core::AgentState s : states) {
    req.add_states(static_cast<v1::AttestationState>(s));
  }
  if (!a.secret_file.empty()) {
    VOUCH_ASSIGN_OR_RETURN(std::string secret,
                           ReadFileUpTo(a.secret_file, 256));
    secret = std::string(absl::StripAsciiWhitespace(secret));
    VOUCH_RETURN_IF_ERROR(core::webhook::SecretKey(secret).status());
    req.set_secret(secret);
  }
  return req;
}

int Run(AppContext& ctx, sdk::Client& client, const std::string& server) {
  const WebhookArgs& a = ParsedWebhookArgs();
  const OutputFormat format = OutputFormatOf(ctx);
  auto rpc_error = [&](const absl::Status& st) {
    return RpcError("webhooks", st, server, Service::kVerifier);
  };
  if (webhooks_add_cmd->parsed() || webhooks_get_cmd->parsed()) {
    v1::Webhook w;
    if (webhooks_add_cmd->parsed()) {
      absl::StatusOr<v1::AddWebhookRequest> req = AddRequest(a);
      if (!req.ok()) return WebhooksFail(req.status());
      if (absl::Status st = client.Call(&v1::Admin::Stub::AddWebhook, *req, &w);
          !st.ok()) {
        return rpc_error(st);
      }
    } else {
      v1::GetWebhookRequest req;
      req.set_tenant(a.tenant);
      req.set_name(a.name);
      if (absl::Status st = client.Call(&v1::Admin::Stub::GetWebhook, req, &w);
          !st.ok()) {
        return rpc_error(st);
      }
    }
    nlohmann::json j = WebhooksToJson(w);
    if (!w.secret().empty()) {
      // Shown once: the verifier generated it and will not show it again.
      j["secret"] = w.secret();
      if (format == OutputFormat::kTable || format == OutputFormat::kWide) {
        std::cerr << "webhook/" << w.name()
                  << " added; its signing secret (shown only now):\n";
        std::cout << w.secret() << "\n";
        return 0;
      }
    }
    return PrintOutput(format, WebhooksOutput({w}, std::move(j)), std::cout);
  }
  if (webhooks_delete_cmd->parsed()) {
    v1::DeleteWebhookRequest req;
    req.set_tenant(a.tenant);
    req.set_name(a.name);
    v1::DeleteWebhookResponse resp;
    if (absl::Status st =
            client.Call(&v1::Admin::Stub::DeleteWebhook, req, &resp);
        !st.ok()) {
      return rpc_error(st);
    }
    std::cout << "webhook/" << a.name << " deleted\n";
    return 0;
  }
  v1::ListWebhooksRequest req;
  req.set_tenant(a.tenant);
  std::vector<v1::Webhook> hooks;
  absl::Status st =
      FetchPages(a.limit, [&](const std::string& token, int page_size,
                              std::string* next_token, size_t* fetched) {
        req.set_page_token(token);
        req.set_page_size(page_size);
        v1::ListWebhooksResponse resp;
        VOUCH_RETURN_IF_ERROR(
            client.Call(&v1::Admin::Stub::ListWebhooks, req, &resp));
        hooks.insert(hooks.end(), resp.webhooks().begin(),
                     resp.webhooks().end());
        *next_token = resp.next_page_token();
        *fetched = hooks.size();
        return absl::OkStatus();
      });
  if (!st.ok()) return rpc_error(st);
  nlohmann::json j;
  j["webhooks"] = nlohmann::json::array();
  for (const auto& w : hooks) j["webhooks"].push_back(WebhooksToJson(w));
  return PrintOutput(format, WebhooksOutput(hooks, std::move(j)), std::cout);
}

}  // namespace

void AddWebhookCommands(CLI::App& cli) {
  WebhookArgs& a = ParsedWebhookArgs();
  webhooks_cmd = cli.add_subcommand(
      "webhooks",
      "Webhook subscriptions: signed CloudEvents of state changes over HTTPS");
  webhooks_cmd->require_subcommand(1);
  webhooks_add_cmd = webhooks_cmd->add_subcommand(
      "add", "Subscribe a receiver (admin); prints a generated secret once");
  webhooks_add_cmd
      ->add_option("name", a.name, "Subscription name ([a-z0-9-], 1..63)")
      ->required();
  webhooks_add_cmd->add_option("--url", a.url, "Receiver URL (https:// only)")
      ->required();
  webhooks_add_cmd->add_option(
      "--states", a.states,
      "Only changes into these states, e.g. fail,timeout "
      "(default: every change)");
  webhooks_add_cmd->add_option(
      "--secret-file", a.secret_file,
      "File holding the signing secret (whsec_<base64>); "
      "default: the verifier generates one");
  webhooks_get_cmd = webhooks_cmd->add_subcommand(
      "get", "One subscription and its delivery state (admin)");
  webhooks_get_cmd->add_option("name", a.name, "Subscription name")->required();
  webhooks_list_cmd =
      webhooks_cmd->add_subcommand("list", "List subscriptions (admin)");
  webhooks_list_cmd
      ->add_option("--limit", a.limit, "At most this many (0: all)")
      ->check(CLI::NonNegativeNumber);
  webhooks_delete_cmd = webhooks_cmd->add_subcommand(
      "delete", "Delete a subscription (admin); deliveries stop");
  webhooks_delete_cmd->add_option("name", a.name, "Subscription name")
      ->required();
  for (CLI::App* c : {webhooks_add_cmd, webhooks_get_cmd, webhooks_list_cmd,
                      webhooks_delete_cmd}) {
    c->add_option("--tenant", a.tenant,
                  "Tenant (default: your certificate's only tenant)");
  }
}

std::optional<int> RunWebhookCommands(AppContext& ctx) {
  if (webhooks_cmd == nullptr || !webhooks_cmd->parsed()) return std::nullopt;
  std::string server;
  std::unique_ptr<sdk::Client> client = AdminClient(ctx, "webhooks", &server);
  if (client == nullptr) return 2;
  return Run(ctx, *client, server);
}

}  // namespace vouch::tenant
