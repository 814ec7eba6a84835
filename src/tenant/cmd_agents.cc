// vouchctl agents get|list|enroll|delete|history|watch and vouchctl policies
// add|update|get|list|delete|import: the verifier's Admin RPCs through the
// SDK (the address from contexts.h), printed through output.h. Exit 0 ok,
// 1 not found or refused, 2 usage or connection trouble.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/bytes.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "core/attest/wire.h"
#include "core/failure_code.h"
#include "sdk/client.h"
#include "sdk/names.h"
#include "tenant/cli_common.h"
#include "tenant/offline_commands.h"
#include "tenant/output.h"
#include "tenant/records.h"
#include "vouch/v1/admin.grpc.pb.h"

namespace vouch::tenant {

std::string FailureLine(const v1::Failure& f) {
  return absl::StrCat(core::FailureCodeName(f.code()), " ", f.path(),
                      f.path().empty() ? "" : " ", f.detail());
}

nlohmann::json FailuresJson(
    const google::protobuf::RepeatedPtrField<v1::Failure>& failures) {
  nlohmann::json out = nlohmann::json::array();
  for (const v1::Failure& f : failures) {
    nlohmann::json fj;
    fj["code"] = core::FailureCodeName(f.code());
    fj["detail"] = f.detail();
    fj["path"] = f.path();
    fj["ima_entry_index"] = f.has_ima_entry_index()
                                ? nlohmann::json(f.ima_entry_index())
                                : nlohmann::json(nullptr);
    out.push_back(fj);
  }
  return out;
}

nlohmann::json AgentJson(const v1::AgentStatus& a) {
  nlohmann::json j;
  j["agent_id"] = a.agent_id();
  j["tenant"] = a.tenant();
  j["state"] = sdk::StateName(a.state());
  j["state_since"] = Rfc3339(a.state_since());
  j["verifier_id"] = a.verifier();
  j["connected"] = a.connected();
  j["ima_next_entry"] = a.has_ima_next_entry()
                            ? nlohmann::json(a.ima_next_entry())
                            : nlohmann::json(nullptr);
  j["last_verdict_at"] = a.has_last_verdict_at()
                             ? nlohmann::json(Rfc3339(a.last_verdict_at()))
                             : nlohmann::json(nullptr);
  j["last_attestation_id"] = a.last_attestation_id();
  j["reset_count"] = a.reset_count();
  j["runtime_policy"] = a.enrollment().runtime_policy().name();
  j["runtime_policy_version"] = a.enrollment().runtime_policy().version();
  j["boot_policy"] = a.enrollment().boot_policy().name();
  j["pcr_policy"] = a.enrollment().pcr_policy().name();
  j["interval_seconds"] = a.enrollment().interval().seconds();
  j["agent_version"] = a.agent_version();
  j["failures"] = FailuresJson(a.failures());
  return j;
}

Output HistoryOutput(const v1::GetAttestationHistoryResponse& resp) {
  Output out;
  out.json["records"] = nlohmann::json::array();
  out.table = Table({{"TIME"},
                     {"ATTESTATION_ID"},
                     {"STATE"},
                     {"IMA"},
                     {"VERIFIER"},
                     Table::Wide("BOOT_LOG")});
  for (const v1::AttestationRecord& r : resp.records()) {
    const std::string ima =
        r.has_ima_next_entry()
            ? absl::StrCat(r.ima_first_entry(), "..", r.ima_next_entry())
            : "-";
    out.json["records"].push_back(
        {{"attestation_id", r.attestation_id()},
         {"agent_id", r.agent_id()},
         {"state", sdk::StateName(r.state())},
         {"verified_at", Rfc3339(r.verified_at())},
         {"verifier", r.verifier()},
         {"ima", ima},
         {"boot_log_evaluated", r.boot_log_evaluated()},
         {"failures", FailuresJson(r.failures())},
         {"failures_truncated", r.failures_truncated()}});
    out.table.AddRow({Rfc3339(r.verified_at()), r.attestation_id(),
                      sdk::StateName(r.state()), ima, r.verifier(),
                      r.boot_log_evaluated() ? "evaluated" : ""});
    for (const v1::Failure& f : r.failures()) {
      out.table.AddDetail(FailureLine(f));
    }
    out.names.push_back("attestation/" + r.attestation_id());
  }
  return out;
}

// Agents as a table (failures indented under their agent) and names.
Output AgentsOutput(const std::vector<v1::AgentStatus>& agents,
                    nlohmann::json json) {
  Output out;
  out.json = std::move(json);
  out.table = Table({{"AGENT_ID"},
                     {"STATE"},
                     {"LAST_VERDICT"},
                     {"IMA_NEXT"},
                     {"VERIFIER"},
                     Table::Wide("TENANT"),
                     Table::Wide("RUNTIME_POLICY"),
                     Table::Wide("BOOT_POLICY"),
                     Table::Wide("INTERVAL"),
                     Table::Wide("AGENT_VERSION")});
  for (const v1::AgentStatus& a : agents) {
    out.table.AddRow(
        {a.agent_id(), sdk::StateName(a.state()),
         a.has_last_verdict_at() ? Rfc3339(a.last_verdict_at()) : "",
         a.has_ima_next_entry() ? absl::StrCat(a.ima_next_entry()) : "",
         a.verifier(), a.tenant(), a.enrollment().runtime_policy().name(),
         a.enrollment().boot_policy().name(),
         a.enrollment().interval().seconds() > 0
             ? absl::StrCat(a.enrollment().interval().seconds(), "s")
             : "",
         a.agent_version()});
    for (const v1::Failure& f : a.failures()) {
      out.table.AddDetail(FailureLine(f));
    }
    out.names.push_back("agent/" + a.agent_id());
  }
  return out;
}

absl::Status ListAgentPages(sdk::Client& client, v1::ListAgentsRequest req,
                            int limit, std::vector<v1::AgentStatus>* agents,
                            std::string* next) {
  return FetchPages(limit, [&](const std::string& token, int page_size,
                               std::string* next_token, size_t* fetched) {
    req.set_page_token(token);
    req.set_page_size(page_size);
    v1::ListAgentsResponse resp;
    VOUCH_RETURN_IF_ERROR(
        client.Call(&v1::Admin::Stub::ListAgents, req, &resp));
    agents->insert(agents->end(), resp.agents().begin(), resp.agents().end());
    *next_token = *next = resp.next_page_token();
    *fetched = agents->size();
    return absl::OkStatus();
  });
}

namespace {

struct AdminArgs {
  std::string agent_id;
  std::string tenant;
  std::string runtime_policy;
  std::string boot_policy;
  std::string pcr_policy;
  std::string interval;
  std::vector<std::string> states;
  int page_size = 0;  // Hidden, the spelling before --limit.
  bool all = false;   // Hidden: every page is the default now.
  std::string name;
  std::string file;
  std::string kind = "runtime";
  std::string description;
  uint64_t version = 0;
  std::vector<std::string> agent_ids;
  std::string resume;
  int count = 0;
  std::string import_format = "keylime";
  std::string exclude_list;
  bool update = false;
  bool verdicts = false;
  bool shadow = false;
  std::string policy;
  int limit = 0;        // 0: every item (history: 20).
  std::string url;      // policies import --url
  std::string refresh;  // policies import --refresh (a duration)
  bool require_signature = false;
  std::string selector;  // -l / --selector (list, delete)
  bool yes = false;      // delete --selector without asking
};

AdminArgs& ParsedAdminArgs() {
  static AdminArgs* args = new AdminArgs();
  return *args;
}

CLI::App* agents_cmd = nullptr;
CLI::App* agents_get = nullptr;
CLI::App* agents_list = nullptr;
CLI::App* agents_enroll = nullptr;
CLI::App* agents_delete = nullptr;
CLI::App* agents_watch = nullptr;
CLI::App* agents_history = nullptr;
CLI::App* policies_import = nullptr;
CLI::App* policies_cmd = nullptr;
CLI::App* policies_add = nullptr;
CLI::App* policies_update = nullptr;
CLI::App* policies_get = nullptr;
CLI::App* policies_list = nullptr;
CLI::App* policies_delete = nullptr;
CLI::App* policies_history = nullptr;

nlohmann::json AgentsToJson(const v1::Policy& p) {
  nlohmann::json j;
  j["name"] = p.name();
  j["tenant"] = p.tenant();
  j["version"] = p.version();
  j["kind"] = p.kind() == v1::POLICY_KIND_RUNTIME ? "runtime"
              : p.kind() == v1::POLICY_KIND_BOOT  ? "boot"
                                                  : "pcr";
  j["sha256"] = HexEncode(AsBytes(p.sha256()));
  j["description"] = p.description();
  j["created_at"] = Rfc3339(p.created_at());
  j["created_by"] = p.created_by();
  j["release"] = p.release();
  j["origin"] = p.origin();
  j["source_sha256"] = HexEncode(AsBytes(p.source_sha256()));
  j["signer_key_id"] = p.signer_key_id();
  if (p.has_source()) {
    const v1::PolicySource& s = p.source();
    nlohmann::json src;
    src["url"] = s.url();
    src["refresh_seconds"] = s.refresh().seconds();
    src["require_signature"] = s.require_signature();
    src["last_fetch_at"] =
        s.has_last_fetch_at() ? Rfc3339(s.last_fetch_at()) : "";
    src["last_result"] = s.last_result();
    src["last_error"] = s.last_error();
    src["next_fetch_at"] =
        s.has_next_fetch_at() ? Rfc3339(s.next_fetch_at()) : "";
    j["source"] = std::move(src);
  }
  return j;
}

std::string KindName(v1::PolicyKind kind) {
  return kind == v1::POLICY_KIND_RUNTIME ? "runtime"
         : kind == v1::POLICY_KIND_BOOT  ? "boot"
                                         : "pcr";
}

Output PoliciesOutput(const std::vector<v1::Policy>& policies,
                      nlohmann::json json) {
  Output out;
  out.json = std::move(json);
  out.table = Table({{"NAME"},
                     {"VERSION"},
                     {"KIND"},
                     {"CREATED"},
                     {"SHA256"},
                     Table::Wide("TENANT"),
                     Table::Wide("CREATED_BY"),
                     Table::Wide("DESCRIPTION")});
  for (const v1::Policy& p : policies) {
    const std::string sha = HexEncode(AsBytes(p.sha256()));
    out.table.AddRow({p.name(), absl::StrCat(p.version()), KindName(p.kind()),
                      Rfc3339(p.created_at()), sha.substr(0, 16), p.tenant(),
                      p.created_by(), p.description()});
    if (p.has_source()) {
      const v1::PolicySource& s = p.source();
      out.table.AddDetail(absl::StrCat(
          "source ", s.url(), " refresh ", s.refresh().seconds(), "s",
          s.require_signature() ? " signed-only" : "", ", last fetch ",
          s.has_last_fetch_at() ? Rfc3339(s.last_fetch_at()) : "never", " ",
          s.last_result(), s.last_error().empty() ? "" : ": ", s.last_error()));
    }
    out.names.push_back("policy/" + p.name());
  }
  return out;
}

// The old --page-size without --all fetched one page of that size.
int ListLimit(const AdminArgs& a) {
  if (a.limit > 0) return a.limit;
  return a.page_size > 0 && !a.all ? a.page_size : 0;
}

nlohmann::json AgentsToJson(const v1::WatchEvent& e) {
  nlohmann::json j;
  j["resume_token"] = e.resume_token();
  j["event_time"] = Rfc3339(e.event_time());
  if (e.has_heartbeat()) {
    j["kind"] = "heartbeat";
    return j;
  }
  if (e.has_verdict()) {
    j["kind"] = "verdict";
    j["event_id"] = e.event_id();
    j["agent_id"] = e.agent_id();
    j["attestation_id"] = e.verdict().attestation_id();
    j["state"] = sdk::StateName(e.verdict().state());
    j["verifier"] = e.verdict().verifier();
    return j;
  }
  if (e.has_shadow_failure()) {
    const v1::ShadowFailure& f = e.shadow_failure();
    j["kind"] = "shadow_failure";
    j["event_id"] = e.event_id();
    j["agent_id"] = e.agent_id();
    j["policy"] = f.policy();
    j["candidate"] = f.candidate();
    j["candidate_version"] = f.candidate_version();
    j["failure_count"] = f.failure_count();
    j["failures"] = FailuresJson(f.failures());
    return j;
  }
  j["kind"] = "state_change";
  j["event_id"] = e.event_id();
  j["agent_id"] = e.agent_id();
  const v1::StateChange& c = e.state_change();
  j["previous_state"] = sdk::StateName(c.previous_state());
  j["state"] = sdk::StateName(c.state());
  j["cause"] = v1::StateChangeCause_Name(c.cause());
  j["attestation_id"] = c.attestation_id();
  nlohmann::json failures = nlohmann::json::array();
  for (const v1::Failure& f : c.failures()) {
    failures.push_back({{"code", core::FailureCodeName(f.code())},
                        {"path", f.path()},
                        {"detail", f.detail()}});
  }
  j["failures"] = failures;
  return j;
}

// Follows events until interrupted (or --count events): reconnects with
// the last resume token when the verifier goes away.
int RunWatch(sdk::Client& client, const std::string& server,
             OutputFormat format) {
  const AdminArgs& a = ParsedAdminArgs();
  v1::WatchRequest req;
  req.set_tenant(a.tenant);
  for (const std::string& id : a.agent_ids) req.add_agent_ids(id);
  req.set_include_verdicts(a.verdicts);
  req.set_include_shadow(a.shadow);
  for (const std::string& st : a.states) {
    req.add_states(sdk::ParseStateName(st));
  }
  req.set_resume_token(a.resume);
  int seen = 0;
  // The SDK resumes from the last token when the verifier goes away.
  absl::Status st = client.Watch(req, [&](const v1::WatchEvent& e) {
    if (e.has_heartbeat()) return true;
    if (format == OutputFormat::kJson || format == OutputFormat::kYaml) {
      std::cout << AgentsToJson(e).dump(
                       -1, ' ', false, nlohmann::json::error_handler_t::replace)
                << std::endl;
    } else if (format == OutputFormat::kName) {
      std::cout << "agent/" << e.agent_id() << std::endl;
    } else if (e.has_shadow_failure()) {
      const v1::ShadowFailure& f = e.shadow_failure();
      std::cout << Rfc3339(e.event_time()) << " " << e.agent_id() << " shadow "
                << f.candidate() << "@" << f.candidate_version() << " of "
                << f.policy() << " would fail (" << f.failure_count() << ")";
      if (f.failures_size() > 0) std::cout << " " << FailureLine(f.failures(0));
      std::cout << std::endl;
    } else if (e.has_verdict()) {
      std::cout << Rfc3339(e.event_time()) << " " << e.agent_id() << " verdict "
                << sdk::StateName(e.verdict().state()) << " "
                << e.verdict().attestation_id() << std::endl;
    } else {
      const v1::StateChange& ch = e.state_change();
      std::cout << Rfc3339(e.event_time()) << " " << e.agent_id() << " "
                << sdk::StateName(ch.previous_state()) << " -> "
                << sdk::StateName(ch.state()) << " ("
                << v1::StateChangeCause_Name(ch.cause()) << ")";
      if (ch.failures_size() > 0) {
        std::cout << " " << ch.failures(0).path() << " "
                  << ch.failures(0).detail();
      }
      std::cout << std::endl;
    }
    return !(a.count > 0 && ++seen >= a.count);
  });
  if (!st.ok()) return RpcError("agents watch", st, server, Service::kVerifier);
  return 0;
}

// agents history's own flags.
struct HistoryArgs {
  std::string since;  // A duration back from now: 90m, 24h, 7d.
  std::string from;   // RFC 3339 time or YYYY-MM-DD (UTC).
  std::string to;
  std::vector<std::string> states;
};

HistoryArgs& ParsedHistoryArgs() {
  static HistoryArgs* args = new HistoryArgs();
  return *args;
}

// A time bound as the user writes it: RFC 3339 (2026-12-01T08:00:00Z) or a
// date (midnight UTC).
absl::StatusOr<absl::Time> ParseHistoryTime(const std::string& flag,
                                            const std::string& text) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err) ||
      absl::ParseTime("%Y-%m-%d", text, absl::UTCTimeZone(), &t, &err)) {
    return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(flag,
                   ": an RFC 3339 time (2026-12-01T08:00:00Z) or a date "
                   "(2026-12-01), not \"",
                   text, "\""));
}

