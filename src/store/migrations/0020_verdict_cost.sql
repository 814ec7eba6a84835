-- PostgreSQL's work per verdict (bench/verdict_pg). Two things every verdict
-- paid for and nothing needs:
--
-- 1. attestations_agent (agent_id, at DESC): every query that reads an
--    agent's records names its tenant and is served by
--    attestations_history_agent (0016); the older index only cost an index
--    insert per verdict.
-- 2. The CHECK (state IN (...)) of agent_state and attestations.
--    PostgreSQL 15 reads a CHECK's expression back from its stored text
--    and prepares it again for every statement that writes the table, so
--    these two took about 10 % of the database's CPU per verdict. The
--    state columns are written only by Vouch's own statements, from fixed
--    values (enrolment: pending; verdict: pass or fail from a boolean;
--    sweeper: timeout), and every reader maps an unknown value to
--    "unspecified", never to pass. interval_ms keeps its CHECK (cheaper,
--    and its value comes from an operator).
--
-- Both only change the catalog (no scan, no rewrite): the tables are locked
-- for a moment, however many rows they hold.
--
-- Reviewed in tests/store/retention_test.cc: the previous release keeps
-- working (it queries by tenant and writes only these values).
DROP INDEX IF EXISTS attestations_agent;
DO $$
DECLARE
  c record;
BEGIN
  FOR c IN
    SELECT conrelid::regclass AS tab, conname FROM pg_constraint
    WHERE contype = 'c' AND coninhcount = 0
      AND conrelid IN ('agent_state'::regclass, 'attestations'::regclass)
      AND pg_get_constraintdef(oid) LIKE 'CHECK ((state = ANY%'
  LOOP
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.tab, c.conname);
  END LOOP;
END
$$;
