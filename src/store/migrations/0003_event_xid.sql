-- Watch (issue #8): each event remembers the transaction that wrote it, so a
-- reader delivers an event only once every older transaction has finished
-- (xid below the snapshot's xmin). Sequence numbers alone are not commit
-- order: a transaction may take a lower number and commit later.
ALTER TABLE agent_events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX agent_events_tenant_xid ON agent_events (tenant, xid, seq);
