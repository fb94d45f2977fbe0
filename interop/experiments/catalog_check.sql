-- What `plainjobs migrate` (and a starting worker) can read from the catalog to know, without
-- trusting any history table, whether every object of the proposed schema is in place in the
-- current schema. One row per object; `ok` false names what is missing or different.
-- Expected texts are pg_get_indexdef / pg_get_constraintdef / format_type / pg_get_expr output
-- on PostgreSQL 15, as read from databases built by plain.postgres 0.120.0.
WITH expected_columns(tbl, col, typ, not_null, dflt) AS (VALUES
    ('plainjobs_jobrequest', 'id', 'bigint', true, NULL),
    ('plainjobs_jobrequest', 'concurrency_key', 'text', true, '''''::text'),
    ('plainjobs_jobrequest', 'created_at', 'timestamp with time zone', true, 'statement_timestamp()'),
    ('plainjobs_jobrequest', 'job_class', 'text', true, NULL),
    ('plainjobs_jobrequest', 'parameters', 'jsonb', false, NULL),
    ('plainjobs_jobrequest', 'priority', 'smallint', true, '0'),
    ('plainjobs_jobrequest', 'queue', 'text', true, '''default''::text'),
    ('plainjobs_jobrequest', 'retries', 'smallint', true, '0'),
    ('plainjobs_jobrequest', 'retry_attempt', 'smallint', true, '0'),
    ('plainjobs_jobrequest', 'source', 'text', true, '''''::text'),
    ('plainjobs_jobrequest', 'span_id', 'text', false, NULL),
    ('plainjobs_jobrequest', 'start_at', 'timestamp with time zone', false, NULL),
    ('plainjobs_jobrequest', 'trace_id', 'text', false, NULL),
    ('plainjobs_jobrequest', 'uuid', 'uuid', true, 'gen_random_uuid()'),
    ('plainjobs_jobprocess', 'id', 'bigint', true, NULL),
    ('plainjobs_jobprocess', 'concurrency_key', 'text', true, '''''::text'),
    ('plainjobs_jobprocess', 'created_at', 'timestamp with time zone', true, 'statement_timestamp()'),
    ('plainjobs_jobprocess', 'job_class', 'text', true, NULL),
    ('plainjobs_jobprocess', 'job_request_uuid', 'uuid', true, NULL),
    ('plainjobs_jobprocess', 'parameters', 'jsonb', false, NULL),
    ('plainjobs_jobprocess', 'priority', 'smallint', true, '0'),
    ('plainjobs_jobprocess', 'queue', 'text', true, '''default''::text'),
    ('plainjobs_jobprocess', 'requested_at', 'timestamp with time zone', false, NULL),
    ('plainjobs_jobprocess', 'retries', 'smallint', true, '0'),
    ('plainjobs_jobprocess', 'retry_attempt', 'smallint', true, '0'),
    ('plainjobs_jobprocess', 'source', 'text', true, '''''::text'),
    ('plainjobs_jobprocess', 'span_id', 'text', false, NULL),
    ('plainjobs_jobprocess', 'started_at', 'timestamp with time zone', false, NULL),
    ('plainjobs_jobprocess', 'trace_id', 'text', false, NULL),
    ('plainjobs_jobprocess', 'uuid', 'uuid', true, 'gen_random_uuid()'),
    ('plainjobs_jobprocess', 'worker_id', 'uuid', true, NULL),
    ('plainjobs_jobresult', 'id', 'bigint', true, NULL),
    ('plainjobs_jobresult', 'concurrency_key', 'text', true, '''''::text'),
    ('plainjobs_jobresult', 'created_at', 'timestamp with time zone', true, 'statement_timestamp()'),
    ('plainjobs_jobresult', 'ended_at', 'timestamp with time zone', false, NULL),
    ('plainjobs_jobresult', 'error', 'text', true, '''''::text'),
    ('plainjobs_jobresult', 'job_class', 'text', true, NULL),
    ('plainjobs_jobresult', 'job_process_uuid', 'uuid', true, NULL),
    ('plainjobs_jobresult', 'job_request_uuid', 'uuid', true, NULL),
    ('plainjobs_jobresult', 'parameters', 'jsonb', false, NULL),
    ('plainjobs_jobresult', 'priority', 'smallint', true, '0'),
    ('plainjobs_jobresult', 'queue', 'text', true, '''default''::text'),
    ('plainjobs_jobresult', 'requested_at', 'timestamp with time zone', false, NULL),
    ('plainjobs_jobresult', 'retries', 'smallint', true, '0'),
    ('plainjobs_jobresult', 'retry_attempt', 'smallint', true, '0'),
    ('plainjobs_jobresult', 'retry_job_request_uuid', 'uuid', false, NULL),
    ('plainjobs_jobresult', 'source', 'text', true, '''''::text'),
    ('plainjobs_jobresult', 'span_id', 'text', false, NULL),
    ('plainjobs_jobresult', 'started_at', 'timestamp with time zone', false, NULL),
    ('plainjobs_jobresult', 'status', 'text', true, NULL),
    ('plainjobs_jobresult', 'trace_id', 'text', false, NULL),
    ('plainjobs_jobresult', 'uuid', 'uuid', true, 'gen_random_uuid()'),
    ('plainjobs_workerheartbeat', 'id', 'bigint', true, NULL),
    ('plainjobs_workerheartbeat', 'hostname', 'text', true, NULL),
    ('plainjobs_workerheartbeat', 'last_heartbeat_at', 'timestamp with time zone', true, NULL),
    ('plainjobs_workerheartbeat', 'pid', 'integer', true, NULL),
    ('plainjobs_workerheartbeat', 'queues', 'jsonb', true, NULL),
    ('plainjobs_workerheartbeat', 'started_at', 'timestamp with time zone', true, 'statement_timestamp()'),
    ('plainjobs_workerheartbeat', 'worker_id', 'uuid', true, NULL)
), expected_indexes(tbl, name, tail) AS (VALUES
    -- plain's; the `USING …` tail of pg_get_indexdef (what plain's convergence compares)
    ('plainjobs_jobrequest', 'plainjobs_jobrequest_priority_idx', 'USING btree (priority)'),
    ('plainjobs_jobrequest', 'plainjobs_jobrequest_created_at_idx', 'USING btree (created_at)'),
    ('plainjobs_jobrequest', 'plainjobs_jobrequest_queue_idx', 'USING btree (queue)'),
    ('plainjobs_jobrequest', 'plainjobs_jobrequest_start_at_idx', 'USING btree (start_at)'),
    ('plainjobs_jobrequest', 'plainjobs_jobrequest_concurrency_key_idx', 'USING btree (concurrency_key)'),
    ('plainjobs_jobrequest', 'job_request_concurrency_key', 'USING btree (job_class, concurrency_key)'),
    ('plainjobs_jobprocess', 'plainjobs_jobprocess_created_at_idx', 'USING btree (created_at)'),
    ('plainjobs_jobprocess', 'plainjobs_jobprocess_queue_idx', 'USING btree (queue)'),
    ('plainjobs_jobprocess', 'plainjobs_jobprocess_concurrency_key_idx', 'USING btree (concurrency_key)'),
    ('plainjobs_jobprocess', 'plainjobs_jobprocess_started_at_idx', 'USING btree (started_at)'),
    ('plainjobs_jobprocess', 'plainjobs_jobprocess_job_request_uuid_idx', 'USING btree (job_request_uuid)'),
    ('plainjobs_jobprocess', 'plainjobs_jobprocess_worker_id_idx', 'USING btree (worker_id)'),
    ('plainjobs_jobprocess', 'job_concurrency_key', 'USING btree (job_class, concurrency_key)'),
    ('plainjobs_jobresult', 'plainjobs_jobresult_created_at_idx', 'USING btree (created_at)'),
    ('plainjobs_jobresult', 'plainjobs_jobresult_status_idx', 'USING btree (status)')
), expected_constraints(tbl, name, def) AS (VALUES
    ('plainjobs_jobrequest', 'plainjobs_jobrequest_pkey', 'PRIMARY KEY (id)'),
    ('plainjobs_jobrequest', 'plainjobs_jobrequest_unique_uuid', 'UNIQUE (uuid)'),
    ('plainjobs_jobprocess', 'plainjobs_jobprocess_pkey', 'PRIMARY KEY (id)'),
    ('plainjobs_jobprocess', 'plainjobs_job_unique_uuid', 'UNIQUE (uuid)'),
    ('plainjobs_jobresult', 'plainjobs_jobresult_pkey', 'PRIMARY KEY (id)'),
    ('plainjobs_jobresult', 'plainjobs_jobresult_unique_uuid', 'UNIQUE (uuid)'),
    ('plainjobs_jobresult', 'plainjobs_jobresult_unique_job_process_uuid', 'UNIQUE (job_process_uuid)'),
    ('plainjobs_workerheartbeat', 'plainjobs_workerheartbeat_pkey', 'PRIMARY KEY (id)'),
    ('plainjobs_workerheartbeat', 'plainjobs_workerheartbeat_unique_worker_id', 'UNIQUE (worker_id)'),
    -- ours
    ('plainjobs_jobrequest', 'plainjobs_jobrequest_claim_excl',
     'EXCLUDE USING btree (queue WITH =, priority DESC WITH =, COALESCE(start_at, created_at) WITH =, id WITH =)'),
    ('plainjobs_jobresult', 'plainjobs_jobresult_retryable_excl',
     'EXCLUDE USING btree (id WITH =) WHERE (((retry_job_request_uuid IS NULL) AND (retries > 0) AND (retry_attempt < retries) AND (status = ANY (ARRAY[''ERRORED''::text, ''LOST''::text, ''CANCELLED''::text]))))'),
    ('plainjobs_jobresult', 'plainjobs_jobresult_class_key_excl',
     'EXCLUDE USING btree (job_class WITH =, concurrency_key WITH =, id WITH =) WHERE ((concurrency_key <> ''''::text))'),
    ('plainjobs_jobresult', 'plainjobs_jobresult_job_request_uuid_excl',
     'EXCLUDE USING btree (job_request_uuid WITH =, id WITH =)')
), rel AS (
    SELECT c.oid, c.relname FROM pg_class c
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
)
SELECT 'column' AS kind, e.tbl || '.' || e.col AS name,
       a.attname IS NOT NULL AND format_type(a.atttypid, a.atttypmod) = e.typ
         AND a.attnotnull = e.not_null AND pg_get_expr(d.adbin, d.adrelid) IS NOT DISTINCT FROM e.dflt AS ok,
       concat_ws(' ', format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 'NOT NULL' END,
                 'DEFAULT ' || pg_get_expr(d.adbin, d.adrelid)) AS found
FROM expected_columns e
LEFT JOIN rel r ON r.relname = e.tbl
LEFT JOIN pg_attribute a ON a.attrelid = r.oid AND a.attname = e.col AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
UNION ALL
SELECT 'index', e.name,
       i.indexrelid IS NOT NULL AND i.indisvalid
         AND substr(pg_get_indexdef(i.indexrelid), strpos(pg_get_indexdef(i.indexrelid), 'USING ')) = e.tail,
       pg_get_indexdef(i.indexrelid)
FROM expected_indexes e
LEFT JOIN rel r ON r.relname = e.tbl
LEFT JOIN pg_class ic ON ic.relname = e.name AND ic.relnamespace = current_schema()::regnamespace
LEFT JOIN pg_index i ON i.indexrelid = ic.oid AND i.indrelid = r.oid
UNION ALL
SELECT 'constraint', e.name,
       c.oid IS NOT NULL AND pg_get_constraintdef(c.oid) = e.def
         AND (SELECT indisvalid FROM pg_index WHERE indexrelid = c.conindid),
       pg_get_constraintdef(c.oid)
FROM expected_constraints e
LEFT JOIN rel r ON r.relname = e.tbl
LEFT JOIN pg_constraint c ON c.conrelid = r.oid AND c.conname = e.name
UNION ALL
SELECT 'trigger', 'plainjobs_jobrequest_notify',
       t.oid IS NOT NULL AND t.tgenabled <> 'D' AND p.proname = 'plainjobs_notify_jobrequest'
         AND p.prosrc LIKE '%pg_notify(''plainjobs_jobrequest'', TG_TABLE_SCHEMA)%'
         AND t.tgtype = 4::int2 /* AFTER INSERT FOR EACH STATEMENT */,
       pg_get_triggerdef(t.oid)
FROM (SELECT 1) one
LEFT JOIN rel r ON r.relname = 'plainjobs_jobrequest'
LEFT JOIN pg_trigger t ON t.tgrelid = r.oid AND t.tgname = 'plainjobs_jobrequest_notify'
LEFT JOIN pg_proc p ON p.oid = t.tgfoid
UNION ALL
SELECT 'plainmigrations row', 'plainjobs 0001_initial',
       to_regclass(current_schema() || '.plainmigrations') IS NOT NULL
         AND EXISTS (SELECT 1 FROM plainmigrations WHERE app = 'plainjobs' AND name = '0001_initial'), NULL
UNION ALL
SELECT 'storage parameters', r.relname, r.reloptions IS NULL, array_to_string(r.reloptions, ', ')
FROM pg_class r
WHERE r.relnamespace = current_schema()::regnamespace AND r.relkind = 'r'
  AND r.relname IN ('plainjobs_jobrequest', 'plainjobs_jobprocess', 'plainjobs_jobresult', 'plainjobs_workerheartbeat')
ORDER BY ok, kind, name;
