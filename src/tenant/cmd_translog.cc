// vouchctl audit (the transparency-log part, docs/transparency-log.md):
// `audit log-key -f FILE` writes the pool log's public key; `audit
// tree-head`, `audit prove --leaf INDEX|HASH` and `audit consistency --from N
// --to M` ask a verifier and check every answer here, with core/translog,
// against the log key given with --log-key (the server's answers are
// untrusted). Exit 0 verified, 1 an answer that does not verify (a bad
// signature, proof or fork), 2 usage, bad input or an RPC error.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "common/bytes.h"
#include "common/file.h"
#include "core/translog/merkle.h"
#include "core/translog/tree_head.h"
#include "sdk/client.h"
#include "tenant/cli_common.h"
#include "tenant/offline_commands.h"
#include "vouch/v1/admin.grpc.pb.h"

namespace vouch::tenant {
namespace {

namespace tl = core::translog;

struct TranslogAuditArgs {
  std::string file;
  std::string log_key;
  std::string leaf;
  uint64_t size = 0;
  uint64_t from = 0;
  uint64_t to = 0;
};

TranslogAuditArgs& ParsedTranslogAuditArgs() {
  static TranslogAuditArgs* args = new TranslogAuditArgs();
  return *args;
}

CLI::App* log_key_cmd = nullptr;
CLI::App* tree_head_cmd = nullptr;
CLI::App* prove_cmd = nullptr;
CLI::App* consistency_cmd = nullptr;

int TranslogFail(const absl::Status& st) {
  std::cerr << "vouchctl audit: " << st.message() << "\n";
  return 2;
}

int Refuse(const std::string& what, const absl::Status& st) {
  std::cerr << "vouchctl audit: refused: " << what << ": " << st.message()
            << "\n";
  return 1;
}

void TranslogPrint(AppContext& ctx, const nlohmann::json& j) {
  if (ctx.config.GetString("client", "output") == "json") {
    std::cout << j.dump(2) << "\n";
    return;
  }
  for (const auto& [k, v] : j.items()) {
    std::cout << k << ": " << (v.is_string() ? v.get<std::string>() : v.dump())
              << "\n";
  }
}

// Verifies a signed head and that it says what the server said beside it.
absl::StatusOr<tl::TreeHead> CheckHead(const tl::LogKey& key,
                                       const std::string& signed_head,
                                       uint64_t size) {
  absl::StatusOr<tl::TreeHead> head = key.Verify(signed_head);
  if (!head.ok()) return head.status();
  if (head->tree_size != size) {
    return absl::InvalidArgumentError(
        "the signed head is for another tree size than the answer");
  }
  return head;
}

// A proof's hashes from the server's answer (untrusted): bounded, 32 bytes
// each.
template <typename Repeated>
absl::StatusOr<std::vector<tl::Hash>> ProofHashes(const Repeated& hashes) {
  if (hashes.size() > static_cast<int>(tl::kMaxProofHashes)) {
    return absl::InvalidArgumentError("too many hashes");
  }
  std::vector<tl::Hash> out;
  for (const std::string& h : hashes) {
    absl::StatusOr<tl::Hash> one = tl::HashFromBytes(h);
    if (!one.ok()) return one.status();
    out.push_back(*one);
  }
  return out;
}

nlohmann::json HeadJson(const tl::TreeHead& h) {
  return {{"tree_size", h.tree_size},
          {"root_hash", tl::HashHex(h.root)},
          {"timestamp", absl::FormatTime(absl::RFC3339_full,
                                         absl::FromUnixMillis(h.timestamp_ms),
                                         absl::UTCTimeZone())},
          {"verified", true}};
}

int TranslogRunOnline(AppContext& ctx, sdk::Client& client,
                      const std::string& server, const tl::LogKey* key) {
  const TranslogAuditArgs& a = ParsedTranslogAuditArgs();
  if (log_key_cmd->parsed()) {
    v1::TranslogKey got;
    if (absl::Status st = client.Call(&v1::Admin::Stub::GetLogKey,
                                      v1::GetLogKeyRequest(), &got);
        !st.ok()) {
      return RpcError("audit", st, server, Service::kVerifier);
    }
    absl::StatusOr<tl::LogKey> parsed =
        tl::LogKey::FromPublicPem(got.public_key_pem());
    if (!parsed.ok()) return Refuse("the log key", parsed.status());
    if (got.log_id() != std::string(tl::HashBytes(parsed->log_id()))) {
      return Refuse("the log key",
                    absl::InvalidArgumentError("log_id is not its SHA-256"));
    }
    if (absl::Status st = WriteFileAtomic(a.file, parsed->PublicPem(), 0644);
        !st.ok()) {
      return TranslogFail(st);
    }
    std::cout << "wrote " << a.file << " (log id "
              << tl::HashHex(parsed->log_id()) << ")\n";
    return 0;
  }
  if (tree_head_cmd->parsed()) {
    v1::GetTreeHeadRequest req;
    req.set_tree_size(a.size);
    v1::TranslogTreeHead got;
    if (absl::Status st = client.Call(&v1::Admin::Stub::GetTreeHead, req, &got);
        !st.ok()) {
      return RpcError("audit", st, server, Service::kVerifier);
    }
    absl::StatusOr<tl::TreeHead> head =
        CheckHead(*key, got.signed_tree_head(), got.tree_size());
    if (!head.ok()) return Refuse("tree head", head.status());
    if (a.size != 0 && head->tree_size != a.size) {
      return Refuse("tree head", absl::InvalidArgumentError("wrong size"));
    }
    TranslogPrint(ctx, HeadJson(*head));
    return 0;
  }
  if (prove_cmd->parsed()) {
    v1::GetInclusionProofRequest req;
    req.set_tree_size(a.size);
    uint64_t index = 0;
    if (absl::SimpleAtoi(a.leaf, &index)) {
      req.set_leaf_index(index);
    } else {
      absl::StatusOr<Bytes> raw = HexDecode(a.leaf);
      if (a.leaf.size() != 64 || !raw.ok()) {
        return TranslogFail(absl::InvalidArgumentError(
            "--leaf: a leaf index or a 64-hex-digit leaf hash"));
      }
      req.set_leaf_hash(std::string(raw->begin(), raw->end()));
    }
    v1::TranslogInclusionProof got;
    if (absl::Status st =
            client.Call(&v1::Admin::Stub::GetInclusionProof, req, &got);
        !st.ok()) {
      return RpcError("audit", st, server, Service::kVerifier);
    }
    absl::StatusOr<tl::TreeHead> head =
        CheckHead(*key, got.signed_tree_head(), got.tree_size());
    if (!head.ok()) return Refuse("tree head", head.status());
    absl::StatusOr<tl::Hash> leaf = tl::HashFromBytes(got.leaf_hash());
    if (!leaf.ok()) return Refuse("leaf hash", leaf.status());
    if (req.has_leaf_hash() && got.leaf_hash() != req.leaf_hash()) {
      return Refuse("leaf hash",
                    absl::InvalidArgumentError("not the leaf asked for"));
    }
    if (req.leaf_case() == v1::GetInclusionProofRequest::kLeafIndex &&
        got.leaf_index() != index) {
      return Refuse("leaf index",
                    absl::InvalidArgumentError("not the leaf asked for"));
    }
    absl::StatusOr<std::vector<tl::Hash>> proof = ProofHashes(got.hashes());
    if (!proof.ok()) return Refuse("inclusion proof", proof.status());
    if (absl::Status st = tl::VerifyInclusion(got.leaf_index(), head->tree_size,
                                              *leaf, *proof, head->root);
        !st.ok()) {
      return Refuse("inclusion proof", st);
    }
    nlohmann::json j = HeadJson(*head);
    j["leaf_index"] = got.leaf_index();
    j["leaf_hash"] = tl::HashHex(*leaf);
    j["included"] = true;
    TranslogPrint(ctx, j);
    return 0;
  }
  // consistency: both heads, then the proof between them.
  tl::TreeHead heads[2];
  for (int i = 0; i < 2; ++i) {
    v1::GetTreeHeadRequest req;
    req.set_tree_size(i == 0 ? a.from : a.to);
    v1::TranslogTreeHead got;
    if (absl::Status st = client.Call(&v1::Admin::Stub::GetTreeHead, req, &got);
        !st.ok()) {
      return RpcError("audit", st, server, Service::kVerifier);
    }
    absl::StatusOr<tl::TreeHead> head =
        CheckHead(*key, got.signed_tree_head(), got.tree_size());
    if (!head.ok()) return Refuse("tree head", head.status());
    if (req.tree_size() != 0 && head->tree_size != req.tree_size()) {
      return Refuse("tree head", absl::InvalidArgumentError("wrong size"));
    }
    heads[i] = *head;
  }
  v1::GetConsistencyProofRequest req;
  req.set_from_size(heads[0].tree_size);
  req.set_to_size(heads[1].tree_size);
  v1::TranslogConsistencyProof got;
  if (absl::Status st =
          client.Call(&v1::Admin::Stub::GetConsistencyProof, req, &got);
      !st.ok()) {
    return RpcError("audit", st, server, Service::kVerifier);
  }
  absl::StatusOr<std::vector<tl::Hash>> proof = ProofHashes(got.hashes());
  if (!proof.ok()) return Refuse("consistency proof", proof.status());
  if (absl::Status st =
          tl::VerifyConsistency(heads[0].tree_size, heads[1].tree_size,
                                heads[0].root, heads[1].root, *proof);
      !st.ok()) {
    return Refuse("consistency proof (a forked log?)", st);
  }
  TranslogPrint(ctx, {{"from", HeadJson(heads[0])},
                      {"to", HeadJson(heads[1])},
                      {"consistent", true}});
  return 0;
}

}  // namespace

void AddAuditLogCommands(CLI::App& cli) {
  TranslogAuditArgs& a = ParsedTranslogAuditArgs();
  // `audit` may already exist (other audit commands add to it).
  CLI::App* audit = nullptr;
  for (CLI::App* sub : cli.get_subcommands([](CLI::App*) { return true; })) {
    if (sub->get_name() == "audit") audit = sub;
  }
  if (audit == nullptr) {
    audit = cli.add_subcommand("audit", "Audit: the transparency log");
    audit->require_subcommand(1);
  }
  log_key_cmd = audit->add_subcommand(
      "log-key", "Write the pool log's public key (PEM) to a file");
  log_key_cmd->add_option("--file,-f", a.file, "Output file")->required();
  tree_head_cmd = audit->add_subcommand(
      "tree-head", "Fetch a signed tree head and verify its signature");
  tree_head_cmd->add_option("--size", a.size, "Tree size (default newest)");
  prove_cmd = audit->add_subcommand(
      "prove", "Fetch and verify a leaf's inclusion proof");
  prove_cmd->add_option("--leaf", a.leaf, "Leaf index or leaf hash (hex)")
      ->required();
  prove_cmd->add_option("--size", a.size, "Tree size (default newest)");
  consistency_cmd = audit->add_subcommand(
      "consistency",
      "Fetch two tree heads and prove the later extends the "
      "earlier (no fork)");
  consistency_cmd->add_option("--from", a.from, "Earlier tree size")
      ->required();
  consistency_cmd->add_option("--to", a.to, "Later tree size (0: newest)");
  for (CLI::App* c : {tree_head_cmd, prove_cmd, consistency_cmd}) {
    c->add_option("--log-key", a.log_key,
                  "The pool log's public key (`audit log-key`)")
        ->required();
  }
}

std::optional<int> RunAuditLogCommands(AppContext& ctx) {
  if (log_key_cmd == nullptr) return std::nullopt;
  if (!log_key_cmd->parsed() && !tree_head_cmd->parsed() &&
      !prove_cmd->parsed() && !consistency_cmd->parsed()) {
    return std::nullopt;
  }
  std::optional<tl::LogKey> key;
  if (!log_key_cmd->parsed()) {
    absl::StatusOr<std::string> pem =
        ReadFileUpTo(ParsedTranslogAuditArgs().log_key, 1 << 16);
    if (!pem.ok()) return TranslogFail(pem.status());
    absl::StatusOr<tl::LogKey> k = tl::LogKey::FromPublicPem(*pem);
    if (!k.ok()) return TranslogFail(k.status());
    key = *std::move(k);
  }
  std::string server;
  std::unique_ptr<sdk::Client> client = AdminClient(ctx, "audit", &server);
  if (client == nullptr) return 2;
  return TranslogRunOnline(ctx, *client, server, key ? &*key : nullptr);
}

}  // namespace vouch::tenant
