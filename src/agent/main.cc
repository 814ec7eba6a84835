// vouch-agent: flags and wiring only; see agent_app.h.
#include "agent/agent_app.h"

int main(int argc, char** argv) {
  return vouch::RunApp(vouch::agent::AgentAppSpec(), argc, argv,
                       vouch::agent::RunAgent);
}
