-- Watch resume tokens name the database they were issued by, so a token
-- from another database answers OUT_OF_RANGE instead of skipping events.
-- The incarnation is this row's random id plus PostgreSQL's current
-- timeline (pg_walfile_name of the current WAL position): the id changes
-- when the schema is created anew (a new or re-created database), the
-- timeline when a standby is promoted or a backup is restored to a point
-- in time. One row; the CHECK keeps it one.
CREATE TABLE database_incarnation (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  id text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', '')
);
INSERT INTO database_incarnation DEFAULT VALUES;
