-- Webhooks (docs/webhooks.md): one row per subscription of a tenant. The
-- cursor is the (xid, seq) position of the committed event log (the order
-- Watch reads, migrations/0003) up to which events were delivered or
-- dead-lettered. One verifier at a time delivers a subscription: it holds
-- the lease (owner, lease_until) and fences every write with epoch.
CREATE TABLE webhook_subscriptions (
  tenant text NOT NULL,
  name text NOT NULL,
  url text NOT NULL,
  states text[] NOT NULL DEFAULT '{}',  -- empty: every state
  secret text NOT NULL,                 -- "whsec_<base64>", see the doc
  created_by text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  cursor_xid xid8 NOT NULL,
  cursor_seq bigint NOT NULL DEFAULT 0,
  incarnation text NOT NULL DEFAULT '',
  owner text,
  epoch bigint NOT NULL DEFAULT 0,
  lease_until timestamptz NOT NULL DEFAULT '-infinity',
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- The event at the head of the cursor: failed attempts, since when.
  attempts integer NOT NULL DEFAULT 0,
  failing_since timestamptz,
  last_error text NOT NULL DEFAULT '',
  last_attempt_at timestamptz,
  last_delivered_at timestamptz,
  delivered bigint NOT NULL DEFAULT 0,
  failed bigint NOT NULL DEFAULT 0,
  dead_lettered bigint NOT NULL DEFAULT 0,
  last_dead_letter_id text NOT NULL DEFAULT '',
  PRIMARY KEY (tenant, name)
);
CREATE INDEX webhook_subscriptions_due ON webhook_subscriptions (next_attempt_at);
