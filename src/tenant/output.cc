#include "tenant/output.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace vouch::tenant {
namespace {

// JSON text of `s` (invalid UTF-8 from a server replaced, not thrown on),
// with the few code points YAML does not allow raw escaped: DEL, the C1
// controls, U+FFFE and U+FFFF.
std::string Quote(const std::string& s) {
  const std::string json = nlohmann::json(s).dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(json.size());
  for (size_t i = 0; i < json.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(json[i]);
    const unsigned char next =
        i + 1 < json.size() ? static_cast<unsigned char>(json[i + 1]) : 0;
    if (c == 0x7f) {
      out += "\\u007f";
    } else if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {
      absl::StrAppend(&out, "\\u00", absl::Hex(next, absl::kZeroPad2));
      ++i;
    } else if (c == 0xef && next == 0xbf && i + 2 < json.size() &&
               (static_cast<unsigned char>(json[i + 2]) == 0xbe ||
                static_cast<unsigned char>(json[i + 2]) == 0xbf)) {
      absl::StrAppend(&out, "\\uff",
                      absl::Hex(static_cast<unsigned char>(json[i + 2]) + 0x40,
                                absl::kZeroPad2));
      i += 2;
    } else {
      out += json[i];
    }
  }
  return out;
}

// Plain (unquoted) for simple keys YAML cannot read as anything but a
// string; quoted otherwise.
std::string Key(const std::string& k) {
  static const char* const kReserved[] = {"y",   "n",    "yes",   "no",   "on",
                                          "off", "true", "false", "null", "~"};
  bool plain = !k.empty() && (absl::ascii_isalpha(k[0]) || k[0] == '_');
  for (char c : k) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-' && c != '.') {
      plain = false;
    }
  }
  for (const char* r : kReserved) {
    if (absl::AsciiStrToLower(k) == r) plain = false;
  }
  return plain ? k : Quote(k);
}

bool IsBlock(const nlohmann::json& v) {
  return (v.is_object() || v.is_array()) && !v.empty();
}

std::string Scalar(const nlohmann::json& v) {
  if (v.is_object()) return "{}";
  if (v.is_array()) return "[]";
  if (v.is_string()) return Quote(v.get<std::string>());
  std::string text = v.dump();
  // YAML 1.1 readers (python3-yaml) take 1e+20 for a string: give floats
  // a fraction.
  if (v.is_number_float() && text.find('.') == std::string::npos &&
      text.find_first_of("eE") != std::string::npos) {
    text.insert(text.find_first_of("eE"), ".0");
  }
  return text;
}

void EmitBlock(const nlohmann::json& j, size_t indent, std::string* out) {
  const std::string pad(indent, ' ');
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      absl::StrAppend(out, pad, Key(it.key()), ":");
      if (IsBlock(it.value())) {
        out->append("\n");
        EmitBlock(it.value(), indent + 2, out);
      } else {
        absl::StrAppend(out, " ", Scalar(it.value()), "\n");
      }
    }
    return;
  }
  for (const nlohmann::json& v : j) {
    if (IsBlock(v)) {
      // The item's first line starts after "- " instead of its indent.
      std::string sub;
      EmitBlock(v, indent + 2, &sub);
      absl::StrAppend(out, pad, "- ", sub.substr(indent + 2));
    } else {
      absl::StrAppend(out, pad, "- ", Scalar(v), "\n");
    }
  }
}

}  // namespace

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name) {
  if (name == "table") return OutputFormat::kTable;
  if (name == "wide") return OutputFormat::kWide;
  if (name == "json") return OutputFormat::kJson;
  if (name == "yaml") return OutputFormat::kYaml;
  if (name == "name") return OutputFormat::kName;
  return absl::InvalidArgumentError(absl::StrCat(
      "output format '", name, "' is not one of ", kOutputFormats));
}

OutputFormat OutputFormatOf(const AppContext& ctx) {
  return ParseOutputFormat(ctx.config.GetString("client", "output"))
      .value_or(OutputFormat::kTable);
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  for (std::string& c : cells) {
    if (c.empty()) c = "-";
  }
  rows_.push_back(Row{std::move(cells), {}});
}

