-- Bulk-insert cost of the request table's indexes: the schema plainjobs' migrations 1-5 make
-- today (no plainmigrations: pkey, unique uuid, claim index, two partial indexes) against the
-- proposed one (plain's eight indexes + the claim index as an EXCLUDE constraint).
DROP TABLE IF EXISTS cost_today, cost_target;
CREATE TABLE cost_today (LIKE plainjobs_jobrequest INCLUDING DEFAULTS INCLUDING IDENTITY);
ALTER TABLE cost_today ADD PRIMARY KEY (id), ADD UNIQUE (uuid);
CREATE INDEX ON cost_today (queue, priority DESC, (COALESCE(start_at, created_at)), id);
CREATE INDEX ON cost_today (start_at) WHERE start_at IS NOT NULL;
CREATE INDEX ON cost_today (job_class, concurrency_key) WHERE concurrency_key <> '';
CREATE TABLE cost_target (LIKE plainjobs_jobrequest INCLUDING ALL);
CREATE OR REPLACE FUNCTION cost_bulk(t regclass, n int) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
    t0 := clock_timestamp();
    EXECUTE format('INSERT INTO %s (job_class, parameters, queue) SELECT $1, $2, $3 FROM generate_series(1, $4)', t)
        USING 'tests.Cost', '{"args": [], "kwargs": {}}'::jsonb, 'default', n;
    RETURN round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1e6 / n, 2);
END $$;
SELECT (SELECT count(*) FROM pg_index WHERE indrelid = 'cost_today'::regclass) AS today_indexes,
       (SELECT count(*) FROM pg_index WHERE indrelid = 'cost_target'::regclass) AS target_indexes;
\echo 'microseconds per row, one 200,000-row INSERT each, four rounds'
SELECT round, cost_bulk('cost_today', 200000) AS today, cost_bulk('cost_target', 200000) AS target
FROM generate_series(1, 4) round;
DROP TABLE cost_today, cost_target;
DROP FUNCTION cost_bulk(regclass, int);
