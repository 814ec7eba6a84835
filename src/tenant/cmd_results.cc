// vouchctl results: signed attestation results (docs/results.md).
// `results get ID` asks a verifier for an agent's EAR token, `results jwks`
// for the keys that sign them, `results verify TOKEN --jwks FILE` checks a
// token offline (the token and the JWKS are untrusted input, parsed by
// core/ear with bounded sizes), `results keygen KEY` creates a results key.
// Exit 0 ok, 1 refused (a token that does not verify, a key file that
// exists), 2 usage, bad input or an RPC error.
#include <CLI/CLI.hpp>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file.h"
#include "core/ear/ear.h"
#include "sdk/ca.h"
#include "sdk/client.h"
#include "tenant/cli_common.h"
#include "tenant/offline_commands.h"
#include "vouch/v1/admin.grpc.pb.h"

namespace vouch::tenant {
namespace {

struct ResultsArgs {
  std::string agent_id;
  std::string tenant;
  std::string nonce;
  std::string file;
  std::string token;
  std::string jwks;
  std::string key;
  std::string public_key;
};

ResultsArgs& ParsedResultsArgs() {
  static ResultsArgs* args = new ResultsArgs();
  return *args;
}

CLI::App* results_cmd = nullptr;
CLI::App* results_get_cmd = nullptr;
CLI::App* jwks_cmd = nullptr;
CLI::App* results_verify_cmd = nullptr;
CLI::App* keygen_cmd = nullptr;

int ResultsFail(const absl::Status& st) {
  std::cerr << "vouchctl results: " << st.message() << "\n";
  return 2;
}

// The token: TOKEN itself, `@FILE` (e.g. the agent's token file) or `-`
// (standard input), bounded like every token.
absl::StatusOr<std::string> TokenText(const std::string& arg) {
  std::string text;
  if (arg == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin),
                std::istreambuf_iterator<char>());
  } else if (!arg.empty() && arg[0] == '@') {
    absl::StatusOr<std::string> read =
        ReadFileUpTo(arg.substr(1), core::ear::kMaxTokenBytes + 2);
    if (!read.ok()) return read.status();
    text = *std::move(read);
  } else {
    text = arg;
  }
  return std::string(absl::StripAsciiWhitespace(text));
}

std::string ResultJson(const core::ear::Result& r) {
  nlohmann::json vector = nlohmann::json::object();
  const core::ear::TrustVector& v = r.appraisal.vector;
  auto put = [&](const char* name, const std::optional<int>& value) {
    if (value) vector[name] = *value;
  };
  put("instance-identity", v.instance_identity);
  put("configuration", v.configuration);
  put("executables", v.executables);
  put("file-system", v.file_system);
  put("hardware", v.hardware);
  put("runtime-opaque", v.runtime_opaque);
  put("storage-opaque", v.storage_opaque);
  put("sourced-data", v.sourced_data);
  nlohmann::json j = {
      {"valid", true},
      {"agent_id", r.agent_id},
      {"tenant", r.tenant},
      {"status", std::string(core::ear::StatusName(r.appraisal.status))},
      {"trustworthiness_vector", vector},
      {"state", r.state},
      {"verifier", r.verifier_build},
      {"issued_at", absl::FormatTime(r.issued_at)},
      {"expires_at", absl::FormatTime(r.expires_at)},
      {"nonce", r.nonce},
      {"attestation_id", r.attestation_id}};
  if (r.verdict_at) j["verdict_at"] = absl::FormatTime(*r.verdict_at);
  return j.dump(2);
}

int ResultsRunVerify() {
  const ResultsArgs& a = ParsedResultsArgs();
  absl::StatusOr<std::string> token = TokenText(a.token);
  if (!token.ok()) return ResultsFail(token.status());
  absl::StatusOr<std::string> jwks =
      ReadFileUpTo(a.jwks, core::ear::kMaxJwksBytes);
  if (!jwks.ok()) return ResultsFail(jwks.status());
  absl::StatusOr<core::ear::KeySet> keys = core::ear::KeySet::FromJwks(*jwks);
  if (!keys.ok()) return ResultsFail(keys.status());
  absl::StatusOr<core::ear::Result> r =
      core::ear::Verify(*token, *keys, absl::Now());
  if (!r.ok()) {
    std::cerr << "vouchctl results verify: refused: " << r.status().message()
              << "\n";
    return 1;
  }
  if (!a.nonce.empty() && r->nonce != a.nonce) {
    std::cerr << "vouchctl results verify: refused: the token's eat_nonce is "
                 "not the expected nonce\n";
    return 1;
  }
  std::cout << ResultJson(*r) << "\n";
  return 0;
}

