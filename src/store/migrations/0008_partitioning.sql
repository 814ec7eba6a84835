-- Data lifecycle: attestations and agent_events become tables partitioned
-- by day (range on `at`, UTC days), so records older than the retention go
-- by dropping whole partitions (store/retention.cc) instead of deleting
-- rows. The existing rows are copied over in this transaction (the tables
-- are locked meanwhile: expect a pause of a few seconds per million rows).
--
-- A unique constraint of a partitioned table must include the partition
-- key, so "a nonce is accepted once in the whole pool" moves to its own
-- unpartitioned table, written by the same statement as the record.
-- Partitions: one "before" partition (MINVALUE up to today) when rows older
-- than today exist, then one per day from today for the next 8 days; the
-- verifiers' maintenance keeps creating them ahead.

-- 1. Nonces, accepted once in the pool (the old UNIQUE (nonce)).
CREATE TABLE attestation_nonces (
  nonce bytea PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO attestation_nonces (nonce, at) SELECT nonce, at FROM attestations;
CREATE INDEX attestation_nonces_at ON attestation_nonces (at);

-- 2. Where Watch resume tokens stop being valid: every event and record at
-- or before (xid, seq) may have been dropped, the newest dropped ones
-- written before `before`. One row; the CHECK keeps it one.
CREATE TABLE event_retention (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  xid xid8 NOT NULL DEFAULT '0',
  seq bigint NOT NULL DEFAULT 0,
  before timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO event_retention DEFAULT VALUES;

-- 3. Where the database lives: PostgreSQL's system identifier (new with
-- every initdb) and the database's oid. A server that finds another value
-- here (the database was restored into a new cluster with pg_restore, or
-- copied) gives the database a new incarnation id (store/migrate.cc
-- AdoptDatabase), so Watch tokens from the original answer OUT_OF_RANGE.
-- NULL until a server first records it.
ALTER TABLE database_incarnation ADD COLUMN home text;

-- 4. The new tables, same columns in the same order.
ALTER TABLE attestations RENAME TO attestations_unpartitioned;
ALTER TABLE agent_events RENAME TO agent_events_unpartitioned;
-- Kept: both tables take their numbers from it.
ALTER SEQUENCE agent_events_seq_seq OWNED BY NONE;

CREATE TABLE attestations (
  attestation_id text NOT NULL,
  tenant text NOT NULL,
  agent_id text NOT NULL,
  verifier text NOT NULL,
  epoch bigint NOT NULL,
  nonce bytea NOT NULL,
  state text NOT NULL CHECK (state IN ('pass', 'fail')),
  failures bytea NOT NULL DEFAULT '',
  ima_from bigint,
  ima_next_entry bigint,
  ima_entries_received bigint NOT NULL DEFAULT 0,
  reset_count bigint NOT NULL,
  evidence_sha256 bytea NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  seq bigint NOT NULL DEFAULT nextval('agent_events_seq_seq'),
  boot_policy_version bigint NOT NULL DEFAULT 0,
  boot_log_evaluated boolean NOT NULL DEFAULT false
) PARTITION BY RANGE (at);

CREATE TABLE agent_events (
  seq bigint NOT NULL DEFAULT nextval('agent_events_seq_seq'),
  tenant text NOT NULL,
  agent_id text NOT NULL,
  previous_state text NOT NULL,
  state text NOT NULL,
  cause text NOT NULL,
  attestation_id text,
  at timestamptz NOT NULL DEFAULT now(),
  xid xid8 NOT NULL DEFAULT pg_current_xact_id()
) PARTITION BY RANGE (at);
ALTER SEQUENCE agent_events_seq_seq OWNED BY agent_events.seq;

DO $$
DECLARE
  t text;
  today timestamptz :=
    date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
  oldest timestamptz;
  newest timestamptz;
  day timestamptz;
BEGIN
  FOREACH t IN ARRAY ARRAY['attestations', 'agent_events'] LOOP
    EXECUTE format('SELECT min(at), max(at) FROM %I',
                   t || '_unpartitioned') INTO oldest, newest;
    IF oldest < today THEN
      EXECUTE format(
        'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (MINVALUE) TO (%L)',
        t || '_before', t, today);
    END IF;
    day := today;
    WHILE day < greatest(today + interval '9 days',
                         COALESCE(newest, today) + interval '1 day') LOOP
      EXECUTE format(
        'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
        t || '_p' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD'), t, day,
        day + interval '1 day');
      day := day + interval '1 day';
    END LOOP;
  END LOOP;
END $$;

INSERT INTO attestations (attestation_id, tenant, agent_id, verifier, epoch,
    nonce, state, failures, ima_from, ima_next_entry, ima_entries_received,
    reset_count, evidence_sha256, at, xid, seq, boot_policy_version,
    boot_log_evaluated)
  SELECT attestation_id, tenant, agent_id, verifier, epoch, nonce, state,
    failures, ima_from, ima_next_entry, ima_entries_received, reset_count,
    evidence_sha256, at, xid, seq, boot_policy_version, boot_log_evaluated
  FROM attestations_unpartitioned;
INSERT INTO agent_events (seq, tenant, agent_id, previous_state, state, cause,
    attestation_id, at, xid)
  SELECT seq, tenant, agent_id, previous_state, state, cause, attestation_id,
    at, xid
  FROM agent_events_unpartitioned;
DROP TABLE attestations_unpartitioned;
DROP TABLE agent_events_unpartitioned;

-- Keys and indexes (the names the unpartitioned tables had). A key must
-- include the partition key; the ids stay unique by construction (random
-- attestation ids, sequence numbers) and the nonce by attestation_nonces.
ALTER TABLE attestations ADD PRIMARY KEY (attestation_id, at);
CREATE INDEX attestations_agent ON attestations (agent_id, at DESC);
CREATE INDEX attestations_tenant_xid ON attestations (tenant, xid, seq);
ALTER TABLE agent_events ADD PRIMARY KEY (seq, at);
CREATE INDEX agent_events_agent ON agent_events (agent_id, seq);
CREATE INDEX agent_events_tenant_xid ON agent_events (tenant, xid, seq);