// --since: a duration (absl syntax: 90m, 24h) or whole days (7d).
absl::StatusOr<absl::Duration> ParseSince(const std::string& text) {
  absl::Duration d;
  int days = 0;
  if (absl::EndsWith(text, "d") &&
      absl::SimpleAtoi(absl::string_view(text).substr(0, text.size() - 1),
                       &days) &&
      days > 0 && days <= 3660000) {
    return absl::Hours(24) * days;
  }
  if (absl::ParseDuration(text, &d) && d > absl::ZeroDuration()) return d;
  return absl::InvalidArgumentError(absl::StrCat(
      "--since: a positive duration (90m, 24h, 7d), not \"", text, "\""));
}

// The request's range and states from the flags.
absl::Status HistoryFilters(const HistoryArgs& h,
                            v1::GetAttestationHistoryRequest* req) {
  if (!h.since.empty()) {
    VOUCH_ASSIGN_OR_RETURN(absl::Duration d, ParseSince(h.since));
    core::attest::SetTimestamp(absl::Now() - d, req->mutable_start_time());
  }
  if (!h.from.empty()) {
    VOUCH_ASSIGN_OR_RETURN(absl::Time t, ParseHistoryTime("--from", h.from));
    core::attest::SetTimestamp(t, req->mutable_start_time());
  }
  if (!h.to.empty()) {
    VOUCH_ASSIGN_OR_RETURN(absl::Time t, ParseHistoryTime("--to", h.to));
    core::attest::SetTimestamp(t, req->mutable_end_time());
  }
  for (const std::string& s : h.states) req->add_states(sdk::ParseStateName(s));
  return absl::OkStatus();
}

