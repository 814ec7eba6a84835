// File: tenant/records.h
// The JSON shape of the server objects vouchctl prints (-o json/yaml), and
// the Output of an attestation history, shared by the commands that show
// them (get, list, describe). Failure codes are short names
// (core/failure_code.h), times RFC 3339. Not thread-safe (CLI use).
#ifndef VOUCH_TENANT_RECORDS_H_
#define VOUCH_TENANT_RECORDS_H_

#include <nlohmann/json.hpp>

#include "tenant/output.h"
#include "vouch/v1/admin.pb.h"
#include "vouch/v1/registrar.pb.h"

namespace vouch::tenant {

// cmd_agents.cc
nlohmann::json AgentJson(const v1::AgentStatus& a);
Output HistoryOutput(const v1::GetAttestationHistoryResponse& resp);
// cmd_registrar.cc
nlohmann::json RegistrationJson(const v1::RegisteredAgent& a);

}  // namespace vouch::tenant

#endif  // VOUCH_TENANT_RECORDS_H_
