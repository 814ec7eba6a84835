-- Kept evidence: what an attestation record needs to be re-verified
-- without its agent (Admin GetAttestation / ReverifyAttestation, vouchctl
-- audit export). Written by the verdict statement that writes the record,
-- in the same transaction. Partitioned by day like attestations
-- (migrations/0008); store/retention.cc creates and drops the partitions
-- of all three partitioned tables together.
--
-- attestation_evidence: one row per record: the quote, its signature and
-- the PCR values (a serialized vouch.v1.Evidence holding only those three
-- fields), the AIK it was verified with, the policies (name and version)
-- it was judged against, and where its IMA entries and boot log are.
CREATE TABLE attestation_evidence (
  attestation_id text NOT NULL,
  tenant text NOT NULL,
  agent_id text NOT NULL,
  quote bytea NOT NULL,
  aik_name bytea NOT NULL,
  reset_count bigint NOT NULL,
  ima_next_entry bigint,
  boot_log_sha256 bytea,
  runtime_policy text NOT NULL DEFAULT '',
  runtime_policy_version bigint NOT NULL DEFAULT 0,
  boot_policy text NOT NULL DEFAULT '',
  boot_policy_version bigint NOT NULL DEFAULT 0,
  pcr_policy text NOT NULL DEFAULT '',
  pcr_policy_version bigint NOT NULL DEFAULT 0,
  at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (at);

-- ima_segments: the IMA entries each record accepted, [first_index,
-- next_index) of the boot numbered reset_count, stored once: a record
-- refers to entries 0 .. its ima_next_entry of its boot, the
-- concatenation of the boot's segments.
CREATE TABLE ima_segments (
  tenant text NOT NULL,
  agent_id text NOT NULL,
  reset_count bigint NOT NULL,
  first_index bigint NOT NULL,
  next_index bigint NOT NULL,
  format integer NOT NULL,
  template_hash_alg integer NOT NULL,
  data bytea NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (at);

-- The boot logs, once per agent and digest; kept while a kept record
-- refers to one (retention deletes the others).
CREATE TABLE kept_boot_logs (
  agent_id text NOT NULL,
  sha256 bytea NOT NULL,
  reset_count bigint NOT NULL,
  data bytea NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (agent_id, sha256)
);

-- The AIKs records were verified with (TPM2B_PUBLIC by TPM name), so a
-- record from before a rebind carries the AIK of its time.
CREATE TABLE kept_aiks (
  aik_name bytea PRIMARY KEY,
  aik_public bytea NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);

-- Partitions: the same bounds as those attestations has now.
DO $$
DECLARE
  part record;
  t text;
BEGIN
  FOR part IN
    SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'attestations'::regclass
  LOOP
    FOREACH t IN ARRAY ARRAY['attestation_evidence', 'ima_segments'] LOOP
      EXECUTE format('CREATE TABLE %I PARTITION OF %I %s',
                     t || substr(part.name, length('attestations') + 1), t,
                     part.bound);
    END LOOP;
  END LOOP;
END $$;

ALTER TABLE attestation_evidence ADD PRIMARY KEY (attestation_id, at);
CREATE INDEX attestation_evidence_agent ON attestation_evidence (agent_id, at DESC);
CREATE INDEX ima_segments_boot ON ima_segments (agent_id, reset_count, first_index);
CREATE INDEX kept_boot_logs_boot ON kept_boot_logs (agent_id, reset_count, at);
