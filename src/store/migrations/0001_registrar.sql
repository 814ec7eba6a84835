-- Registrar (issue #6): registrations, pending credential challenges and the
-- append-only EK/AIK binding log. Binary values are bytea.
CREATE TABLE registrations (
  agent_id text PRIMARY KEY,
  tenant text NOT NULL,
  ek_public bytea NOT NULL,
  ek_sha256 bytea NOT NULL UNIQUE,
  ek_certificate bytea NOT NULL,
  -- Intermediates: comma-separated hex of each DER certificate.
  ek_intermediates text NOT NULL DEFAULT '',
  ek_certificate_issuer text NOT NULL DEFAULT '',
  aik_public bytea,
  aik_name bytea,
  agent_version text NOT NULL DEFAULT '',
  registered_at timestamptz NOT NULL DEFAULT now(),
  activated_at timestamptz
);
CREATE INDEX registrations_tenant ON registrations (tenant, agent_id);

-- One pending MakeCredential challenge per agent; deleted by the Activate
-- that uses it (right or wrong), so each challenge allows one attempt.
CREATE TABLE registration_challenges (
  agent_id text PRIMARY KEY REFERENCES registrations (agent_id) ON DELETE CASCADE,
  secret bytea NOT NULL,
  aik_public bytea NOT NULL,
  aik_name bytea NOT NULL,
  expires_at timestamptz NOT NULL
);

-- Every EK<->AIK binding event, append-only (kept when a registration is
-- deleted): the input of the durable-attestation log.
CREATE TABLE ek_aik_bindings (
  seq bigserial PRIMARY KEY,
  agent_id text NOT NULL,
  tenant text NOT NULL,
  ek_sha256 bytea NOT NULL,
  aik_name bytea NOT NULL,
  event text NOT NULL CHECK (event IN ('registered', 'activated')),
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ek_aik_bindings_agent ON ek_aik_bindings (agent_id, seq);
CREATE RULE ek_aik_bindings_no_update AS ON UPDATE TO ek_aik_bindings DO INSTEAD NOTHING;
CREATE RULE ek_aik_bindings_no_delete AS ON DELETE TO ek_aik_bindings DO INSTEAD NOTHING;
