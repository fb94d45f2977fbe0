-- Write cost of the claim index: none, as a plain index, as an EXCLUDE constraint's index, on
-- copies of plain's request table with all of plain's indexes. Run: psql -f exclude_cost.sql DB
\timing off
DROP TABLE IF EXISTS cost_none, cost_idx, cost_excl;
CREATE TABLE cost_none (LIKE plainjobs_jobrequest INCLUDING ALL);
CREATE TABLE cost_idx (LIKE plainjobs_jobrequest INCLUDING ALL);
CREATE TABLE cost_excl (LIKE plainjobs_jobrequest INCLUDING ALL);
-- LIKE … INCLUDING ALL copies the source's indexes and its EXCLUDE constraint; start both
-- from plain's indexes only.
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT conname, conrelid::regclass AS t FROM pg_constraint
             WHERE conrelid IN ('cost_none'::regclass, 'cost_idx'::regclass, 'cost_excl'::regclass) AND contype = 'x' LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname);
    END LOOP;
END $$;
CREATE INDEX cost_idx_claim ON cost_idx (queue, priority DESC, (COALESCE(start_at, created_at)), id);
ALTER TABLE cost_excl ADD CONSTRAINT cost_excl_claim
    EXCLUDE USING btree (queue WITH =, priority DESC WITH =, (COALESCE(start_at, created_at)) WITH =, id WITH =);
CREATE OR REPLACE FUNCTION cost_run(t regclass, n int) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; i int;
BEGIN
    t0 := clock_timestamp();
    FOR i IN 1..n LOOP
        EXECUTE format('INSERT INTO %s (job_class, parameters, queue) VALUES ($1, $2, $3)', t)
            USING 'tests.Cost', '{"args": [], "kwargs": {}}'::jsonb, 'default';
    END LOOP;
    RETURN round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1e6 / n, 2);
END $$;
CREATE OR REPLACE FUNCTION cost_bulk(t regclass, n int) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
    t0 := clock_timestamp();
    EXECUTE format('INSERT INTO %s (job_class, parameters, queue) SELECT $1, $2, $3 FROM generate_series(1, $4)', t)
        USING 'tests.Cost', '{"args": [], "kwargs": {}}'::jsonb, 'default', n;
    RETURN round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1e6 / n, 2);
END $$;
\echo 'microseconds per row: single-row INSERTs (20,000), then one 200,000-row INSERT; four rounds'
SELECT round, cost_run('cost_none', 20000) AS none_single, cost_run('cost_idx', 20000) AS idx_single,
       cost_run('cost_excl', 20000) AS excl_single, cost_bulk('cost_none', 200000) AS none_bulk,
       cost_bulk('cost_idx', 200000) AS idx_bulk, cost_bulk('cost_excl', 200000) AS excl_bulk
FROM generate_series(1, 4) round;
DROP TABLE cost_none, cost_idx, cost_excl;
DROP FUNCTION cost_run(regclass, int), cost_bulk(regclass, int);