int ResultsRunOnline(AppContext& ctx) {
  const ResultsArgs& a = ParsedResultsArgs();
  std::string server;
  std::unique_ptr<sdk::Client> client = AdminClient(ctx, "results", &server);
  if (client == nullptr) return 2;
  if (jwks_cmd->parsed()) {
    v1::ResultKeys keys;
    if (absl::Status st = client->Call(&v1::Admin::Stub::GetResultKeys,
                                       v1::GetResultKeysRequest(), &keys);
        !st.ok()) {
      return RpcError("results", st, server, Service::kVerifier);
    }
    if (a.file.empty()) {
      std::cout << keys.jwks() << "\n";
      return 0;
    }
    if (absl::Status st = WriteFileAtomic(a.file, keys.jwks() + "\n", 0644);
        !st.ok()) {
      return ResultsFail(st);
    }
    std::cout << "wrote " << a.file << "\n";
    return 0;
  }
  v1::GetAttestationResultRequest req;
  req.set_tenant(a.tenant);
  req.set_agent_id(a.agent_id);
  req.set_nonce(a.nonce);
  v1::AttestationResult result;
  if (absl::Status st =
          client->Call(&v1::Admin::Stub::GetAttestationResult, req, &result);
      !st.ok()) {
    return RpcError("results", st, server, Service::kVerifier);
  }
  if (ctx.config.GetString("client", "output") == "json") {
    nlohmann::json claims =
        nlohmann::json::parse(result.claims_json(), nullptr, false);
    std::cout
        << nlohmann::json{{"token", result.token()}, {"claims", claims}}.dump(2)
        << "\n";
  } else {
    std::cout << result.token() << "\n";
  }
  return 0;
}

}  // namespace

void AddResultsCommands(CLI::App& cli) {
  ResultsArgs& a = ParsedResultsArgs();
  results_cmd = cli.add_subcommand(
      "results", "Signed attestation results (EAR tokens) and their keys");
  results_cmd->require_subcommand(1);
  results_get_cmd = results_cmd->add_subcommand(
      "get",
      "An agent's current signed result (-o jwt: the token, -o json: token "
      "and claims)");
  results_get_cmd->add_option("agent_id", a.agent_id, "The agent")->required();
  results_get_cmd->add_option(
      "--nonce", a.nonce,
      "Relying-party nonce for eat_nonce (8..64 printable)");
  results_get_cmd->add_option(
      "--tenant", a.tenant, "Tenant (default: your certificate's only tenant)");
  jwks_cmd = results_cmd->add_subcommand(
      "jwks", "The public keys that sign results, as a JWKS");
  jwks_cmd->add_option("--file,-f", a.file,
                       "Write the JWKS here (atomically) instead of stdout");
  results_verify_cmd = results_cmd->add_subcommand(
      "verify", "Verify a token offline against a JWKS file");
  results_verify_cmd
      ->add_option("token", a.token,
                   "The token, @FILE to read it from a file, or - for stdin")
      ->required();
  results_verify_cmd
      ->add_option("--jwks", a.jwks, "JWKS file (`results jwks -f`)")
      ->required();
  results_verify_cmd->add_option(
      "--nonce", a.nonce, "Refuse unless the token carries this eat_nonce");
  keygen_cmd = results_cmd->add_subcommand(
      "keygen",
      "Create a results key (ECDSA P-256) for verifier.results_key, and its "
      "public key");
  keygen_cmd->add_option("key", a.key, "Private key file (written 0600)")
      ->required();
  keygen_cmd->add_option("--public", a.public_key,
                         "Public key file (default KEY with .pub appended)");
}

std::optional<int> RunResultsCommands(AppContext& ctx) {
  if (results_cmd == nullptr || !results_cmd->parsed()) return std::nullopt;
  const ResultsArgs& a = ParsedResultsArgs();
  if (results_verify_cmd->parsed()) return ResultsRunVerify();
  if (keygen_cmd->parsed()) {
    const std::string pub =
        a.public_key.empty() ? a.key + ".pub" : a.public_key;
    absl::Status st = sdk::CreateResultsKey(a.key, pub);
    if (!st.ok()) {
      std::cerr << "vouchctl results keygen: " << st.message() << "\n";
      return absl::IsAlreadyExists(st) ? 1 : 2;
    }
    std::cout << "wrote " << a.key << " and " << pub << "\n";
    return 0;
  }
  if (!a.nonce.empty() && results_get_cmd->parsed()) {
    if (absl::Status st = core::ear::ValidateNonce(a.nonce); !st.ok()) {
      return ResultsFail(st);
    }
  }
  return ResultsRunOnline(ctx);
}

}  // namespace vouch::tenant
