#include "store/pg_translog.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "store/pg_columns.h"

namespace vouch::store {
namespace {

using core::translog::CompactRange;
using core::translog::Hash;
using core::translog::NodeId;
using core::translog::RangeNodes;
using core::translog::StoredNode;

absl::StatusOr<Hash> HashColumn(const std::optional<std::string>& v) {
  if (!v) return absl::InternalError("translog: null hash column");
  VOUCH_ASSIGN_OR_RETURN(std::string raw, FromBytea(*v));
  return core::translog::HashFromBytes(raw);
}

// "{1,2,3}": integer arrays as one text parameter.
template <typename T>
std::string IntArray(const std::vector<T>& v) {
  return absl::StrCat("{", absl::StrJoin(v, ","), "}");
}

absl::StatusOr<SignedHead> HeadRow(const PgRows& rows) {
  if (rows.rows.empty()) return absl::NotFoundError("no such tree head");
  SignedHead out;
  VOUCH_ASSIGN_OR_RETURN(out.tree_size, Int<uint64_t>(rows.rows[0][0]));
  VOUCH_ASSIGN_OR_RETURN(out.root, HashColumn(rows.rows[0][1]));
  if (!rows.rows[0][2]) return absl::InternalError("translog: null head");
  VOUCH_ASSIGN_OR_RETURN(out.signed_head, FromBytea(*rows.rows[0][2]));
  return out;
}

absl::StatusOr<uint64_t> IntegratedSize(PgConnection& db) {
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows, db.Query("SELECT tree_size FROM translog_sequencer", {}));
  if (rows.rows.empty()) return absl::InternalError("no sequencer row");
  return Int<uint64_t>(rows.rows[0][0]);
}

absl::Status CheckSize(PgConnection& db, uint64_t tree_size) {
  VOUCH_ASSIGN_OR_RETURN(uint64_t size, IntegratedSize(db));
  if (tree_size > size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tree size ", tree_size, " is larger than the log (", size, ")"));
  }
  return absl::OkStatus();
}

// A proof's node source that reads one more node, the proof's leaf, with
// the proof's nodes: one round trip instead of two.
class WithLeaf : public core::translog::NodeSource {
 public:
  WithLeaf(const core::translog::NodeSource& inner, uint64_t index)
      : inner_(inner), index_(index) {}
  absl::StatusOr<std::vector<Hash>> Get(
      absl::Span<const NodeId> ids) const override {
    if (leaf_) return inner_.Get(ids);
    std::vector<NodeId> with(ids.begin(), ids.end());
    with.push_back(NodeId{0, index_});
    VOUCH_ASSIGN_OR_RETURN(std::vector<Hash> got, inner_.Get(with));
    leaf_ = got.back();
    got.pop_back();
    return got;
  }
  // Set by the first Get (Get({}) reads the leaf alone).
  const std::optional<Hash>& leaf() const { return leaf_; }

 private:
  const core::translog::NodeSource& inner_;
  const uint64_t index_;
  mutable std::optional<Hash> leaf_;
};

// The right edge of the tree of `size` leaves, from its stored nodes.
absl::StatusOr<CompactRange> EdgeOn(PgConnection& db, uint64_t size) {
  std::vector<Hash> edge;
  if (size > 0) {
    PgNodeSource nodes(db);
    VOUCH_ASSIGN_OR_RETURN(edge, nodes.Get(RangeNodes(0, size)));
  }
  return CompactRange::Create(size, std::move(edge));
}

}  // namespace

std::string TranslogAppendSql(absl::string_view agent_param,
                              absl::string_view leaf_param,
                              core::translog::LeafKind kind) {
  return absl::StrCat("INSERT INTO translog_queue (kind, agent_id, leaf) ",
                      "SELECT ", static_cast<int>(kind), ", ", agent_param,
                      ", ", leaf_param, "::bytea");
}

absl::Status TranslogAppend(PgConnection& db, core::translog::LeafKind kind,
                            absl::string_view agent_id,
                            absl::string_view leaf) {
  return db
      .Exec(TranslogAppendSql("$1", "$2", kind),
            {std::string(agent_id), ToBytea(leaf)})
      .status();
}