// agents history: every page in the range (or --limit records), newest
// first.
int RunHistory(sdk::Client& client, const std::string& server,
               OutputFormat format) {
  const AdminArgs& a = ParsedAdminArgs();
  v1::GetAttestationHistoryRequest req;
  req.set_tenant(a.tenant);
  req.set_agent_id(a.agent_id);
  if (absl::Status st = HistoryFilters(ParsedHistoryArgs(), &req); !st.ok()) {
    std::cerr << "agents history: " << st.message() << std::endl;
    return 2;
  }
  v1::GetAttestationHistoryResponse all;
  absl::Status st =
      FetchPages(a.limit, [&](const std::string& token, int page_size,
                              std::string* next, size_t* fetched) {
        req.set_page_token(token);
        req.set_page_size(page_size);
        v1::GetAttestationHistoryResponse resp;
        VOUCH_RETURN_IF_ERROR(
            client.Call(&v1::Admin::Stub::GetAttestationHistory, req, &resp));
        for (v1::AttestationRecord& r : *resp.mutable_records()) {
          *all.add_records() = std::move(r);
        }
        *next = resp.next_page_token();
        *fetched = all.records_size();
        return absl::OkStatus();
      });
  if (!st.ok())
    return RpcError("agents history", st, server, Service::kVerifier);
  return PrintOutput(format, HistoryOutput(all), std::cout);
}

