// File: agent/agent_app.h
// What vouch-agent is configured by, and what it does once configured. main()
// only calls RunApp(AgentAppSpec(), ...). Thread-safety: start-up only.
#ifndef VOUCH_AGENT_AGENT_APP_H_
#define VOUCH_AGENT_AGENT_APP_H_

#include "common/app.h"

namespace vouch::agent {

// Keys of /etc/vouch/agent.toml (deploy/config/agent.toml documents each).
AppSpec AgentAppSpec();

// Runs the agent until SIGINT/SIGTERM; returns the process exit code.
int RunAgent(AppContext& ctx);

}  // namespace vouch::agent

#endif  // VOUCH_AGENT_AGENT_APP_H_
