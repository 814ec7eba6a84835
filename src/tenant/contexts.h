// File: tenant/contexts.h
// vouchctl's contexts, kubectl style: one TOML file
// ($VOUCH_CONFIG, else $XDG_CONFIG_HOME/vouch/config, else
// ~/.config/vouch/config) with named contexts, each holding the verifier
// address(es), the registrar address and the TLS directory, and the name of
// the current one. The file is operator input: unknown keys are errors
// naming the file and key. Not thread-safe (CLI use).
//
//   current-context = "demo"
//   [contexts.demo]
//   verifier = "127.0.0.1:40001"
//   registrar = "127.0.0.1:40003"
//   tls-dir = "/var/lib/vouch-demo/ca/clients/admin"
//
// Precedence for each address: flag > environment > the context (--context
// or current-context) > vouchctl.toml > built-in default.
#ifndef VOUCH_TENANT_CONTEXTS_H_
#define VOUCH_TENANT_CONTEXTS_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"

namespace vouch::tenant {

struct VouchContext {
  std::string verifier;   // host:port; comma-separated for several
  std::string registrar;  // host:port
  std::string tls_dir;    // ca.pem, client.pem, client.key
};

struct ContextsFile {
  std::string current;
  std::map<std::string, VouchContext> contexts;
};

// $VOUCH_CONFIG, else $XDG_CONFIG_HOME/vouch/config, else
// $HOME/.config/vouch/config; "" when none of them is set.
std::string DefaultContextsPath();

// A missing file is an empty ContextsFile; a malformed one an
// kInvalidArgument naming the file (and line) and the key.
absl::StatusOr<ContextsFile> LoadContexts(const std::string& path);
// Writes atomically (temporary file + rename), mode 0600, creating the
// parent directory (0700) when needed.
absl::Status SaveContexts(const std::string& path, const ContextsFile& file);

// Where vouchctl connects, after precedence (see the file comment).
struct Endpoints {
  std::string verifier;
  std::string registrar;  // Empty: no registrar address anywhere.
  std::string tls_dir;
  std::string context;  // The context used, "" for none.
};

// kNotFound when --context names a context the file lacks.
absl::StatusOr<Endpoints> ResolveEndpoints(const Config& config);

}  // namespace vouch::tenant

#endif  // VOUCH_TENANT_CONTEXTS_H_
