#include <CLI/CLI.hpp>

#include "tenant/offline_commands.h"

namespace vouch::tenant {

void AddBootCommands(CLI::App& /*cli*/) {}

std::optional<int> RunBootCommands(AppContext& /*ctx*/) { return std::nullopt; }

}  // namespace vouch::tenant
