-- From the schema of plainjobs' PostgreSQL migrations 1-5 (as on main today), with or without
-- plain.jobs' own tables/indexes around, to the proposed one: plain.jobs' exact schema
-- (target_tables.sql) + our additions as EXCLUDE constraints and a trigger (extras_exclude.sql).
-- Run in one transaction, then target_tables.sql, extras_exclude.sql, plainmigrations.sql.
BEGIN;
-- 1. Our old plain indexes, replaced by EXCLUDE constraints or by plain's own indexes.
DROP INDEX IF EXISTS plainjobs_jobrequest_claim_idx;
DROP INDEX IF EXISTS plainjobs_jobrequest_start_at_partial_idx;
DROP INDEX IF EXISTS plainjobs_jobrequest_class_key_idx;
DROP INDEX IF EXISTS plainjobs_jobprocess_class_key_idx;
DROP INDEX IF EXISTS plainjobs_jobresult_class_key_partial_idx;
DROP INDEX IF EXISTS plainjobs_jobresult_class_key_idx;
DROP INDEX IF EXISTS plainjobs_jobresult_retryable_idx;
DROP INDEX IF EXISTS plainjobs_jobresult_job_request_uuid_idx;
DROP INDEX IF EXISTS plainjobs_jobresult_job_class_idx;
DROP INDEX IF EXISTS plainjobs_jobresult_queue_idx;
DROP INDEX IF EXISTS plainjobs_workerheartbeat_last_heartbeat_at_idx;
-- 2. varchar(n) -> text (binary-coercible: no table rewrite).
ALTER TABLE plainjobs_jobrequest
    ALTER COLUMN concurrency_key TYPE text, ALTER COLUMN job_class TYPE text,
    ALTER COLUMN queue TYPE text, ALTER COLUMN span_id TYPE text, ALTER COLUMN trace_id TYPE text;
ALTER TABLE plainjobs_jobprocess
    ALTER COLUMN concurrency_key TYPE text, ALTER COLUMN job_class TYPE text,
    ALTER COLUMN queue TYPE text, ALTER COLUMN span_id TYPE text, ALTER COLUMN trace_id TYPE text;
ALTER TABLE plainjobs_jobresult
    ALTER COLUMN concurrency_key TYPE text, ALTER COLUMN job_class TYPE text,
    ALTER COLUMN queue TYPE text, ALTER COLUMN span_id TYPE text, ALTER COLUMN trace_id TYPE text,
    ALTER COLUMN status TYPE text;
ALTER TABLE plainjobs_workerheartbeat ALTER COLUMN hostname TYPE text;
-- 3. plain's 26 column defaults.
ALTER TABLE plainjobs_jobrequest
    ALTER COLUMN concurrency_key SET DEFAULT '', ALTER COLUMN created_at SET DEFAULT statement_timestamp(),
    ALTER COLUMN priority SET DEFAULT 0, ALTER COLUMN queue SET DEFAULT 'default',
    ALTER COLUMN retries SET DEFAULT 0, ALTER COLUMN retry_attempt SET DEFAULT 0,
    ALTER COLUMN source SET DEFAULT '', ALTER COLUMN uuid SET DEFAULT gen_random_uuid();
ALTER TABLE plainjobs_jobprocess
    ALTER COLUMN concurrency_key SET DEFAULT '', ALTER COLUMN created_at SET DEFAULT statement_timestamp(),
    ALTER COLUMN priority SET DEFAULT 0, ALTER COLUMN queue SET DEFAULT 'default',
    ALTER COLUMN retries SET DEFAULT 0, ALTER COLUMN retry_attempt SET DEFAULT 0,
    ALTER COLUMN source SET DEFAULT '', ALTER COLUMN uuid SET DEFAULT gen_random_uuid();
ALTER TABLE plainjobs_jobresult
    ALTER COLUMN concurrency_key SET DEFAULT '', ALTER COLUMN created_at SET DEFAULT statement_timestamp(),
    ALTER COLUMN error SET DEFAULT '', ALTER COLUMN priority SET DEFAULT 0,
    ALTER COLUMN queue SET DEFAULT 'default', ALTER COLUMN retries SET DEFAULT 0,
    ALTER COLUMN retry_attempt SET DEFAULT 0, ALTER COLUMN source SET DEFAULT '',
    ALTER COLUMN uuid SET DEFAULT gen_random_uuid();
ALTER TABLE plainjobs_workerheartbeat ALTER COLUMN started_at SET DEFAULT statement_timestamp();
-- 4. Autovacuum storage parameters: plain's convergence resets them (see FINDINGS.md 2d).
ALTER TABLE plainjobs_jobrequest RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold,
    autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_insert_threshold,
    autovacuum_analyze_scale_factor, autovacuum_analyze_threshold);
ALTER TABLE plainjobs_jobprocess RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold,
    autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_insert_threshold,
    autovacuum_analyze_scale_factor, autovacuum_analyze_threshold);
COMMIT;
