// Fleet operations: `vouchctl agents update ID...|--selector SEL` (one
// UpdateAgents transaction at the verifier), `agents delete --selector`
// (DeleteAgentsBySelector: list, confirm, unenroll each listed agent) and
// `vouchctl prune` (registrations never activated, agents not seen: listed
// from the registrar and the verifier, then removed through the same delete
// RPCs an operator would call). Exit 0 ok, 1 not found or refused, 2 usage
// or connection trouble.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "sdk/client.h"
#include "tenant/cli_common.h"
#include "tenant/offline_commands.h"
#include "tenant/output.h"
#include "tenant/records.h"
#include "vouch/v1/admin.grpc.pb.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch::tenant {
namespace {

struct FleetArgs {
  std::string tenant;
  std::vector<std::string> agent_ids;
  std::string selector;
  std::string runtime_policy;
  std::string boot_policy;
  bool no_boot_policy = false;
  std::string interval;
  std::string unactivated_after;
  std::string unseen_after;
  bool dry_run = false;
  bool yes = false;
};

FleetArgs& ParsedFleetArgs() {
  static FleetArgs* args = new FleetArgs();
  return *args;
}

CLI::App* update_cmd = nullptr;
CLI::App* prune_cmd = nullptr;

absl::Time FleetTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

// Asks "QUESTION [y/N] " on stderr; only "y" or "yes" is consent. A stdin
// that is not a terminal is refused (scripts pass --yes), so a pipe never
// answers for the operator.
bool Confirm(const std::string& command, const std::string& question,
             bool yes) {
  if (yes) return true;
  if (isatty(STDIN_FILENO) == 0) {
    std::cerr << "vouchctl " << command
              << ": stdin is not a terminal: give --yes to go ahead\n";
    return false;
  }
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  answer = absl::AsciiStrToLower(absl::StripAsciiWhitespace(answer));
  return answer == "y" || answer == "yes";
}

// Every enrolled agent of the tenant that matches `selector`.
absl::StatusOr<std::vector<v1::AgentStatus>> ListMatching(
    sdk::Client& client, const std::string& tenant,
    const std::string& selector) {
  v1::ListAgentsRequest req;
  req.set_tenant(tenant);
  req.set_label_selector(selector);
  std::vector<v1::AgentStatus> agents;
  std::string next;
  VOUCH_RETURN_IF_ERROR(ListAgentPages(client, req, 0, &agents, &next));
  return agents;
}

int RunUpdate(AppContext& ctx) {
  const FleetArgs& a = ParsedFleetArgs();
  if (a.agent_ids.empty() == a.selector.empty()) {
    std::cerr << "vouchctl agents update: give agent ids or --selector\n";
    return 2;
  }
  v1::UpdateAgentsRequest req;
  req.set_tenant(a.tenant);
  for (const std::string& id : a.agent_ids) req.add_agent_ids(id);
  req.set_label_selector(a.selector);
  req.set_runtime_policy(a.runtime_policy);
  req.set_boot_policy(a.boot_policy);
  req.set_clear_boot_policy(a.no_boot_policy);
  if (!a.interval.empty()) {
    absl::Duration d;
    if (!absl::ParseDuration(a.interval, &d) || d < absl::Seconds(1)) {
      std::cerr << "vouchctl agents update: --interval: a duration such as "
                   "30s or 5m\n";
      return 2;
    }
    req.set_interval_seconds(static_cast<int32_t>(absl::ToInt64Seconds(d)));
  }
  std::string server;
  std::unique_ptr<sdk::Client> client =
      AdminClient(ctx, "agents update", &server);
  if (client == nullptr) return 2;
  v1::UpdateAgentsResponse resp;
  if (absl::Status st =
          client->Call(&v1::Admin::Stub::UpdateAgents, req, &resp);
      !st.ok()) {
    return RpcError("agents update", st, server, Service::kVerifier);
  }
  std::vector<v1::AgentStatus> agents(resp.agents().begin(),
                                      resp.agents().end());
  nlohmann::json j;
  j["agents"] = nlohmann::json::array();
  for (const auto& agent : agents) j["agents"].push_back(AgentJson(agent));
  if (agents.empty()) std::cerr << "no agent matched; nothing changed\n";
  return PrintOutput(OutputFormatOf(ctx), AgentsOutput(agents, std::move(j)),
                     std::cout);
}

// A registration or agent prune removes, and why.
struct Doomed {
  std::string agent_id;
  std::string reason;  // unactivated | unseen
  absl::Time last_seen;
  bool enrolled = false;
};

absl::StatusOr<absl::Duration> Age(const std::string& flag,
                                   const std::string& text) {
  absl::Duration d;
  // absl durations have no days; "7d" is what operators write.
  std::string t = text;
  if (!t.empty() && t.back() == 'd') {
    int64_t days = 0;
    if (absl::SimpleAtoi(t.substr(0, t.size() - 1), &days) && days >= 0 &&
        days <= 3650) {
      return absl::Hours(24 * days);
    }
  } else if (absl::ParseDuration(t, &d) && d >= absl::ZeroDuration()) {
    return d;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(flag, " ", text, ": a duration such as 7d, 36h or 30m"));
}

int RunPrune(AppContext& ctx) {
  const FleetArgs& a = ParsedFleetArgs();
  if (a.unactivated_after.empty() && a.unseen_after.empty()) {
    std::cerr << "vouchctl prune: give --unactivated-after and/or "
                 "--unseen-after\n";
    return 2;
  }
  std::optional<absl::Duration> unactivated, unseen;
  for (auto [flag, text, out] :
       {std::make_tuple("--unactivated-after", &a.unactivated_after,
                        &unactivated),
        std::make_tuple("--unseen-after", &a.unseen_after, &unseen)}) {
    if (text->empty()) continue;
    absl::StatusOr<absl::Duration> d = Age(flag, *text);
    if (!d.ok()) {
      std::cerr << "vouchctl prune: " << d.status().message() << "\n";
      return 2;
    }
    *out = *d;
  }
  // The registrations (registrar) and the enrollments (verifier).
  std::string registrar;
  std::shared_ptr<grpc::Channel> channel =
      ClientChannel(ctx, "prune", Service::kRegistrar, &registrar);
  if (channel == nullptr) return 2;
  auto reg_stub = v1::Registrar::NewStub(channel);
  std::string verifier;
  std::unique_ptr<sdk::Client> client = AdminClient(ctx, "prune", &verifier);
  if (client == nullptr) return 2;
  std::vector<v1::RegisteredAgent> registrations;
  v1::ListRegisteredAgentsRequest rreq;
  rreq.set_tenant(a.tenant);
  absl::Status st = FetchPages(0, [&](const std::string& token, int page_size,
                                      std::string* next, size_t* fetched) {
    rreq.set_page_token(token);
    rreq.set_page_size(page_size);
    v1::ListRegisteredAgentsResponse resp;
    grpc::ClientContext c;
    c.set_deadline(RpcDeadline());
    grpc::Status g = reg_stub->ListRegisteredAgents(&c, rreq, &resp);
    if (!g.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(g.error_code()),
                          g.error_message());
    }
    registrations.insert(registrations.end(), resp.agents().begin(),
                         resp.agents().end());
    *next = resp.next_page_token();
    *fetched = registrations.size();
    return absl::OkStatus();
  });
  if (!st.ok()) return RpcError("prune", st, registrar, Service::kRegistrar);
  absl::StatusOr<std::vector<v1::AgentStatus>> enrolled =
      ListMatching(*client, a.tenant, "");
  if (!enrolled.ok()) {
    return RpcError("prune", enrolled.status(), verifier, Service::kVerifier);
  }
  std::map<std::string, const v1::AgentStatus*> by_id;
  for (const v1::AgentStatus& s : *enrolled) by_id[s.agent_id()] = &s;

