-- Verifier pool (issue #7): named versioned policies, enrollments with the
-- pool's per-agent state (owner, epoch fence, lease, replay position), the
-- attestation records and the state-change events. Times are the database
-- clock, so every verifier of the pool agrees on them.

-- Policy versions are never modified; a new version is a new row.
CREATE TABLE policies (
  tenant text NOT NULL,
  name text NOT NULL,
  version bigint NOT NULL CHECK (version > 0),
  kind smallint NOT NULL,          -- vouch.v1.PolicyKind
  content bytea NOT NULL,
  sha256 bytea NOT NULL,
  description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by text NOT NULL DEFAULT '',
  removed boolean NOT NULL DEFAULT false,
  PRIMARY KEY (tenant, name, version)
);

-- One row per enrolled agent: the enrollment and the pool state.
--   owner/epoch/lease_until: the verifier holding the agent's stream. A
--     verifier takes the agent by bumping epoch; every later write of that
--     stream is fenced with "AND epoch = <the value it got>".
--   ima_next_entry + pcr10_*: the IMA replay position (entries proven).
--   reset_count/restart_count/clock: TPMS_CLOCK_INFO of the last accepted
--     quote (clock_known false until the first one).
--   state: pending | pass | fail | timeout (unenrolled rows are deleted).
CREATE TABLE agent_state (
  agent_id text PRIMARY KEY,
  tenant text NOT NULL,
  runtime_policy text,
  boot_policy text,
  interval_ms bigint NOT NULL CHECK (interval_ms > 0),
  hash_alg integer NOT NULL,
  enrolled_at timestamptz NOT NULL DEFAULT now(),
  enrolled_by text NOT NULL DEFAULT '',
  owner text,
  epoch bigint NOT NULL DEFAULT 0,
  lease_until timestamptz,
  connected boolean NOT NULL DEFAULT false,
  agent_version text NOT NULL DEFAULT '',
  clock_known boolean NOT NULL DEFAULT false,
  reset_count bigint NOT NULL DEFAULT 0,
  restart_count bigint NOT NULL DEFAULT 0,
  clock bigint NOT NULL DEFAULT 0,
  ima_next_entry bigint NOT NULL DEFAULT 0,
  pcr10_sha1 bytea NOT NULL DEFAULT '\x0000000000000000000000000000000000000000',
  pcr10_sha256 bytea NOT NULL DEFAULT
    '\x0000000000000000000000000000000000000000000000000000000000000000',
  runtime_policy_version bigint NOT NULL DEFAULT 0,
  state text NOT NULL DEFAULT 'pending'
    CHECK (state IN ('pending', 'pass', 'fail', 'timeout')),
  state_since timestamptz NOT NULL DEFAULT now(),
  last_verdict_at timestamptz,
  last_attestation_id text,
  failures bytea NOT NULL DEFAULT ''
);
CREATE INDEX agent_state_tenant ON agent_state (tenant, agent_id);

-- Every evaluated evidence. `nonce` is unique: a nonce is accepted once in
-- the whole pool, and a retried commit cannot record an attestation twice.
CREATE TABLE attestations (
  attestation_id text PRIMARY KEY,
  tenant text NOT NULL,
  agent_id text NOT NULL,
  verifier text NOT NULL,
  epoch bigint NOT NULL,
  nonce bytea NOT NULL UNIQUE,
  state text NOT NULL CHECK (state IN ('pass', 'fail')),
  failures bytea NOT NULL DEFAULT '',
  ima_from bigint,
  ima_next_entry bigint,
  ima_entries_received bigint NOT NULL DEFAULT 0,
  reset_count bigint NOT NULL,
  evidence_sha256 bytea NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attestations_agent ON attestations (agent_id, at DESC);

-- State changes in commit order (seq), for Watch subscribers.
CREATE TABLE agent_events (
  seq bigserial PRIMARY KEY,
  tenant text NOT NULL,
  agent_id text NOT NULL,
  previous_state text NOT NULL,
  state text NOT NULL,
  cause text NOT NULL,
  attestation_id text,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_events_agent ON agent_events (agent_id, seq);
