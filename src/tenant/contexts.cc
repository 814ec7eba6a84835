#include "tenant/contexts.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/toml.h"

namespace vouch::tenant {
namespace {

// The file is small; anything larger is not a contexts file.
constexpr size_t kMaxContextsBytes = 1 << 20;

std::string TomlString(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false,
                                nlohmann::json::error_handler_t::replace);
}

std::string Where(const std::string& path, const toml::node& node) {
  return absl::StrCat(path, ":", node.source().begin.line);
}

absl::Status ParseContext(const std::string& path, const std::string& name,
                          const toml::table& t, VouchContext* out) {
  for (const auto& [key, value] : t) {
    const std::string k(key.str());
    std::string* field = k == "verifier"    ? &out->verifier
                         : k == "registrar" ? &out->registrar
                         : k == "tls-dir"   ? &out->tls_dir
                                            : nullptr;
    if (field == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path, value), ": unknown key 'contexts.", name,
                       ".", k, "' (verifier, registrar, tls-dir)"));
    }
    if (!value.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path, value), ": key 'contexts.", name, ".", k,
                       "' must be a string"));
    }
    *field = std::string(*value.value<std::string_view>());
  }
  return absl::OkStatus();
}

}  // namespace

std::string DefaultContextsPath() {
  if (const char* p = std::getenv("VOUCH_CONFIG"); p && *p) return p;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) {
    return absl::StrCat(xdg, "/vouch/config");
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return absl::StrCat(home, "/.config/vouch/config");
  }
  return "";
}

absl::StatusOr<ContextsFile> LoadContexts(const std::string& path) {
  ContextsFile file;
  struct stat st;
  if (path.empty() || (stat(path.c_str(), &st) != 0 && errno == ENOENT)) {
    return file;
  }
  absl::StatusOr<std::string> text = ReadFileUpTo(path, kMaxContextsBytes);
  if (!text.ok()) return text.status();
  toml::parse_result parsed =
      toml::parse(std::string_view(text->data(), text->size()), path);
  if (!parsed) {
    const toml::parse_error& err = parsed.error();
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":", err.source().begin.line, ": ",
                     std::string(err.description())));
  }
  const toml::table& root = parsed.table();
  for (const auto& [key, value] : root) {
    const std::string k(key.str());
    if (k == "current-context" && value.is_string()) {
      file.current = std::string(*value.value<std::string_view>());
    } else if (k == "contexts" && value.is_table()) {
      for (const auto& [name, ctx] : *value.as_table()) {
        const std::string n(name.str());
        if (!ctx.is_table()) {
          return absl::InvalidArgumentError(absl::StrCat(
              Where(path, ctx), ": 'contexts.", n, "' must be a table"));
        }
        VouchContext c;
        if (absl::Status s = ParseContext(path, n, *ctx.as_table(), &c);
            !s.ok()) {
          return s;
        }
        file.contexts[n] = c;
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path, value), ": unknown or mistyped key '", k,
                       "' (current-context = \"NAME\", [contexts.NAME])"));
    }
  }
  return file;
}

absl::Status SaveContexts(const std::string& path, const ContextsFile& file) {
  if (path.empty()) {
    return absl::FailedPreconditionError(
        "no config file: set VOUCH_CONFIG or HOME");
  }
  std::string text =
      "# vouchctl contexts: `vouchctl config set-context`, `use-context`.\n";
  if (!file.current.empty()) {
    absl::StrAppend(&text, "current-context = ", TomlString(file.current),
                    "\n");
  }
  for (const auto& [name, c] : file.contexts) {
    absl::StrAppend(&text, "\n[contexts.", TomlString(name), "]\n");
    if (!c.verifier.empty()) {
      absl::StrAppend(&text, "verifier = ", TomlString(c.verifier), "\n");
    }
    if (!c.registrar.empty()) {
      absl::StrAppend(&text, "registrar = ", TomlString(c.registrar), "\n");
    }
    if (!c.tls_dir.empty()) {
      absl::StrAppend(&text, "tls-dir = ", TomlString(c.tls_dir), "\n");
    }
  }
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    // Only the last missing level; ~/.config normally exists.
    const std::string parent = path.substr(0, slash);
    const size_t up = parent.rfind('/');
    if (up != std::string::npos && up > 0) {
      mkdir(parent.substr(0, up).c_str(), 0700);
    }
    if (mkdir(parent.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::UnavailableError(
          absl::StrCat("mkdir ", parent, ": ", std::strerror(errno)));
    }
  }
  return WriteFileAtomic(path, text, 0600);
}

absl::StatusOr<Endpoints> ResolveEndpoints(const Config& config) {
  Endpoints e;
  absl::StatusOr<ContextsFile> file = LoadContexts(DefaultContextsPath());
  if (!file.ok()) return file.status();
  const std::string& wanted = config.GetString("client", "context");
  e.context = wanted.empty() ? file->current : wanted;
  VouchContext ctx;
  if (!e.context.empty()) {
    auto it = file->contexts.find(e.context);
    if (it == file->contexts.end()) {
      return absl::NotFoundError(absl::StrCat(
          "context '", e.context, "' is not in ", DefaultContextsPath(),
          " (vouchctl config get-contexts)"));
    }
    ctx = it->second;
  }
  // A flag or an environment variable beats the context, which beats
  // vouchctl.toml and the defaults. An empty flag or variable counts as
  // not set.
  auto pick = [&](const char* key, const std::string& from_context) {
    const std::string& value = config.GetString("client", key);
    const std::string& source = config.Source("client", key);
    const bool explicit_value =
        (absl::StartsWith(source, "flag") || absl::StartsWith(source, "env")) &&
        !value.empty();
    return explicit_value || from_context.empty() ? value : from_context;
  };
  e.verifier = pick("server", ctx.verifier);
  e.registrar = pick("registrar", ctx.registrar);
  e.tls_dir = pick("tls_dir", ctx.tls_dir);
  return e;
}

}  // namespace vouch::tenant
