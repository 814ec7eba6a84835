-- Roll-outs of runtime policies (docs/ima.md "Shadow versions and update
-- windows"): a candidate policy judged next to the enrolled one, for all of
-- its agents or the listed ones. Only adds.
CREATE TABLE IF NOT EXISTS policy_rollouts (
  tenant text NOT NULL,
  policy text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('shadow', 'window')),
  candidate text NOT NULL CHECK (candidate <> policy),
  all_agents boolean NOT NULL,
  agent_ids text[] NOT NULL DEFAULT '{}',
  selector text NOT NULL DEFAULT '',
  not_before timestamptz,  -- NULL: unbounded.
  not_after timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by text NOT NULL DEFAULT '',
  PRIMARY KEY (tenant, policy, kind)
);

-- A shadow's report: per agent, summed while the candidate and its version
-- stay the same; written in the verdict's transaction. (xid, seq) is the
-- Watch position of the agent's newest failing judgement (agent_events'
-- sequence; 0 before any), so Watch can deliver it with the events.
CREATE TABLE IF NOT EXISTS policy_shadow_results (
  tenant text NOT NULL,
  policy text NOT NULL,
  agent_id text NOT NULL,
  candidate text NOT NULL,
  candidate_version bigint NOT NULL,
  rounds bigint NOT NULL,
  entries_checked bigint NOT NULL,
  failure_count bigint NOT NULL,
  failures bytea NOT NULL DEFAULT ''::bytea,
  updated_at timestamptz NOT NULL DEFAULT now(),
  xid xid8 NOT NULL DEFAULT '0'::xid8,
  seq bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant, policy, agent_id)
);
CREATE INDEX IF NOT EXISTS policy_shadow_results_xid
  ON policy_shadow_results (tenant, xid, seq);