int RunAgents(sdk::Client& client, const std::string& server,
              OutputFormat format) {
  const AdminArgs& a = ParsedAdminArgs();
  auto fail = [&](const absl::Status& st) {
    return RpcError("agents", st, server, Service::kVerifier);
  };
  if (agents_watch->parsed()) return RunWatch(client, server, format);
  if (agents_history->parsed()) return RunHistory(client, server, format);
  if (agents_get->parsed()) {
    v1::GetAgentStatusRequest req;
    req.set_tenant(a.tenant);
    req.set_agent_id(a.agent_id);
    v1::AgentStatus status;
    if (absl::Status st =
            client.Call(&v1::Admin::Stub::GetAgentStatus, req, &status);
        !st.ok()) {
      return fail(st);
    }
    return PrintOutput(format, AgentsOutput({status}, AgentJson(status)),
                       std::cout);
  }
  if (agents_enroll->parsed()) {
    v1::EnrollAgentRequest req;
    req.set_tenant(a.tenant);
    req.set_agent_id(a.agent_id);
    if (!a.runtime_policy.empty()) {
      req.mutable_runtime_policy()->set_name(a.runtime_policy);
    }
    if (!a.boot_policy.empty()) {
      req.mutable_boot_policy()->set_name(a.boot_policy);
    }
    if (!a.pcr_policy.empty()) {
      req.mutable_pcr_policy()->set_name(a.pcr_policy);
    }
    if (!a.interval.empty()) {
      absl::Duration d;
      if (!absl::ParseDuration(a.interval, &d)) {
        std::cerr << "vouchctl agents enroll: --interval: a duration such as "
                     "30s or 5m\n";
        return 2;
      }
      req.mutable_interval()->set_seconds(absl::ToInt64Seconds(d));
    }
    v1::AgentStatus status;
    if (absl::Status st =
            client.Call(&v1::Admin::Stub::EnrollAgent, req, &status);
        !st.ok()) {
      return fail(st);
    }
    return PrintOutput(format, AgentsOutput({status}, AgentJson(status)),
                       std::cout);
  }
  if (agents_delete->parsed()) {
    if (a.selector.empty() == a.agent_id.empty()) {
      std::cerr << "vouchctl agents delete: give an agent_id or --selector\n";
      return 2;
    }
    if (!a.selector.empty()) {
      return DeleteAgentsBySelector(client, server, a.tenant, a.selector,
                                    a.yes);
    }
    v1::UnenrollAgentRequest req;
    req.set_tenant(a.tenant);
    req.set_agent_id(a.agent_id);
    v1::UnenrollAgentResponse resp;
    if (absl::Status st =
            client.Call(&v1::Admin::Stub::UnenrollAgent, req, &resp);
        !st.ok()) {
      return fail(st);
    }
    std::cout << "agent/" << a.agent_id << " deleted (unenrolled)\n";
    return 0;
  }
  v1::ListAgentsRequest req;
  req.set_tenant(a.tenant);
  for (const std::string& s : a.states) req.add_states(sdk::ParseStateName(s));
  req.set_policy(a.policy);
  req.set_label_selector(a.selector);
  std::vector<v1::AgentStatus> agents;
  std::string next;
  if (absl::Status st =
          ListAgentPages(client, req, ListLimit(a), &agents, &next);
      !st.ok()) {
    return fail(st);
  }
  nlohmann::json j;
  j["agents"] = nlohmann::json::array();
  for (const auto& agent : agents) j["agents"].push_back(AgentJson(agent));
  j["next_page_token"] = next;
  return PrintOutput(format, AgentsOutput(agents, std::move(j)), std::cout);
}

