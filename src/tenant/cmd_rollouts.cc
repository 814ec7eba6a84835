// vouchctl policies shadow|window|rollouts|end-rollout|shadow-report|promote:
// roll-outs of a runtime policy (docs/ima.md "Shadow versions and update
// windows"), through the SDK, printed through output.h. They join the
// `policies` group of cmd_agents.cc. Exit 0 ok, 1 refused, 2 usage or
// connection trouble.
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/attest/wire.h"
#include "sdk/client.h"
#include "tenant/cli_common.h"
#include "tenant/offline_commands.h"
#include "tenant/output.h"
#include "tenant/records.h"
#include "vouch/v1/admin.grpc.pb.h"

namespace vouch::tenant {
namespace {

struct RolloutArgs {
  std::string tenant;
  std::string policy;
  std::string candidate;
  std::string selector;
  std::vector<std::string> agents;
  std::string from = "now";
  std::string until;
  std::string duration;
  std::string kind;
  uint64_t expected_version = 0;
};

RolloutArgs& ParsedRolloutArgs() {
  static RolloutArgs* args = new RolloutArgs();
  return *args;
}

CLI::App* shadow_cmd = nullptr;
CLI::App* window_cmd = nullptr;
CLI::App* list_cmd = nullptr;
CLI::App* end_cmd = nullptr;
CLI::App* report_cmd = nullptr;
CLI::App* promote_cmd = nullptr;

std::string KindName(int kind) {
  return kind == v1::ROLLOUT_KIND_WINDOW ? "window" : "shadow";
}

nlohmann::json RolloutJson(const v1::PolicyRollout& r) {
  nlohmann::json j;
  j["tenant"] = r.tenant();
  j["policy"] = r.policy();
  j["kind"] = KindName(r.kind());
  j["candidate"] = r.candidate();
  j["label_selector"] = r.label_selector();
  j["agent_ids"] =
      std::vector<std::string>(r.agent_ids().begin(), r.agent_ids().end());
  j["all_agents"] = r.agent_ids().empty() && r.label_selector().empty();
  j["not_before"] = r.has_not_before() ? nlohmann::json(Rfc3339(r.not_before()))
                                       : nlohmann::json(nullptr);
  j["not_after"] = r.has_not_after() ? nlohmann::json(Rfc3339(r.not_after()))
                                     : nlohmann::json(nullptr);
  j["created_at"] = Rfc3339(r.created_at());
  j["created_by"] = r.created_by();
  return j;
}

std::string AgentsText(const v1::PolicyRollout& r) {
  if (r.agent_ids().empty() && r.label_selector().empty()) return "all";
  return absl::StrCat(
      r.agent_ids_size(), r.label_selector().empty() ? "" : " (",
      r.label_selector(), r.label_selector().empty() ? "" : ")");
}

Output RolloutsOutput(const std::vector<v1::PolicyRollout>& rollouts) {
  Output out;
  out.json["rollouts"] = nlohmann::json::array();
  out.table = Table({{"POLICY"},
                     {"KIND"},
                     {"CANDIDATE"},
                     {"AGENTS"},
                     {"FROM"},
                     {"UNTIL"},
                     Table::Wide("CREATED"),
                     Table::Wide("CREATED_BY")});
  for (const v1::PolicyRollout& r : rollouts) {
    out.json["rollouts"].push_back(RolloutJson(r));
    out.table.AddRow({r.policy(), KindName(r.kind()), r.candidate(),
                      AgentsText(r),
                      r.has_not_before() ? Rfc3339(r.not_before()) : "-",
                      r.has_not_after() ? Rfc3339(r.not_after()) : "-",
                      Rfc3339(r.created_at()), r.created_by()});
    out.names.push_back(
        absl::StrCat("rollout/", r.policy(), "/", KindName(r.kind())));
  }
  return out;
}

Output ReportOutput(const v1::ShadowReport& r) {
  Output out;
  out.json["policy"] = r.policy();
  out.json["shadow"] =
      r.has_shadow() ? RolloutJson(r.shadow()) : nlohmann::json(nullptr);
  out.json["agents_failing"] = r.agents_failing();
  out.json["failure_count"] = r.failure_count();
  out.json["agents"] = nlohmann::json::array();
  out.table = Table({{"AGENT"},
                     {"CANDIDATE"},
                     {"ROUNDS"},
                     {"ENTRIES"},
                     {"WOULD_FAIL"},
                     Table::Wide("UPDATED")});
  for (const v1::ShadowAgentResult& a : r.agents()) {
    nlohmann::json j;
    j["agent_id"] = a.agent_id();
    j["candidate"] = a.candidate();
    j["candidate_version"] = a.candidate_version();
    j["rounds"] = a.rounds();
    j["entries_checked"] = a.entries_checked();
    j["failure_count"] = a.failure_count();
    j["failures"] = FailuresJson(a.failures());
    j["failures_truncated"] = a.failures_truncated();
    j["updated_at"] = Rfc3339(a.updated_at());
    out.json["agents"].push_back(std::move(j));
    out.table.AddRow(
        {a.agent_id(), absl::StrCat(a.candidate(), "@", a.candidate_version()),
         absl::StrCat(a.rounds()), absl::StrCat(a.entries_checked()),
         absl::StrCat(a.failure_count()), Rfc3339(a.updated_at())});
    for (const v1::Failure& f : a.failures()) {
      out.table.AddDetail(FailureLine(f));
    }
    out.names.push_back("agent/" + a.agent_id());
  }
  return out;
}

// "now" or RFC 3339.
bool ParseWhen(const std::string& flag, const std::string& text,
               absl::Time* out) {
  if (text == "now") {
    *out = absl::Now();
    return true;
  }
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, out, &err)) return true;
  std::cerr << "vouchctl policies window: " << flag
            << ": not RFC 3339 or now: " << err << "\n";
  return false;
}

