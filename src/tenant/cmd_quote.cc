#include <CLI/CLI.hpp>

#include "tenant/offline_commands.h"

namespace vouch::tenant {

void AddQuoteCommands(CLI::App& /*cli*/) {}

std::optional<int> RunQuoteCommands(AppContext& /*ctx*/) {
  return std::nullopt;
}

}  // namespace vouch::tenant