void Table::AddDetail(std::string line) {
  if (!rows_.empty()) rows_.back().details.push_back(std::move(line));
}

std::string Table::Render(bool wide) const {
  std::vector<size_t> shown;
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (wide || !columns_[i].wide) shown.push_back(i);
  }
  std::vector<size_t> width(columns_.size(), 0);
  for (size_t i : shown) {
    width[i] = columns_[i].header.size();
    for (const Row& r : rows_) width[i] = std::max(width[i], r.cells[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells, std::string* out) {
    for (size_t n = 0; n < shown.size(); ++n) {
      const std::string& cell = cells[shown[n]];
      out->append(cell);
      if (n + 1 < shown.size()) {
        out->append(width[shown[n]] - cell.size() + 3, ' ');
      }
    }
    out->append("\n");
  };
  std::string out;
  std::vector<std::string> headers;
  for (const Column& c : columns_) headers.push_back(c.header);
  line(headers, &out);
  for (const Row& r : rows_) {
    line(r.cells, &out);
    for (const std::string& d : r.details)
      absl::StrAppend(&out, "    ", d, "\n");
  }
  return out;
}

std::string ToYaml(const nlohmann::json& j) {
  if (!IsBlock(j)) return Scalar(j) + "\n";
  std::string out;
  EmitBlock(j, 0, &out);
  return out;
}

int PrintOutput(OutputFormat format, const Output& out, std::ostream& os) {
  switch (format) {
    case OutputFormat::kJson:
      os << out.json.dump(2, ' ', false,
                          nlohmann::json::error_handler_t::replace)
         << "\n";
      break;
    case OutputFormat::kYaml:
      os << ToYaml(out.json);
      break;
    case OutputFormat::kName:
      for (const std::string& n : out.names) os << n << "\n";
      break;
    case OutputFormat::kTable:
    case OutputFormat::kWide:
      os << (out.text.empty() ? out.table.Render(format == OutputFormat::kWide)
                              : out.text);
      break;
  }
  return 0;
}

absl::Status FetchPages(int limit, const PageFn& page) {
  std::string token;
  size_t fetched = 0;
  do {
    // The server's largest page, or just what is left to reach the limit.
    int page_size = 1000;
    if (limit > 0) {
      page_size = static_cast<int>(
          std::min<size_t>(1000, static_cast<size_t>(limit) - fetched));
    }
    std::string next;
    const size_t before = fetched;
    if (absl::Status st = page(token, page_size, &next, &fetched); !st.ok()) {
      return st;
    }
    // A server that promises more but sends nothing would keep us here.
    if (!next.empty() && fetched == before) {
      return absl::DataLossError(
          "the server sent an empty page with a next page token");
    }
    token = std::move(next);
  } while (!token.empty() &&
           (limit <= 0 || fetched < static_cast<size_t>(limit)));
  return absl::OkStatus();
}

void AddFileFlags(CLI::App* cmd, std::string* file, std::string* legacy,
                  const std::string& help) {
  cmd->add_option("-f,--file", *file, help);
  // The subcommand's own -o is matched before the global -o/--output.
  cmd->add_option("-o", *legacy)->group("");
}

bool ResolveFileFlags(const std::string& command, std::string* file,
                      const std::string& legacy, bool required) {
  if (!legacy.empty()) {
    if (ParseOutputFormat(legacy).ok()) {
      std::cerr << "vouchctl " << command << ": this command writes a file: "
                << "name it with -f FILE\n";
      return false;
    }
    if (file->empty()) {
      std::cerr << "vouchctl " << command
                << ": note: -o FILE is the old spelling of -f FILE\n";
      *file = legacy;
    }
  }
  if (required && file->empty()) {
    std::cerr << "vouchctl " << command
              << ": name the file to write with -f FILE\n";
    return false;
  }
  return true;
}

}  // namespace vouch::tenant
