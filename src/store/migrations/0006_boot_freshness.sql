-- Boot freshness: the boot PCRs (0-9 and 14, SHA-256) of the quote whose
-- boot log was last accepted in the agent's current boot, and the boot
-- policy version that accepted it, so any verifier of the pool continuing
-- the agent compares later quotes with them; each attestation records the
-- boot policy version it applied and whether a boot log was evaluated.
-- Additive only (expand): an older verifier ignores the new columns.
ALTER TABLE agent_state ADD COLUMN boot_pcrs bytea NOT NULL DEFAULT '';
ALTER TABLE agent_state ADD COLUMN boot_policy_version bigint NOT NULL DEFAULT 0;
ALTER TABLE attestations ADD COLUMN boot_policy_version bigint NOT NULL DEFAULT 0;
ALTER TABLE attestations ADD COLUMN boot_log_evaluated boolean NOT NULL DEFAULT false;
