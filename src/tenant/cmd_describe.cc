// vouchctl describe agent ID: one view of an agent: its attestation state
// and failures (verifier), its registration (registrar, when an address is
// known; its absence or an error is shown, not fatal) and its recent
// attestations. -o json/yaml prints {agent, registration, history}.
// Exit 0 ok, 1 unknown agent or refused, 2 connection trouble.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/bytes.h"
#include "core/failure_code.h"
#include "sdk/names.h"
#include "tenant/cli_common.h"
#include "tenant/contexts.h"
#include "tenant/offline_commands.h"
#include "tenant/output.h"
#include "tenant/records.h"
#include "vouch/v1/admin.grpc.pb.h"
#include "vouch/v1/registrar.grpc.pb.h"

namespace vouch::tenant {
namespace {

std::string agent_id;
std::string tenant;
int history = 5;
CLI::App* describe_cmd = nullptr;
CLI::App* describe_agent = nullptr;

void Line(std::string* out, const std::string& label,
          const std::string& value) {
  absl::StrAppend(out, absl::StrFormat("%-18s%s\n", label + ":",
                                       value.empty() ? "-" : value));
}

// The registration, or why it is not shown.
struct Registration {
  std::optional<v1::RegisteredAgent> agent;
  std::string note;
};

Registration FetchRegistration(AppContext& ctx) {
  Registration r;
  absl::StatusOr<Endpoints> e = ResolveEndpoints(ctx.config);
  if (!e.ok() || e->registrar.empty()) {
    r.note =
        "no registrar address (--registrar, VOUCH_REGISTRAR or the "
        "context's registrar)";
    return r;
  }
  std::string server;
  std::shared_ptr<grpc::Channel> channel =
      ClientChannel(ctx, "describe", Service::kRegistrar, &server);
  if (channel == nullptr) {
    r.note = "cannot reach the registrar";
    return r;
  }
  v1::GetRegisteredAgentRequest req;
  req.set_tenant(tenant);
  req.set_agent_id(agent_id);
  v1::RegisteredAgent agent;
  grpc::ClientContext c;
  c.set_deadline(RpcDeadline());
  grpc::Status st =
      v1::Registrar::NewStub(channel)->GetRegisteredAgent(&c, req, &agent);
  if (!st.ok()) {
    r.note =
        absl::StrCat("registrar at ", server, ": ",
                     st.error_message().empty() ? "error" : st.error_message());
    return r;
  }
  r.agent = agent;
  return r;
}

std::string Text(const v1::AgentStatus& a, const Registration& reg,
                 const v1::GetAttestationHistoryResponse& hist) {
  std::string out;
  Line(&out, "Agent", a.agent_id());
  Line(&out, "Tenant", a.tenant());
  Line(&out, "State",
       absl::StrCat(sdk::StateName(a.state()), " since ",
                    Rfc3339(a.state_since())));
  Line(&out, "Verifier",
       absl::StrCat(a.verifier().empty() ? "-" : a.verifier(),
                    a.connected() ? " (connected)" : " (not connected)"));
  Line(&out, "Last verdict",
       a.has_last_verdict_at() ? Rfc3339(a.last_verdict_at()) : "");
  const v1::Enrollment& en = a.enrollment();
  Line(&out, "Runtime policy",
       en.runtime_policy().name().empty()
           ? ""
           : absl::StrCat(en.runtime_policy().name(), " v",
                          en.runtime_policy().version()));
  Line(&out, "Boot policy", en.boot_policy().name());
  Line(&out, "PCR policy", en.pcr_policy().name());
  Line(&out, "Interval",
       en.interval().seconds() > 0 ? absl::StrCat(en.interval().seconds(), "s")
                                   : "");
  Line(&out, "IMA next entry",
       a.has_ima_next_entry() ? absl::StrCat(a.ima_next_entry()) : "");
  Line(&out, "Agent version", a.agent_version());
  if (a.failures().empty()) {
    Line(&out, "Failures", "none");
  } else {
    out += "Failures:\n";
    for (const v1::Failure& f : a.failures()) {
      absl::StrAppend(&out, "  ", core::FailureCodeName(f.code()), " ",
                      f.path(), f.path().empty() ? "" : " ", f.detail(), "\n");
    }
  }
  out += "Registration:\n";
  if (reg.agent) {
    const v1::RegisteredAgent& r = *reg.agent;
    absl::StrAppend(
        &out, "  Active:         ", r.active() ? "true" : "false",
        "\n  Registered:     ", Rfc3339(r.registered_at()),
        "\n  Activated:      ",
        r.has_activated_at() ? Rfc3339(r.activated_at()) : "-",
        "\n  EK SHA-256:     ", HexEncode(AsBytes(r.ek_sha256())),
        "\n  EK cert issuer: ",
        r.ek_certificate_issuer().empty() ? "-" : r.ek_certificate_issuer(),
        "\n");
  } else {
    absl::StrAppend(&out, "  ", reg.note, "\n");
  }
  out += "Recent attestations:\n";
  const std::string table = HistoryOutput(hist).table.Render(false);
  for (absl::string_view line :
       absl::StrSplit(table, '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, "  ", line, "\n");
  }
  return out;
}

}  // namespace

void AddDescribeCommands(CLI::App& cli) {
  describe_cmd = cli.add_subcommand(
      "describe", "One view of an object, from every server that knows it");
  describe_cmd->require_subcommand(1);
  describe_agent = describe_cmd->add_subcommand(
      "agent",
      "An agent's state, failures, registration and recent attestations");
  describe_agent->add_option("agent_id", agent_id, "The agent")->required();
  describe_agent->add_option(
      "--tenant", tenant, "Tenant (default: your certificate's only tenant)");
  describe_agent
      ->add_option("--history", history,
                   "Recent attestations shown (default 5)")
      ->check(CLI::Range(1, 1000));
}

std::optional<int> RunDescribeCommands(AppContext& ctx) {
  if (describe_cmd == nullptr || !describe_cmd->parsed()) return std::nullopt;
  std::string server;
  std::unique_ptr<sdk::Client> client = AdminClient(ctx, "describe", &server);
  if (client == nullptr) return 2;
  v1::GetAgentStatusRequest req;
  req.set_tenant(tenant);
  req.set_agent_id(agent_id);
  v1::AgentStatus status;
  if (absl::Status st =
          client->Call(&v1::Admin::Stub::GetAgentStatus, req, &status);
      !st.ok()) {
    return RpcError("describe", st, server, Service::kVerifier);
  }
  v1::GetAttestationHistoryRequest hreq;
  hreq.set_tenant(tenant);
  hreq.set_agent_id(agent_id);
  hreq.set_page_size(history);
  v1::GetAttestationHistoryResponse hist;
  if (absl::Status st =
          client->Call(&v1::Admin::Stub::GetAttestationHistory, hreq, &hist);
      !st.ok()) {
    return RpcError("describe", st, server, Service::kVerifier);
  }
  const Registration reg = FetchRegistration(ctx);
  Output out;
  out.json["agent"] = AgentJson(status);
  out.json["registration"] =
      reg.agent ? RegistrationJson(*reg.agent) : nlohmann::json(nullptr);
  if (!reg.agent) out.json["registration_note"] = reg.note;
  out.json["history"] = HistoryOutput(hist).json["records"];
  out.names.push_back("agent/" + status.agent_id());
  out.text = Text(status, reg, hist);
  return PrintOutput(OutputFormatOf(ctx), out, std::cout);
}

}  // namespace vouch::tenant