  // Last seen: the newest of its last Register, Activate and verdict.
  const absl::Time now = absl::Now();
  std::vector<Doomed> doomed;
  for (const v1::RegisteredAgent& r : registrations) {
    auto it = by_id.find(r.agent_id());
    const bool is_enrolled = it != by_id.end();
    absl::Time seen = FleetTime(r.registered_at());
    if (r.has_activated_at())
      seen = std::max(seen, FleetTime(r.activated_at()));
    if (is_enrolled && it->second->has_last_verdict_at()) {
      seen = std::max(seen, FleetTime(it->second->last_verdict_at()));
    }
    if (!r.active() && unactivated &&
        FleetTime(r.registered_at()) < now - *unactivated) {
      doomed.push_back({r.agent_id(), "unactivated", seen, is_enrolled});
    } else if (r.active() && unseen && seen < now - *unseen) {
      doomed.push_back({r.agent_id(), "unseen", seen, is_enrolled});
    }
  }
  Output out;
  out.json["pruned"] = nlohmann::json::array();
  out.json["dry_run"] = a.dry_run;
  out.table = Table({{"AGENT_ID"}, {"REASON"}, {"LAST_SEEN"}, {"ENROLLED"}});
  for (const Doomed& d : doomed) {
    const std::string seen =
        absl::FormatTime(absl::RFC3339_sec, d.last_seen, absl::UTCTimeZone());
    out.json["pruned"].push_back({{"agent_id", d.agent_id},
                                  {"reason", d.reason},
                                  {"last_seen", seen},
                                  {"enrolled", d.enrolled}});
    out.table.AddRow(
        {d.agent_id, d.reason, seen, d.enrolled ? "true" : "false"});
    out.names.push_back("registration/" + d.agent_id);
  }
  if (doomed.empty()) {
    std::cerr << "nothing to prune\n";
    return PrintOutput(OutputFormatOf(ctx), out, std::cout);
  }
  if (a.dry_run) {
    std::cerr << "dry run: " << doomed.size()
              << " registration(s) would be removed\n";
    return PrintOutput(OutputFormatOf(ctx), out, std::cout);
  }
  std::cerr << out.table.Render(/*wide=*/false);
  if (!Confirm("prune",
               absl::StrCat("Remove these ", doomed.size(),
                            " registration(s) (enrolled ones are unenrolled "
                            "first)?"),
               a.yes)) {
    std::cerr << "nothing removed\n";
    return a.yes || isatty(STDIN_FILENO) != 0 ? 1 : 2;
  }
  int code = 0;
  for (const Doomed& d : doomed) {
    if (d.enrolled) {
      v1::UnenrollAgentRequest req;
      req.set_tenant(a.tenant);
      req.set_agent_id(d.agent_id);
      v1::UnenrollAgentResponse resp;
      absl::Status u =
          client->Call(&v1::Admin::Stub::UnenrollAgent, req, &resp);
      if (!u.ok() && !absl::IsNotFound(u)) {
        code =
            std::max(code, RpcError("prune", u, verifier, Service::kVerifier));
        continue;
      }
    }
    v1::DeleteRegisteredAgentRequest req;
    req.set_tenant(a.tenant);
    req.set_agent_id(d.agent_id);
    v1::DeleteRegisteredAgentResponse resp;
    grpc::ClientContext c;
    c.set_deadline(RpcDeadline());
    grpc::Status g = reg_stub->DeleteRegisteredAgent(&c, req, &resp);
    if (!g.ok() && g.error_code() != grpc::StatusCode::NOT_FOUND) {
      code =
          std::max(code, RpcError("prune", g, registrar, Service::kRegistrar));
      continue;
    }
    std::cerr << "registration/" << d.agent_id << " removed (" << d.reason
              << ")\n";
  }
  PrintOutput(OutputFormatOf(ctx), out, std::cout);
  return code;
}

}  // namespace