int RunPolicies(sdk::Client& client, const std::string& server,
                OutputFormat format) {
  const AdminArgs& a = ParsedAdminArgs();
  auto fail = [&](const absl::Status& st) {
    return RpcError("policies", st, server, Service::kVerifier);
  };
  std::string content;
  if (policies_add->parsed() || policies_update->parsed() ||
      (policies_import->parsed() && a.url.empty())) {
    if (a.file.empty()) {
      std::cerr << "vouchctl policies: give --file (or --url to import)\n";
      return 2;
    }
    absl::StatusOr<std::string> text = ReadFileUpTo(a.file, 16 << 20);
    if (!text.ok()) {
      std::cerr << "vouchctl policies: " << text.status().message() << "\n";
      return 2;
    }
    content = *std::move(text);
  }
  if (policies_add->parsed()) {
    v1::AddPolicyRequest req;
    req.set_tenant(a.tenant);
    req.set_name(a.name);
    req.set_kind(a.kind == "boot"  ? v1::POLICY_KIND_BOOT
                 : a.kind == "pcr" ? v1::POLICY_KIND_PCR
                                   : v1::POLICY_KIND_RUNTIME);
    req.set_content(content);
    req.set_description(a.description);
    v1::Policy p;
    if (absl::Status st = client.Call(&v1::Admin::Stub::AddPolicy, req, &p);
        !st.ok()) {
      return fail(st);
    }
    return PrintOutput(format, PoliciesOutput({p}, AgentsToJson(p)), std::cout);
  }
  if (policies_update->parsed()) {
    v1::UpdatePolicyRequest req;
    req.set_tenant(a.tenant);
    req.set_name(a.name);
    req.set_content(content);
    req.set_description(a.description);
    req.set_expected_version(a.version);
    v1::Policy p;
    if (absl::Status st = client.Call(&v1::Admin::Stub::UpdatePolicy, req, &p);
        !st.ok()) {
      return fail(st);
    }
    return PrintOutput(format, PoliciesOutput({p}, AgentsToJson(p)), std::cout);
  }
  if (policies_import->parsed()) {
    v1::ImportPolicyRequest req;
    req.set_tenant(a.tenant);
    req.set_name(a.name);
    req.set_content(content);
    if (!a.url.empty()) {
      if (!a.file.empty()) {
        std::cerr << "vouchctl policies import: --file or --url, not both\n";
        return 2;
      }
      req.set_url(a.url);
      req.set_require_signature(a.require_signature);
      if (!a.refresh.empty()) {
        absl::Duration d;
        if (!absl::ParseDuration(a.refresh, &d) || d < absl::ZeroDuration()) {
          std::cerr << "vouchctl policies import: --refresh " << a.refresh
                    << " is not a duration (e.g. 1h)\n";
          return 2;
        }
        const int64_t ms = absl::ToInt64Milliseconds(d);
        req.mutable_refresh()->set_seconds(ms / 1000);
        req.mutable_refresh()->set_nanos(static_cast<int32_t>(ms % 1000) *
                                         1000000);
      }
    } else if (!a.refresh.empty() || a.require_signature) {
      std::cerr << "vouchctl policies import: --refresh and "
                   "--require-signature need --url\n";
      return 2;
    }
    req.set_description(a.description);
    req.set_update_existing(a.update);
    req.set_format(!a.url.empty() && a.import_format == "keylime"
                       ? v1::POLICY_FORMAT_UNSPECIFIED
                   : a.import_format == "allowlist"
                       ? v1::POLICY_FORMAT_ALLOWLIST
                   : a.import_format == "dsse" ? v1::POLICY_FORMAT_DSSE_SIGNED
                   : a.import_format == "refstate"
                       ? v1::POLICY_FORMAT_KEYLIME_MB_REFSTATE_JSON
                   : a.import_format == "tpm-policy"
                       ? v1::POLICY_FORMAT_KEYLIME_TPM_POLICY_JSON
                       : v1::POLICY_FORMAT_KEYLIME_RUNTIME_POLICY_JSON);
    if (!a.exclude_list.empty()) {
      absl::StatusOr<std::string> ex = ReadFileUpTo(a.exclude_list, 1 << 20);
      if (!ex.ok()) {
        std::cerr << "vouchctl policies: " << ex.status().message() << "\n";
        return 2;
      }
      req.set_exclude_list(*ex);
    }
    v1::Policy p;
    if (absl::Status st = client.Call(&v1::Admin::Stub::ImportPolicy, req, &p);
        !st.ok()) {
      return fail(st);
    }
    return PrintOutput(format, PoliciesOutput({p}, AgentsToJson(p)), std::cout);
  }
  if (policies_get->parsed()) {
    v1::GetPolicyRequest req;
    req.set_tenant(a.tenant);
    req.set_name(a.name);
    req.set_version(a.version);
    v1::Policy p;
    if (absl::Status st = client.Call(&v1::Admin::Stub::GetPolicy, req, &p);
        !st.ok()) {
      return fail(st);
    }
    nlohmann::json j = AgentsToJson(p);
    j["content"] = p.content();
    return PrintOutput(format, PoliciesOutput({p}, std::move(j)), std::cout);
  }
  if (policies_history->parsed()) {
    v1::GetPolicyHistoryRequest req;
    req.set_tenant(a.tenant);
    req.set_name(a.name);
    req.set_page_size(a.limit > 0 ? a.limit : 100);
    v1::GetPolicyHistoryResponse resp;
    if (absl::Status st =
            client.Call(&v1::Admin::Stub::GetPolicyHistory, req, &resp);
        !st.ok()) {
      return fail(st);
    }
    const std::vector<v1::Policy> versions(resp.versions().begin(),
                                           resp.versions().end());
    nlohmann::json j;
    j["versions"] = nlohmann::json::array();
    for (const v1::Policy& p : versions)
      j["versions"].push_back(AgentsToJson(p));
    Output out;
    out.json = std::move(j);
    out.table = Table({{"VERSION"},
                       {"RELEASE"},
                       {"CREATED"},
                       {"ORIGIN"},
                       {"SHA256"},
                       Table::Wide("SIGNER"),
                       Table::Wide("CREATED_BY"),
                       Table::Wide("REMOVED")});
    for (const v1::Policy& p : versions) {
      out.table.AddRow({absl::StrCat(p.version()), absl::StrCat(p.release()),
                        Rfc3339(p.created_at()),
                        p.origin().empty() ? "-" : p.origin(),
                        HexEncode(AsBytes(p.sha256())).substr(0, 16),
                        p.signer_key_id().substr(0, 16), p.created_by(),
                        p.removed() ? "yes" : ""});
      out.names.push_back(absl::StrCat("policy/", p.name(), "@", p.version()));
    }
    return PrintOutput(format, out, std::cout);
  }
  if (policies_delete->parsed()) {
    v1::RemovePolicyRequest req;
    req.set_tenant(a.tenant);
    req.set_name(a.name);
    v1::RemovePolicyResponse resp;
    if (absl::Status st =
            client.Call(&v1::Admin::Stub::RemovePolicy, req, &resp);
        !st.ok()) {
      return fail(st);
    }
    std::cout << "policy/" << a.name << " deleted\n";
    return 0;
  }
  v1::ListPoliciesRequest req;
  req.set_tenant(a.tenant);
  std::vector<v1::Policy> policies;
  std::string next;
  absl::Status st =
      FetchPages(ListLimit(a), [&](const std::string& token, int page_size,
                                   std::string* next_token, size_t* fetched) {
        req.set_page_token(token);
        req.set_page_size(page_size);
        v1::ListPoliciesResponse resp;
        VOUCH_RETURN_IF_ERROR(
            client.Call(&v1::Admin::Stub::ListPolicies, req, &resp));
        policies.insert(policies.end(), resp.policies().begin(),
                        resp.policies().end());
        *next_token = next = resp.next_page_token();
        *fetched = policies.size();
        return absl::OkStatus();
      });
  if (!st.ok()) return fail(st);
  nlohmann::json j;
  j["policies"] = nlohmann::json::array();
  for (const auto& p : policies) j["policies"].push_back(AgentsToJson(p));
  j["next_page_token"] = next;
  return PrintOutput(format, PoliciesOutput(policies, std::move(j)), std::cout);
}

}  // namespace

