// Lists the enrolled agents of a Vouch verifier pool, then follows their
// state changes. Usage: list_and_watch HOST:PORT TLS_DIR
// (TLS_DIR: ca.pem, client.pem, client.key from `vouchctl ca issue --client`).
#include <iostream>

#include "sdk/client.h"
#include "sdk/names.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: list_and_watch HOST:PORT TLS_DIR\n";
    return 2;
  }
  vouch::sdk::ClientOptions options;
  options.server = argv[1];
  options.tls_dir = argv[2];
  auto client = vouch::sdk::Client::Connect(options);
  if (!client.ok()) return std::cerr << client.status() << "\n", 2;
  auto agents = (*client)->ListAgents();
  if (!agents.ok()) return std::cerr << agents.status() << "\n", 1;
  for (const auto& a : *agents) {
    std::cout << a.agent_id() << " " << vouch::sdk::StateName(a.state())
              << "\n";
  }
  absl::Status watched = (*client)->Watch({}, [](const auto& event) {
    if (!event.has_state_change()) return true;  // a heartbeat
    std::cout << event.agent_id() << " -> "
              << vouch::sdk::StateName(event.state_change().state()) << "\n";
    return true;
  });
  std::cerr << watched << "\n";
  return 1;
}