template <typename Req>
void Target(const RolloutArgs& a, Req* req) {
  req->set_label_selector(a.selector);
  for (const std::string& id : a.agents) req->add_agent_ids(id);
}

int RunRollouts(AppContext& ctx) {
  const RolloutArgs& a = ParsedRolloutArgs();
  std::string server;
  std::unique_ptr<sdk::Client> client = AdminClient(ctx, "policies", &server);
  if (client == nullptr) return 2;
  auto fail = [&](const absl::Status& st) {
    return RpcError("policies", st, server, Service::kVerifier);
  };
  const OutputFormat format = OutputFormatOf(ctx);
  if (shadow_cmd->parsed() || window_cmd->parsed()) {
    v1::SetPolicyRolloutRequest req;
    req.set_tenant(a.tenant);
    req.set_policy(a.policy);
    req.set_candidate(a.candidate);
    Target(a, &req);
    req.set_kind(shadow_cmd->parsed() ? v1::ROLLOUT_KIND_SHADOW
                                      : v1::ROLLOUT_KIND_WINDOW);
    if (window_cmd->parsed()) {
      absl::Time from;
      if (!ParseWhen("--from", a.from, &from)) return 2;
      absl::Time until;
      if (a.until.empty() == a.duration.empty()) {
        std::cerr << "vouchctl policies window: give --until or --for\n";
        return 2;
      }
      if (!a.until.empty()) {
        if (!ParseWhen("--until", a.until, &until)) return 2;
      } else {
        absl::Duration d;
        if (!absl::ParseDuration(a.duration, &d) || d <= absl::ZeroDuration()) {
          std::cerr << "vouchctl policies window: --for: a duration such as "
                       "2h or 90m\n";
          return 2;
        }
        until = from + d;
      }
      core::attest::SetTimestamp(from, req.mutable_not_before());
      core::attest::SetTimestamp(until, req.mutable_not_after());
    }
    v1::PolicyRollout r;
    if (absl::Status st =
            client->Call(&v1::Admin::Stub::SetPolicyRollout, req, &r);
        !st.ok()) {
      return fail(st);
    }
    return PrintOutput(format, RolloutsOutput({r}), std::cout);
  }
  if (end_cmd->parsed()) {
    v1::DeletePolicyRolloutRequest req;
    req.set_tenant(a.tenant);
    req.set_policy(a.policy);
    req.set_kind(a.kind == "window" ? v1::ROLLOUT_KIND_WINDOW
                                    : v1::ROLLOUT_KIND_SHADOW);
    v1::DeletePolicyRolloutResponse resp;
    if (absl::Status st =
            client->Call(&v1::Admin::Stub::DeletePolicyRollout, req, &resp);
        !st.ok()) {
      return fail(st);
    }
    std::cout << "rollout/" << a.policy << "/" << a.kind << " ended\n";
    return 0;
  }
  if (report_cmd->parsed()) {
    v1::GetShadowReportRequest req;
    req.set_tenant(a.tenant);
    req.set_policy(a.policy);
    v1::ShadowReport resp;
    if (absl::Status st =
            client->Call(&v1::Admin::Stub::GetShadowReport, req, &resp);
        !st.ok()) {
      return fail(st);
    }
    if (format == OutputFormat::kTable || format == OutputFormat::kWide) {
      std::cout << "policy " << resp.policy() << ": "
                << (resp.has_shadow()
                        ? absl::StrCat("shadow ", resp.shadow().candidate())
                        : std::string("no shadow set"))
                << "; " << resp.agents_failing() << " of " << resp.agents_size()
                << " agents would fail (" << resp.failure_count()
                << " entries)\n";
    }
    return PrintOutput(format, ReportOutput(resp), std::cout);
  }
  if (promote_cmd->parsed()) {
    v1::PromotePolicyRequest req;
    req.set_tenant(a.tenant);
    req.set_policy(a.policy);
    req.set_expected_candidate_version(a.expected_version);
    v1::Policy p;
    if (absl::Status st =
            client->Call(&v1::Admin::Stub::PromotePolicy, req, &p);
        !st.ok()) {
      return fail(st);
    }
    std::cout << "policy/" << p.name() << " version " << p.version() << " ("
              << p.origin() << ") is active\n";
    return 0;
  }
  v1::ListPolicyRolloutsRequest req;
  req.set_tenant(a.tenant);
  req.set_policy(a.policy);
  v1::ListPolicyRolloutsResponse resp;
  if (absl::Status st =
          client->Call(&v1::Admin::Stub::ListPolicyRollouts, req, &resp);
      !st.ok()) {
    return fail(st);
  }
  return PrintOutput(format,
                     RolloutsOutput(std::vector<v1::PolicyRollout>(
                         resp.rollouts().begin(), resp.rollouts().end())),
                     std::cout);
}

}  // namespace