void AddAdminCommands(CLI::App& cli) {
  AdminArgs& a = ParsedAdminArgs();
  agents_cmd = cli.add_subcommand("agents", "Enrolled agents and their state");
  agents_cmd->require_subcommand(1);
  agents_get = agents_cmd->add_subcommand("get", "Show one agent's state");
  agents_list = agents_cmd->add_subcommand("list", "List enrolled agents");
  agents_enroll = agents_cmd->add_subcommand(
      "enroll", "Enroll a registered agent for attestation");
  agents_delete = agents_cmd->add_subcommand(
      "delete", "Unenroll an agent (its history is kept)");
  agents_delete->alias("remove");  // Hidden: the spelling before delete.
  agents_history = agents_cmd->add_subcommand(
      "history", "An agent's attestation records, newest first");
  agents_history->add_option("agent_id", a.agent_id, "The agent")->required();
  HistoryArgs& h = ParsedHistoryArgs();
  CLI::Option* since = agents_history->add_option(
      "--since", h.since, "Only the last DURATION (90m, 24h, 7d)");
  agents_history
      ->add_option("--from", h.from,
                   "Only records at or after this time (RFC 3339 or "
                   "YYYY-MM-DD, UTC)")
      ->excludes(since);
  agents_history->add_option("--to", h.to,
                             "Only records before this time (exclusive)");
  agents_history->add_option("--state", h.states, "Only pass or fail records")
      ->check(CLI::IsMember({"pass", "fail"}));
  agents_history
      ->add_option("--limit", a.limit,
                   "At most this many, newest first (default: every record "
                   "in the range)")
      ->check(CLI::Range(1, 1000000));
  agents_watch = agents_cmd->add_subcommand(
      "watch", "Follow state changes as they commit (Ctrl-C stops)");
  agents_watch->add_option("agent_ids", a.agent_ids, "Only these agents");
  agents_watch->add_option("--resume", a.resume,
                           "Resume after this event's resume_token");
  agents_watch->add_option("--count", a.count, "Exit after this many events");
  agents_watch->add_flag("--verdicts", a.verdicts,
                         "Also every verdict (high volume)");
  agents_watch->add_flag(
      "--shadow", a.shadow,
      "Also shadow versions' would-be failures (policies shadow)");
  agents_list->add_option("--policy", a.policy,
                          "Only agents enrolled with this policy");
  agents_watch
      ->add_option("--state", a.states, "Only changes into these states")
      ->check(
          CLI::IsMember({"pending", "pass", "fail", "timeout", "unenrolled"}));
  for (CLI::App* c : {agents_get, agents_enroll}) {
    c->add_option("agent_id", a.agent_id, "The agent")->required();
  }
  agents_delete->add_option("agent_id", a.agent_id,
                            "The agent (or --selector)");
  agents_list->add_option(
      "-l,--selector", a.selector,
      "Only agents whose labels match: k=v, k!=v, k in (a,b), k notin (a,b), "
      "k, !k; comma-separated, all must hold");
  agents_delete->add_option(
      "-l,--selector", a.selector,
      "Unenroll every agent whose labels match (lists them and asks first)");
  agents_delete->add_flag("--yes,-y", a.yes,
                          "Do not ask (required when stdin is not a terminal)");
  agents_enroll->add_option("--runtime-policy", a.runtime_policy,
                            "Runtime (IMA) policy name");
  agents_enroll->add_option("--boot-policy", a.boot_policy,
                            "Measured-boot policy name");
  agents_enroll->add_option("--pcr-policy", a.pcr_policy,
                            "PCR policy name (expected PCR values)");
  agents_enroll->add_option("--interval", a.interval,
                            "Push interval, 1s..24h (default 60s)");
  agents_list->add_option("--state", a.states, "Only agents in these states")
      ->check(CLI::IsMember({"pending", "pass", "fail", "timeout"}));
  policies_cmd = cli.add_subcommand("policies", "Named, versioned policies");
  policies_cmd->require_subcommand(1);
  policies_add = policies_cmd->add_subcommand("add", "Add a policy");
  policies_update = policies_cmd->add_subcommand(
      "update", "Store a new version (used from agents' next attestation)");
  policies_get = policies_cmd->add_subcommand("get", "Show a policy");
  policies_list = policies_cmd->add_subcommand("list", "List policies");
  policies_delete = policies_cmd->add_subcommand(
      "delete", "Delete a policy (its versions stay readable by number)");
  policies_delete->alias("remove");  // Hidden: the spelling before delete.
  policies_history = policies_cmd->add_subcommand(
      "history",
      "A policy's versions, newest first (release, origin, digest, time)");
  policies_history
      ->add_option("--limit", a.limit, "How many, newest first (default 100)")
      ->check(CLI::Range(1, 1000));
  policies_import = policies_cmd->add_subcommand(
      "import",
      "Import a Keylime runtime policy or reference state, a legacy "
      "allowlist, or a DSSE-signed policy");
  policies_import
      ->add_option("--format", a.import_format,
                   "keylime (runtime policy JSON), refstate, tpm-policy, "
                   "allowlist, dsse")
      ->check(CLI::IsMember(
          {"keylime", "refstate", "tpm-policy", "allowlist", "dsse"}));
  policies_import->add_option("--exclude-list", a.exclude_list,
                              "Allowlist only: Keylime exclude list file");
  policies_import->add_flag("--update", a.update,
                            "Store a new version of an existing policy");
  policies_import->add_option(
      "--url", a.url,
      "Instead of --file: the verifier downloads the runtime policy (plain "
      "or DSSE-signed) from this https:// address");
  policies_import->add_option(
      "--refresh", a.refresh,
      "With --url: the pool re-fetches this often (e.g. 1h; at least 1s)");
  policies_import->add_flag(
      "--require-signature", a.require_signature,
      "With --url: refuse documents not signed by a trusted key");
  for (CLI::App* c : {policies_add, policies_update, policies_get,
                      policies_delete, policies_import, policies_history}) {
    c->add_option("name", a.name, "Policy name")->required();
  }
  for (CLI::App* c : {policies_add, policies_update, policies_import}) {
    CLI::Option* file =
        c->add_option("--file,-f", a.file, "Policy file (Keylime JSON)");
    if (c != policies_import) file->required();
    c->add_option("--description", a.description, "What it is for");
  }
  policies_add->add_option("--kind", a.kind, "runtime, boot or pcr")
      ->check(CLI::IsMember({"runtime", "boot", "pcr"}));
  policies_update->add_option("--expected-version", a.version,
                              "Refuse unless this is the newest version");
  policies_get->add_option("--version", a.version, "Version (default newest)");
  for (CLI::App* c : {agents_list, policies_list}) {
    c->add_option("--limit", a.limit, "At most this many (default: every page)")
        ->check(CLI::Range(1, 1000000));
    // Hidden, the spellings before --limit: --page-size N alone fetched
    // one page of N; --all every page (now the default).
    c->add_option("--page-size", a.page_size)
        ->check(CLI::Range(1, 1000))
        ->group("");
    c->add_flag("--all", a.all)->group("");
  }
  for (CLI::App* g : {agents_cmd, policies_cmd}) {
    for (CLI::App* c : g->get_subcommands({})) {
      c->add_option("--tenant", a.tenant,
                    "Tenant (default: your certificate's only tenant)");
    }
  }
}

std::optional<int> RunAdminCommands(AppContext& ctx) {
  const bool agents = agents_cmd != nullptr && agents_cmd->parsed();
  const bool policies = policies_cmd != nullptr && policies_cmd->parsed();
  if (!agents && !policies) return std::nullopt;
  std::string server;
  std::unique_ptr<sdk::Client> client =
      AdminClient(ctx, agents ? "agents" : "policies", &server);
  if (client == nullptr) return 2;
  const OutputFormat format = OutputFormatOf(ctx);
  return agents ? RunAgents(*client, server, format)
                : RunPolicies(*client, server, format);
}

}  // namespace vouch::tenant