int DeleteAgentsBySelector(sdk::Client& client, const std::string& server,
                           const std::string& tenant,
                           const std::string& selector, bool yes) {
  if (absl::StripAsciiWhitespace(selector).empty()) {
    std::cerr << "vouchctl agents delete: --selector is empty (it would "
                 "match every agent)\n";
    return 2;
  }
  absl::StatusOr<std::vector<v1::AgentStatus>> agents =
      ListMatching(client, tenant, selector);
  if (!agents.ok()) {
    return RpcError("agents delete", agents.status(), server,
                    Service::kVerifier);
  }
  if (agents->empty()) {
    std::cerr << "no enrolled agent matches " << selector << "\n";
    return 0;
  }
  std::cerr << "agents matching " << selector << ":\n";
  for (const v1::AgentStatus& s : *agents) {
    std::cerr << "  " << s.agent_id() << "  "
              << s.enrollment().runtime_policy().name() << "\n";
  }
  if (!Confirm("agents delete",
               absl::StrCat("Unenroll these ", agents->size(), " agent(s)?"),
               yes)) {
    std::cerr << "nothing deleted\n";
    return isatty(STDIN_FILENO) != 0 || yes ? 1 : 2;
  }
  // Exactly the agents listed: one enrolled meanwhile is not touched.
  int code = 0;
  for (const v1::AgentStatus& s : *agents) {
    v1::UnenrollAgentRequest req;
    req.set_tenant(tenant);
    req.set_agent_id(s.agent_id());
    v1::UnenrollAgentResponse resp;
    absl::Status st = client.Call(&v1::Admin::Stub::UnenrollAgent, req, &resp);
    if (!st.ok() && !absl::IsNotFound(st)) {
      code = std::max(
          code, RpcError("agents delete", st, server, Service::kVerifier));
      continue;
    }
    std::cout << "agent/" << s.agent_id() << " deleted (unenrolled)\n";
  }
  return code;
}

