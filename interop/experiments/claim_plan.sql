-- The claim statement of crates/plainjobs/src/store/postgres.rs (claim_sql(1, false)) with the
-- claim sessions' settings (CLAIM_SESSION), explained on an empty and on a 20,000-row table.
SET plan_cache_mode = force_generic_plan;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET jit = off;
PREPARE claim_plan(uuid, text[], int8, int8, uuid[]) AS
WITH picked AS MATERIALIZED (
    SELECT id FROM plainjobs_jobrequest
    WHERE queue = $2[1] AND (start_at IS NULL OR start_at <= now())
      AND EXISTS (SELECT 1 FROM plainjobs_workerheartbeat WHERE worker_id = $1 FOR KEY SHARE)
    ORDER BY priority DESC, COALESCE(start_at, created_at), id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), numbered AS MATERIALIZED (
    SELECT id, row_number() OVER () AS n FROM picked
), moved AS (
    DELETE FROM plainjobs_jobrequest r
    WHERE r.id = ANY (ARRAY(SELECT id FROM picked))
    RETURNING r.*
)
INSERT INTO plainjobs_jobprocess (uuid, created_at, started_at, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, trace_id, span_id, worker_id)
SELECT ($5::uuid[])[b.n], now(), CASE WHEN b.n <= $4 THEN now() END, m.uuid, m.created_at, m.job_class, m.parameters, m.priority, m.source, m.queue, m.retries, m.retry_attempt, m.concurrency_key, m.trace_id, m.span_id, $1
FROM moved m JOIN numbered b ON b.id = m.id ORDER BY b.n
RETURNING id;
\echo '--- plan on an empty table'
EXPLAIN (COSTS OFF) EXECUTE claim_plan(gen_random_uuid(), '{default}', 110, 10, '{}');
INSERT INTO plainjobs_jobrequest (job_class, parameters, queue)
SELECT 'tests.Plan', '{"args": [], "kwargs": {}}', CASE WHEN i % 2 = 0 THEN 'default' ELSE 'other' END
FROM generate_series(1, 20000) i;
ANALYZE plainjobs_jobrequest;
\echo '--- plan on 20,000 rows, same session (generic plan kept)'
EXPLAIN (COSTS OFF) EXECUTE claim_plan(gen_random_uuid(), '{default}', 110, 10, '{}');
DEALLOCATE claim_plan;
\echo '--- a new session-level plan on 20,000 rows'
PREPARE claim_plan2(text[]) AS SELECT id FROM plainjobs_jobrequest
    WHERE queue = $1[1] AND (start_at IS NULL OR start_at <= now())
    ORDER BY priority DESC, COALESCE(start_at, created_at), id LIMIT 110 FOR UPDATE SKIP LOCKED;
EXPLAIN (COSTS OFF) EXECUTE claim_plan2('{default}');
DELETE FROM plainjobs_jobrequest;
