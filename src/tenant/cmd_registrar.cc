// vouchctl registrar: scaffold; filled in by issue #6.
#include <CLI/CLI.hpp>

#include "tenant/offline_commands.h"

namespace vouch::tenant {

void AddRegistrarCommands(CLI::App& cli) { (void)cli; }

std::optional<int> RunRegistrarCommands(AppContext& ctx) {
  (void)ctx;
  return std::nullopt;
}

}  // namespace vouch::tenant