absl::StatusOr<std::vector<Hash>> PgNodeSource::Get(
    absl::Span<const NodeId> ids) const {
  std::vector<int> levels;
  std::vector<uint64_t> indexes;
  for (const NodeId& id : ids) {
    levels.push_back(id.level);
    indexes.push_back(id.index);
  }
  // Prepared once per connection: planning it took about as long as
  // running it (proofs from a 10-million-leaf tree, bench/translog_pg).
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db_.QueryPrepared(PgStatement{
          "SELECT t.ord, COALESCE(l.leaf_hash, n.hash) FROM "
          "unnest($1::smallint[], $2::bigint[]) WITH ORDINALITY AS "
          "t(level, idx, ord) LEFT JOIN translog_leaves l ON t.level = "
          "0 AND l.leaf_index = t.idx LEFT JOIN translog_nodes n ON "
          "t.level > 0 AND n.level = t.level AND n.idx = t.idx",
          {IntArray(levels), IntArray(indexes)},
          "vouch_translog_nodes"}));
  std::vector<Hash> out(ids.size());
  std::vector<bool> seen(ids.size(), false);
  for (const auto& r : rows.rows) {
    VOUCH_ASSIGN_OR_RETURN(uint64_t ord, Int<uint64_t>(r[0]));
    if (ord < 1 || ord > ids.size()) return absl::InternalError("bad ordinal");
    if (!r[1]) continue;  // Missing: reported below.
    VOUCH_ASSIGN_OR_RETURN(out[ord - 1], HashColumn(r[1]));
    seen[ord - 1] = true;
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!seen[i]) {
      return absl::InternalError(absl::StrCat("translog: node level ",
                                              ids[i].level, " index ",
                                              ids[i].index, " is missing"));
    }
  }
  return out;
}

absl::StatusOr<std::optional<int64_t>> PgTranslog::TryAcquire(
    absl::string_view holder, absl::Duration lease) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query(
          "UPDATE translog_sequencer SET "
          "epoch = CASE WHEN holder IS NOT DISTINCT FROM $1 THEN epoch "
          "ELSE epoch + 1 END, holder = $1, "
          "lease_until = now() + make_interval(secs => $2::float8) "
          "WHERE holder IS NULL OR holder = $1 OR lease_until < now() "
          "RETURNING epoch",
          {std::string(holder), absl::StrCat(absl::ToDoubleSeconds(lease))}));
  if (rows.rows.empty()) return std::optional<int64_t>();
  VOUCH_ASSIGN_OR_RETURN(uint64_t epoch, Int<uint64_t>(rows.rows[0][0]));
  return std::optional<int64_t>(static_cast<int64_t>(epoch));
}

absl::StatusOr<IntegrateResult> PgTranslog::Integrate(
    absl::string_view holder, int64_t epoch, const core::translog::LogKey& key,
    size_t max_batch, absl::Time now) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  return InTransaction(
      *db, [&](PgConnection& c) -> absl::StatusOr<IntegrateResult> {
        // The fence: the row lock also orders this against any other sequencer.
        VOUCH_ASSIGN_OR_RETURN(
            PgRows fence,
            c.Query(
                "SELECT tree_size FROM translog_sequencer WHERE holder = $1 "
                "AND epoch = $2::bigint AND lease_until > now() FOR UPDATE",
                {std::string(holder), absl::StrCat(epoch)}));
        if (fence.rows.empty()) {
          return absl::AbortedError("translog: sequencer lease lost");
        }
        VOUCH_ASSIGN_OR_RETURN(uint64_t size, Int<uint64_t>(fence.rows[0][0]));
        VOUCH_ASSIGN_OR_RETURN(CompactRange tree, EdgeOn(c, size));
        // One statement moves the oldest queued entries into the leaves, in
        // queue order from index `size`, and returns their hashes in that
        // order. The database hashes the leaves (RFC 9162: SHA-256(0x00 ||
        // leaf)), so only 32 bytes a leaf come back; auditors hash the leaf
        // bytes themselves, and every verifier's monitor rebuilds the root.
        VOUCH_ASSIGN_OR_RETURN(
            PgRows moved,
            c.Query("WITH q AS (DELETE FROM translog_queue WHERE seq IN "
                    "(SELECT seq FROM translog_queue ORDER BY seq LIMIT "
                    "$1::bigint) RETURNING seq, kind, agent_id, leaf, "
                    "queued_at), i AS (INSERT INTO translog_leaves "
                    "(leaf_index, leaf_hash, kind, agent_id, leaf, queued_at) "
                    "SELECT $2::bigint + row_number() OVER (ORDER BY seq) - "
                    "1, sha256('\\x00'::bytea || leaf), kind, agent_id, leaf, "
                    "queued_at FROM q RETURNING leaf_index, leaf_hash) SELECT "
                    "leaf_index, leaf_hash FROM i ORDER BY leaf_index",
                    {absl::StrCat(max_batch), absl::StrCat(size)}));
        std::vector<uint64_t> node_indexes;
        std::vector<int> node_levels;
        std::vector<std::string> node_hashes;
        for (const auto& r : moved.rows) {
          VOUCH_ASSIGN_OR_RETURN(uint64_t index, Int<uint64_t>(r[0]));
          if (index != tree.size()) {
            return absl::InternalError("translog: leaves out of order");
          }
          VOUCH_ASSIGN_OR_RETURN(const Hash leaf_hash, HashColumn(r[1]));
          for (const StoredNode& n : tree.Append(leaf_hash)) {
            if (n.id.level == 0) continue;  // translog_leaves holds it.
            node_levels.push_back(n.id.level);
            node_indexes.push_back(n.id.index);
            node_hashes.push_back(core::translog::HashHex(n.hash));
          }
        }
        const size_t integrated = moved.rows.size();
        VOUCH_ASSIGN_OR_RETURN(
            PgRows have,
            c.Query("SELECT 1 FROM translog_heads WHERE tree_size = $1::bigint",
                    {absl::StrCat(tree.size())}));
        if (integrated == 0 && !have.rows.empty()) {
          return IntegrateResult{0, tree.size()};
        }
        if (!node_levels.empty()) {
          VOUCH_RETURN_IF_ERROR(
              c.Exec(
                   "INSERT INTO translog_nodes (level, idx, hash) SELECT l, i, "
                   "decode(h, 'hex') FROM unnest($1::smallint[], $2::bigint[], "
                   "$3::text[]) AS t(l, i, h)",
                   {IntArray(node_levels), IntArray(node_indexes),
                    IntArray(node_hashes)})
                  .status());
        }
        core::translog::TreeHead head;
        head.tree_size = tree.size();
        head.timestamp_ms = absl::ToUnixMillis(now);
        head.root = tree.Root();
        VOUCH_ASSIGN_OR_RETURN(std::string signed_head, key.Sign(head));
        VOUCH_RETURN_IF_ERROR(
            c.Exec("INSERT INTO translog_heads (tree_size, root, timestamp_ms, "
                   "signed) VALUES ($1::bigint, $2::bytea, $3::bigint, "
                   "$4::bytea)",
                   {absl::StrCat(head.tree_size),
                    ToBytea(core::translog::HashBytes(head.root)),
                    absl::StrCat(head.timestamp_ms), ToBytea(signed_head)})
                .status());
        VOUCH_RETURN_IF_ERROR(
            c.Exec("UPDATE translog_sequencer SET tree_size = $1::bigint",
                   {absl::StrCat(head.tree_size)})
                .status());
        return IntegrateResult{integrated, tree.size()};
      });
}

