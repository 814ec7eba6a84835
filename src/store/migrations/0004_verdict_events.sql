-- Watch with include_verdicts (issue #8): attestation records join the
-- event order. They take their numbers from the events' sequence, so
-- (xid, seq) orders and identifies events of both tables.
ALTER TABLE attestations ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE attestations ADD COLUMN seq bigint NOT NULL DEFAULT nextval('agent_events_seq_seq');
CREATE INDEX attestations_tenant_xid ON attestations (tenant, xid, seq);
