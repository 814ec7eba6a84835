-- Per-tenant settings. peer_notices: the verifiers tell each agent of the
-- tenant about another agent's failure (signed action notices, docs/actions.md);
-- off by default (each agent hears only of its own failures). A tenant
-- without a row has the defaults. Expand-only: older verifiers ignore it.
CREATE TABLE IF NOT EXISTS tenant_settings (
  tenant text PRIMARY KEY,
  peer_notices boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);
