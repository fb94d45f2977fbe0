-- How long adding the result table's EXCLUDE constraints takes (each holds ACCESS EXCLUSIVE on
-- the table while its index builds; EXCLUDE has no CONCURRENTLY) with 1,000,000 results
-- (1% ERRORED with a retry left, 10% with a concurrency key). Run on a database with the
-- proposed schema (verify_upgrade.sh fresh); it leaves the constraints in place.
ALTER TABLE plainjobs_jobresult DROP CONSTRAINT IF EXISTS plainjobs_jobresult_job_request_uuid_excl,
    DROP CONSTRAINT IF EXISTS plainjobs_jobresult_retryable_excl, DROP CONSTRAINT IF EXISTS plainjobs_jobresult_class_key_excl;
INSERT INTO plainjobs_jobresult (job_process_uuid, job_request_uuid, job_class, parameters, status, retries, retry_attempt, concurrency_key)
SELECT gen_random_uuid(), gen_random_uuid(), 'tests.Build', '{"args": [], "kwargs": {}}',
       CASE WHEN i % 100 = 0 THEN 'ERRORED' ELSE 'SUCCESSFUL' END, CASE WHEN i % 100 = 0 THEN 1 ELSE 0 END, 0,
       CASE WHEN i % 10 = 0 THEN 'k' || i ELSE '' END
FROM generate_series(1, 1000000) i;
VACUUM ANALYZE plainjobs_jobresult;
BEGIN;
ALTER TABLE plainjobs_jobresult ADD CONSTRAINT plainjobs_jobresult_job_request_uuid_excl EXCLUDE USING btree (job_request_uuid WITH =, id WITH =);
SELECT mode FROM pg_locks WHERE locktype = 'relation' AND pid = pg_backend_pid() AND relation = 'plainjobs_jobresult'::regclass ORDER BY mode;
ROLLBACK;
\timing on
ALTER TABLE plainjobs_jobresult ADD CONSTRAINT plainjobs_jobresult_retryable_excl EXCLUDE USING btree (id WITH =)
    WHERE (retry_job_request_uuid IS NULL AND retries > 0 AND retry_attempt < retries AND status IN ('ERRORED', 'LOST', 'CANCELLED'));
ALTER TABLE plainjobs_jobresult ADD CONSTRAINT plainjobs_jobresult_class_key_excl EXCLUDE USING btree (job_class WITH =, concurrency_key WITH =, id WITH =) WHERE (concurrency_key <> '');
ALTER TABLE plainjobs_jobresult ADD CONSTRAINT plainjobs_jobresult_job_request_uuid_excl EXCLUDE USING btree (job_request_uuid WITH =, id WITH =);
\timing off
TRUNCATE plainjobs_jobresult;
