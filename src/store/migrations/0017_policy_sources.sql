-- Runtime policies fetched from a URL, checked against per-tenant trusted
-- signing keys (docs/ima.md "Policy lifecycle"). Only adds.
--
-- Each policy version records where it came from: its release number
-- (a Keylime runtime policy's "release"), its origin ("url:<address>",
-- "import", or '' for AddPolicy/UpdatePolicy), the SHA-256 of the document
-- exactly as received and the id of the key that verified its signature.
ALTER TABLE policies ADD COLUMN IF NOT EXISTS release bigint NOT NULL DEFAULT 0;
ALTER TABLE policies ADD COLUMN IF NOT EXISTS origin text NOT NULL DEFAULT '';
ALTER TABLE policies ADD COLUMN IF NOT EXISTS source_sha256 bytea NOT NULL
  DEFAULT ''::bytea;
ALTER TABLE policies ADD COLUMN IF NOT EXISTS signer_key_id text NOT NULL
  DEFAULT '';

-- A tenant's trusted policy-signing keys (PEM public key or certificate).
CREATE TABLE IF NOT EXISTS policy_signing_keys (
  tenant text NOT NULL,
  name text NOT NULL,
  pem text NOT NULL,
  key_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by text NOT NULL DEFAULT '',
  PRIMARY KEY (tenant, name)
);

-- A policy's URL source. refresh_ms 0: fetched once. next_fetch_at: when a
-- verifier should fetch it again (NULL: never); lease_owner/lease_until:
-- the verifier fetching it now, so one verifier of the pool fetches at a
-- time. etag: the last response's ETag, sent as If-None-Match.
CREATE TABLE IF NOT EXISTS policy_sources (
  tenant text NOT NULL,
  name text NOT NULL,
  url text NOT NULL,
  refresh_ms bigint NOT NULL DEFAULT 0 CHECK (refresh_ms >= 0),
  require_signature boolean NOT NULL DEFAULT false,
  created_by text NOT NULL DEFAULT '',
  etag text NOT NULL DEFAULT '',
  last_fetch_at timestamptz,
  last_result text NOT NULL DEFAULT '',
  last_error text NOT NULL DEFAULT '',
  next_fetch_at timestamptz,
  lease_owner text NOT NULL DEFAULT '',
  lease_until timestamptz,
  PRIMARY KEY (tenant, name)
);
CREATE INDEX IF NOT EXISTS policy_sources_due ON policy_sources (next_fetch_at)
  WHERE next_fetch_at IS NOT NULL;
