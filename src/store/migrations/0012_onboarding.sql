-- Onboarding: join tokens, and what a certificate-issuing challenge carries.
-- Only adds.
--
-- Join tokens: stored as the SHA-256 of the token (the token itself is shown
-- once, by CreateJoinToken). A token admits `uses` joins into `tenant` until
-- `expires_at` (NULL: never); `used` counts the Activates that consumed it.
-- A revoked token keeps its row (revoked_at set), so a join with it is
-- refused as revoked rather than unknown.
CREATE TABLE IF NOT EXISTS join_tokens (
  sha256 bytea PRIMARY KEY,
  id text NOT NULL UNIQUE,
  tenant text NOT NULL,
  uses integer NOT NULL CHECK (uses >= 1),
  used integer NOT NULL DEFAULT 0 CHECK (used >= 0),
  expires_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  description text NOT NULL DEFAULT '',
  revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS join_tokens_tenant ON join_tokens (tenant, id);

-- A challenge that will issue a certificate: the DER SubjectPublicKeyInfo of
-- the agent's certificate request (its SHA-256 is part of the Activate
-- proof), and the join token to consume when Activate succeeds.
ALTER TABLE registration_challenges ADD COLUMN IF NOT EXISTS csr_spki bytea;
ALTER TABLE registration_challenges
  ADD COLUMN IF NOT EXISTS join_token_sha256 bytea;

-- Labels: the agent's own (reported at Register) and the operator's
-- (SetAgentLabels, winning on the same key). Flat JSON objects of strings.
ALTER TABLE registrations
  ADD COLUMN IF NOT EXISTS agent_labels jsonb NOT NULL DEFAULT '{}';
ALTER TABLE registrations
  ADD COLUMN IF NOT EXISTS operator_labels jsonb NOT NULL DEFAULT '{}';

-- Enrollment rules: an agent activating with labels containing `selector`
-- is enrolled (agent_state, the verifier pool's table in this same
-- database) with the first matching rule by name.
CREATE TABLE IF NOT EXISTS enrollment_rules (
  tenant text NOT NULL,
  name text NOT NULL,
  selector jsonb NOT NULL,
  runtime_policy text NOT NULL,
  boot_policy text NOT NULL DEFAULT '',
  interval_ms bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, name)
);
