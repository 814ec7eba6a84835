-- The transparency log (docs/transparency-log.md): an RFC 9162 Merkle tree
-- over EK <-> AIK bindings, their removals, and attestation records.
-- Writers (verifiers, the registrar) add to translog_queue in the same
-- transaction as the thing logged; one sequencer at a time (the lease in
-- translog_sequencer, fenced by its epoch) moves queued entries into
-- translog_leaves in one order, stores every complete subtree hash in
-- translog_nodes (so any proof reads O(log n) rows) and signs a tree head.
CREATE TABLE translog_queue (
  seq bigserial PRIMARY KEY,
  kind smallint NOT NULL,
  agent_id text NOT NULL,
  leaf bytea NOT NULL,  -- the canonical leaf (core/translog/tree_head.h)
  queued_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE translog_leaves (
  leaf_index bigint PRIMARY KEY,
  leaf_hash bytea NOT NULL,
  kind smallint NOT NULL,
  agent_id text NOT NULL,
  leaf bytea NOT NULL,
  queued_at timestamptz NOT NULL,
  integrated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX translog_leaves_hash ON translog_leaves (leaf_hash);
CREATE INDEX translog_leaves_agent ON translog_leaves (agent_id, leaf_index);

-- The complete subtree of 2^level leaves starting at leaf idx << level.
CREATE TABLE translog_nodes (
  level smallint NOT NULL,
  idx bigint NOT NULL,
  hash bytea NOT NULL,
  PRIMARY KEY (level, idx)
);

-- Every signed tree head, by size (a size is signed once).
CREATE TABLE translog_heads (
  tree_size bigint PRIMARY KEY,
  root bytea NOT NULL,
  timestamp_ms bigint NOT NULL,
  signed bytea NOT NULL
);

-- The sequencer lease: one row. epoch grows each time another holder
-- takes it; an integration runs only while (holder, epoch) still match.
CREATE TABLE translog_sequencer (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  holder text,
  epoch bigint NOT NULL DEFAULT 0,
  lease_until timestamptz,
  tree_size bigint NOT NULL DEFAULT 0
);
INSERT INTO translog_sequencer DEFAULT VALUES;
