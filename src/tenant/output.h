// File: tenant/output.h
// The one output layer of vouchctl's get, list and describe commands: the
// global `-o table|wide|json|yaml|name`. A command builds one Output (the
// JSON document, a Table, and the objects' names) and calls PrintOutput;
// it never formats by itself. Tables size each column to its widest cell;
// columns marked wide show only with `-o wide`. YAML is emitted from the
// JSON document (block style; python3-yaml reads it back as the same value).
// Lists fetch every page unless `--limit` caps them (FetchPages).
// Not thread-safe (CLI use).
//
//   Output out;
//   out.table = Table({"NAME", "VERSION", Table::Wide("SHA256")});
//   for (const v1::Policy& p : policies) {
//     out.table.AddRow({p.name(), absl::StrCat(p.version()), hex});
//     out.names.push_back("policy/" + p.name());
//   }
//   out.json = {{"policies", items}};
//   return PrintOutput(OutputFormatOf(ctx), out, std::cout);
#ifndef VOUCH_TENANT_OUTPUT_H_
#define VOUCH_TENANT_OUTPUT_H_

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/app.h"

namespace CLI {
class App;
}  // namespace CLI

namespace vouch::tenant {

enum class OutputFormat { kTable, kWide, kJson, kYaml, kName };

// "table, wide, json, yaml, name": for help and error texts.
inline constexpr char kOutputFormats[] = "table, wide, json, yaml, name";

// kInvalidArgument for anything but the five names.
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name);

// The global -o of this run (checked at start-up by RunVouchctl).
OutputFormat OutputFormatOf(const AppContext& ctx);

// Rows of cells under upper-case headers, each column as wide as its widest
// cell (three spaces between columns, the last one unpadded). A row may
// carry detail lines printed indented under it (an agent's failures).
class Table {
 public:
  struct Column {
    std::string header;
    bool wide = false;  // Only with -o wide.
  };
  // A column shown only with -o wide.
  static Column Wide(std::string header) { return {std::move(header), true}; }

  Table() = default;
  Table(std::initializer_list<Column> columns) : columns_(columns) {}
  Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

  // Missing cells print empty; an empty cell prints as "-"; extra cells are
  // a programming error and are dropped.
  void AddRow(std::vector<std::string> cells);
  // An indented line under the last row added.
  void AddDetail(std::string line);

  std::string Render(bool wide) const;

 private:
  struct Row {
    std::vector<std::string> cells;
    std::vector<std::string> details;
  };
  std::vector<Column> columns_;
  std::vector<Row> rows_;
};

// YAML (1.2, block style) for any JSON value. Strings are double-quoted in
// JSON's escapes, which YAML reads identically; numbers, booleans and null
// are plain; empty arrays and objects print as [] and {}.
std::string ToYaml(const nlohmann::json& j);

// What a get, list or describe command prints in each format.
struct Output {
  nlohmann::json json = nlohmann::json::object();  // -o json, -o yaml
  Table table;                                     // -o table, -o wide
  std::vector<std::string> names;  // -o name: "agent/ID", one a line
  // A free-form view that replaces the table for -o table and wide
  // (describe); empty: the table.
  std::string text;
};

// Prints `out` in `format`; returns 0 (an exit code, for `return`).
int PrintOutput(OutputFormat format, const Output& out, std::ostream& os);

// Calls `page(token, page_size, &next, &fetched)` until the server has no
// next page or `limit` items are in (0: no limit); `fetched` is the number
// of items held after that page. Page sizes never ask for more than the
// limit leaves. kDataLoss when a page adds nothing but promises a next
// one (a looping server).
using PageFn =
    std::function<absl::Status(const std::string& token, int page_size,
                               std::string* next, size_t* fetched)>;
absl::Status FetchPages(int limit, const PageFn& page);

// -f/--file names the file a command writes. Its old spelling -o FILE
// (from before -o was always the output format) stays as a hidden flag
// for one release: AddFileFlags adds both, ResolveFileFlags folds the old
// one in (with a note on stderr). It returns false after printing why when
// -o names an output format (the user meant the global flag) or when a
// required file is missing.
void AddFileFlags(CLI::App* cmd, std::string* file, std::string* legacy,
                  const std::string& help);
bool ResolveFileFlags(const std::string& command, std::string* file,
                      const std::string& legacy, bool required);

}  // namespace vouch::tenant

#endif  // VOUCH_TENANT_OUTPUT_H_