absl::StatusOr<SignedHead> PgTranslog::LatestHead() {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query("SELECT tree_size, root, signed FROM translog_heads ORDER BY "
                "tree_size DESC LIMIT 1",
                {}));
  return HeadRow(rows);
}

absl::StatusOr<SignedHead> PgTranslog::HeadAt(uint64_t size) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query("SELECT tree_size, root, signed FROM translog_heads WHERE "
                "tree_size = $1::bigint",
                {absl::StrCat(size)}));
  return HeadRow(rows);
}

absl::StatusOr<InclusionAnswer> PgTranslog::InclusionByIndex(
    uint64_t index, uint64_t tree_size) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  PgNodeSource nodes(*db);
  WithLeaf source(nodes, index);
  absl::StatusOr<std::vector<Hash>> proof =
      core::translog::InclusionProof(index, tree_size, source);
  if (!proof.ok()) {
    VOUCH_RETURN_IF_ERROR(CheckSize(*db, tree_size));
    return proof.status();
  }
  InclusionAnswer out;
  out.leaf_index = index;
  out.tree_size = tree_size;
  out.proof = *std::move(proof);
  // A proof with no hashes read no node: read the leaf alone.
  if (!source.leaf()) VOUCH_RETURN_IF_ERROR(source.Get({}).status());
  out.leaf_hash = *source.leaf();
  return out;
}

absl::StatusOr<InclusionAnswer> PgTranslog::InclusionByHash(
    const Hash& leaf_hash, uint64_t tree_size) {
  uint64_t index = 0;
  {
    VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
    VOUCH_ASSIGN_OR_RETURN(
        PgRows rows,
        db->QueryPrepared(PgStatement{
            "SELECT min(leaf_index) FROM translog_leaves WHERE leaf_hash = "
            "$1::bytea AND leaf_index < $2::bigint",
            {ToBytea(core::translog::HashBytes(leaf_hash)),
             absl::StrCat(tree_size)},
            "vouch_translog_leaf_by_hash"}));
    if (rows.rows.empty() || !rows.rows[0][0]) {
      return absl::NotFoundError("leaf is not in the log at that size");
    }
    VOUCH_ASSIGN_OR_RETURN(index, Int<uint64_t>(rows.rows[0][0]));
  }
  return InclusionByIndex(index, tree_size);
}

absl::StatusOr<std::vector<Hash>> PgTranslog::Consistency(uint64_t m,
                                                          uint64_t n) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  PgNodeSource nodes(*db);
  absl::StatusOr<std::vector<Hash>> proof =
      core::translog::ConsistencyProof(m, n, nodes);
  if (!proof.ok()) VOUCH_RETURN_IF_ERROR(CheckSize(*db, n));
  return proof;
}