void AddRolloutCommands(CLI::App& cli) {
  RolloutArgs& a = ParsedRolloutArgs();
  std::vector<CLI::App*> found = cli.get_subcommands(
      [](CLI::App* sub) { return sub->get_name() == "policies"; });
  if (found.empty()) return;
  CLI::App* policies = found.front();
  shadow_cmd = policies->add_subcommand(
      "shadow",
      "Judge a candidate runtime policy next to NAME on every Evidence and "
      "report its would-be failures (no agent's state changes)");
  window_cmd = policies->add_subcommand(
      "window",
      "For a time window, let a candidate runtime policy accept the files "
      "NAME fails (a package update)");
  list_cmd = policies->add_subcommand(
      "rollouts", "List the shadows and update windows (of NAME, or all)");
  end_cmd = policies->add_subcommand(
      "end-rollout", "End NAME's shadow (and its report) or update window");
  report_cmd = policies->add_subcommand(
      "shadow-report", "Per agent: what NAME's shadow would have failed");
  promote_cmd = policies->add_subcommand(
      "promote",
      "Store NAME's shadow candidate as NAME's next version and end the "
      "shadow");
  for (CLI::App* c :
       {shadow_cmd, window_cmd, end_cmd, report_cmd, promote_cmd}) {
    c->add_option("name", a.policy, "The enrolled runtime policy")->required();
  }
  list_cmd->add_option("name", a.policy, "Only this policy's");
  for (CLI::App* c : {shadow_cmd, window_cmd}) {
    c->add_option("--candidate", a.candidate,
                  "The runtime policy to judge (its newest version)")
        ->required();
    CLI::Option* sel = c->add_option(
        "--selector,-l", a.selector,
        "Only agents whose labels match (resolved now; default: every agent "
        "enrolled with NAME)");
    c->add_option("--agent", a.agents, "Only these agents (repeatable)")
        ->excludes(sel);
  }
  window_cmd->add_option("--from", a.from, "Start: RFC 3339 or now (default)");
  window_cmd->add_option("--until", a.until, "End: RFC 3339");
  window_cmd->add_option("--for", a.duration,
                         "Instead of --until: how long (e.g. 2h; at most "
                         "31 days)");
  end_cmd->add_option("--kind", a.kind, "shadow or window")
      ->required()
      ->check(CLI::IsMember({"shadow", "window"}));
  promote_cmd->add_option("--expected-candidate-version", a.expected_version,
                          "Refuse unless the candidate is at this version");
  for (CLI::App* c :
       {shadow_cmd, window_cmd, list_cmd, end_cmd, report_cmd, promote_cmd}) {
    c->add_option("--tenant", a.tenant,
                  "Tenant (default: your certificate's only tenant)");
  }
}

std::optional<int> RunRolloutCommands(AppContext& ctx) {
  for (CLI::App* c :
       {shadow_cmd, window_cmd, list_cmd, end_cmd, report_cmd, promote_cmd}) {
    if (c != nullptr && c->parsed()) return RunRollouts(ctx);
  }
  return std::nullopt;
}

}  // namespace vouch::tenant
