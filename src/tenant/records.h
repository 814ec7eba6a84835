// File: tenant/records.h
// The JSON shape of the server objects vouchctl prints (-o json/yaml), and
// the Output of an attestation history, shared by the commands that show
// them (get, list, describe). Failure codes are short names
// (core/failure_code.h), times RFC 3339. Not thread-safe (CLI use).
#ifndef VOUCH_TENANT_RECORDS_H_
#define VOUCH_TENANT_RECORDS_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sdk/client.h"
#include "tenant/output.h"
#include "vouch/v1/admin.pb.h"
#include "vouch/v1/registrar.pb.h"

namespace vouch::tenant {

// cmd_agents.cc
// A failure as a detail line under its row (code, path, detail), and as
// JSON objects.
std::string FailureLine(const v1::Failure& f);
nlohmann::json FailuresJson(
    const google::protobuf::RepeatedPtrField<v1::Failure>& failures);
nlohmann::json AgentJson(const v1::AgentStatus& a);
Output HistoryOutput(const v1::GetAttestationHistoryResponse& resp);
// Agents as a table (failures indented under their agent), `json` as the
// document, agent/ID names.
Output AgentsOutput(const std::vector<v1::AgentStatus>& agents,
                    nlohmann::json json);
// Every page of ListAgents for `req` (up to `limit` agents, 0: all) into
// `agents`; `next` is the last page's next_page_token.
absl::Status ListAgentPages(sdk::Client& client, v1::ListAgentsRequest req,
                            int limit, std::vector<v1::AgentStatus>* agents,
                            std::string* next);
// agents delete --selector (cmd_fleet.cc): lists the matching agents,
// asks (refusing a non-terminal stdin without `yes`), then unenrolls each.
int DeleteAgentsBySelector(sdk::Client& client, const std::string& server,
                           const std::string& tenant,
                           const std::string& selector, bool yes);
// cmd_registrar.cc
nlohmann::json RegistrationJson(const v1::RegisteredAgent& a);

}  // namespace vouch::tenant

#endif  // VOUCH_TENANT_RECORDS_H_
