-- Registrar lifecycle. Safe on a database with data: every step keeps the
-- rows it finds valid.
--
-- 1. An EK is reserved by an *activated* registration only: a registration
--    that never proved possession of the EK (credential activation) blocks
--    nobody. The old uniqueness over every row implies the new one.
ALTER TABLE registrations DROP CONSTRAINT IF EXISTS registrations_ek_sha256_key;
CREATE UNIQUE INDEX IF NOT EXISTS registrations_active_ek
  ON registrations (ek_sha256) WHERE activated_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS registrations_ek ON registrations (ek_sha256);
-- Expired pending registrations are found by age.
CREATE INDEX IF NOT EXISTS registrations_pending
  ON registrations (registered_at) WHERE activated_at IS NULL;

-- 2. A challenge names the EK it was issued to, which may be another TPM
--    than the one an activated registration is bound to (that Activate is
--    refused). NULL on challenges issued before this migration: the
--    registration's own EK.
ALTER TABLE registration_challenges ADD COLUMN IF NOT EXISTS ek_sha256 bytea;

-- 3. An enrollment needs its registration: deleting a registration while the
--    agent is enrolled fails inside the deleting transaction, whatever runs
--    concurrently. NOT VALID: enrollments whose registration an older
--    version let be deleted stay readable (and unenrollable); they cannot
--    attest until the agent registers and activates again.
ALTER TABLE agent_state ADD CONSTRAINT agent_state_registration
  FOREIGN KEY (agent_id) REFERENCES registrations (agent_id) NOT VALID;
