#include <CLI/CLI.hpp>

#include "tenant/offline_commands.h"

namespace vouch::tenant {

void AddImaCommands(CLI::App& /*cli*/) {}

std::optional<int> RunImaCommands(AppContext& /*ctx*/) { return std::nullopt; }

}  // namespace vouch::tenant
