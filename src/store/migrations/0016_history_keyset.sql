-- Attestation history pages: GetAttestationHistory reads a tenant's records
-- newest first, by agent or across all agents, in a time range, resuming
-- after a (time, attestation_id) keyset position. These indexes serve that
-- order walked backwards; `at` bounds prune partitions. Only adds; the
-- older attestations_agent index stays for binaries that still use it.
CREATE INDEX IF NOT EXISTS attestations_history_agent
  ON attestations (tenant, agent_id, at, attestation_id);
CREATE INDEX IF NOT EXISTS attestations_history_tenant
  ON attestations (tenant, at, attestation_id);