absl::StatusOr<FoundLeaf> PgTranslog::FindLeaf(core::translog::LeafKind kind,
                                               absl::string_view agent_id,
                                               absl::string_view prefix,
                                               uint64_t below,
                                               uint64_t tree_size) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  // $1 agent, $2 kind, $3 prefix, $4 its length, $5 a leaf index bound.
  const auto params = [&](uint64_t bound) -> std::vector<PgParam> {
    return {std::string(agent_id), absl::StrCat(static_cast<int>(kind)),
            ToBytea(prefix), absl::StrCat(prefix.size()), absl::StrCat(bound)};
  };
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query("SELECT leaf_index, leaf FROM translog_leaves WHERE "
                "agent_id = $1 AND kind = $2::smallint AND leaf_index < "
                "$5::bigint AND substring(leaf from 1 for $4::int) = "
                "$3::bytea ORDER BY leaf_index DESC LIMIT 1",
                params(below)));
  FoundLeaf out;
  if (!rows.rows.empty()) {
    out.where = FoundLeaf::Where::kIntegrated;
    VOUCH_ASSIGN_OR_RETURN(out.index, Int<uint64_t>(rows.rows[0][0]));
    if (!rows.rows[0][1]) return absl::InternalError("translog: null leaf");
    VOUCH_ASSIGN_OR_RETURN(out.leaf, FromBytea(*rows.rows[0][1]));
    return out;
  }
  VOUCH_ASSIGN_OR_RETURN(
      PgRows later,
      db->Query("SELECT 1 FROM translog_queue WHERE agent_id = $1 AND kind = "
                "$2::smallint AND substring(leaf from 1 for $4::int) = "
                "$3::bytea UNION ALL SELECT 1 FROM translog_leaves WHERE "
                "agent_id = $1 AND kind = $2::smallint AND leaf_index >= "
                "$5::bigint AND substring(leaf from 1 for $4::int) = "
                "$3::bytea LIMIT 1",
                params(tree_size)));
  if (!later.rows.empty()) out.where = FoundLeaf::Where::kQueued;
  return out;
}

void CommittedLeaves::Add(const Hash& hash, absl::Time committed) {
  absl::MutexLock lock(&mu_);
  if (leaves_.size() >= capacity_) {
    ++dropped_;
    return;
  }
  leaves_.push_back(Leaf{hash, committed});
}

std::vector<CommittedLeaves::Leaf> CommittedLeaves::Take() {
  std::vector<Leaf> out;
  absl::MutexLock lock(&mu_);
  out.swap(leaves_);
  return out;
}

uint64_t CommittedLeaves::TakeDropped() {
  absl::MutexLock lock(&mu_);
  return std::exchange(dropped_, 0);
}

absl::StatusOr<CompactRange> PgTranslog::Edge(uint64_t size) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_RETURN_IF_ERROR(CheckSize(*db, size));
  return EdgeOn(*db, size);
}

absl::StatusOr<std::vector<Hash>> PgTranslog::LeafHashes(uint64_t begin,
                                                         uint64_t end) {
  if (end < begin || end - begin > 100000) {
    return absl::InvalidArgumentError("translog: leaf range too large");
  }
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query("SELECT leaf_hash FROM translog_leaves WHERE "
                "leaf_index >= $1::bigint AND leaf_index < $2::bigint ORDER "
                "BY leaf_index",
                {absl::StrCat(begin), absl::StrCat(end)}));
  // leaf_index is the key: as many rows as indexes means none is missing.
  if (rows.rows.size() != end - begin) {
    return absl::DataLossError(absl::StrCat("translog: only ", rows.rows.size(),
                                            " of leaves [", begin, ", ", end,
                                            ") are in the table"));
  }
  std::vector<Hash> out;
  out.reserve(rows.rows.size());
  for (const auto& r : rows.rows) {
    VOUCH_ASSIGN_OR_RETURN(Hash h, HashColumn(r[0]));
    out.push_back(h);
  }
  return out;
}

absl::StatusOr<uint64_t> PgTranslog::QueueLength() {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(PgRows rows,
                         db->Query("SELECT count(*) FROM translog_queue", {}));
  return Int<uint64_t>(rows.rows[0][0]);
}

absl::StatusOr<uint64_t> PgTranslog::QueuedBefore(absl::Time before) {
  VOUCH_ASSIGN_OR_RETURN(PgPool::Lease db, pool_->Acquire());
  VOUCH_ASSIGN_OR_RETURN(
      PgRows rows,
      db->Query("SELECT count(*) FROM translog_queue WHERE queued_at < "
                "to_timestamp($1::bigint / 1000000.0)",
                {absl::StrCat(absl::ToUnixMicros(before))}));
  return Int<uint64_t>(rows.rows[0][0]);
}

}  // namespace vouch::store