void AddFleetCommands(CLI::App& cli) {
  FleetArgs& a = ParsedFleetArgs();
  std::vector<CLI::App*> found = cli.get_subcommands(
      [](CLI::App* sub) { return sub->get_name() == "agents"; });
  std::vector<CLI::App*> with_tenant;
  if (!found.empty()) {
    update_cmd = found.front()->add_subcommand(
        "update",
        "Change the policies or interval of agents, by id or label selector, "
        "in one transaction");
    update_cmd->add_option("agent_ids", a.agent_ids, "The agents (or -l)");
    update_cmd->add_option("-l,--selector", a.selector,
                           "Every enrolled agent whose labels match");
    update_cmd->add_option("--runtime-policy", a.runtime_policy,
                           "New runtime (IMA) policy");
    update_cmd->add_option("--boot-policy", a.boot_policy,
                           "New measured-boot policy");
    update_cmd->add_flag("--no-boot-policy", a.no_boot_policy,
                         "Remove the boot policy");
    update_cmd->add_option("--interval", a.interval,
                           "New push interval, 1s..24h");
    with_tenant.push_back(update_cmd);
  }
  prune_cmd = cli.add_subcommand(
      "prune",
      "Remove registrations never activated, and agents not seen, for a "
      "while (admin; lists them and asks first)");
  prune_cmd->add_option("--unactivated-after", a.unactivated_after,
                        "Registrations never activated this long after "
                        "their Register, e.g. 7d");
  prune_cmd->add_option("--unseen-after", a.unseen_after,
                        "Activated agents with no Register, Activate or "
                        "verdict for this long, e.g. 30d");
  prune_cmd->add_flag("--dry-run", a.dry_run, "Only list what would go");
  prune_cmd->add_flag("--yes,-y", a.yes,
                      "Do not ask (required when stdin is not a terminal)");
  with_tenant.push_back(prune_cmd);
  for (CLI::App* c : with_tenant) {
    c->add_option("--tenant", a.tenant,
                  "Tenant (default: your certificate's only tenant)");
  }
}

std::optional<int> RunFleetCommands(AppContext& ctx) {
  if (update_cmd != nullptr && update_cmd->parsed()) return RunUpdate(ctx);
  if (prune_cmd != nullptr && prune_cmd->parsed()) return RunPrune(ctx);
  return std::nullopt;
}

}  // namespace vouch::tenant
