//! The SQLite schema's migrations, in order (applied by [`super::migrate`]): the same
//! tables with SQLite types (times as integer microseconds since the Unix epoch, uuids and
//! JSON as text).

use super::migrate::{Migration, CREATE_PARTIAL_INDEXES};

/// SQLite migrations: the same tables with SQLite types (times as integer microseconds since the
/// Unix epoch, uuids and JSON as text).
pub(super) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "plain.jobs tables",
    statements: &[
        r#"CREATE TABLE IF NOT EXISTS plainjobs_jobrequest (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at INTEGER NOT NULL,
            uuid TEXT NOT NULL,
            job_class TEXT NOT NULL,
            parameters TEXT NULL,
            priority INTEGER NOT NULL,
            source TEXT NOT NULL,
            queue TEXT NOT NULL,
            retries INTEGER NOT NULL,
            retry_attempt INTEGER NOT NULL,
            concurrency_key TEXT NOT NULL,
            start_at INTEGER NULL,
            trace_id TEXT NULL,
            span_id TEXT NULL,
            CONSTRAINT plainjobs_jobrequest_unique_uuid UNIQUE (uuid)
        )"#,
        r#"CREATE TABLE IF NOT EXISTS plainjobs_jobprocess (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            uuid TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            started_at INTEGER NULL,
            job_request_uuid TEXT NOT NULL,
            requested_at INTEGER NULL,
            job_class TEXT NOT NULL,
            parameters TEXT NULL,
            priority INTEGER NOT NULL,
            source TEXT NOT NULL,
            queue TEXT NOT NULL,
            retries INTEGER NOT NULL,
            retry_attempt INTEGER NOT NULL,
            concurrency_key TEXT NOT NULL,
            trace_id TEXT NULL,
            span_id TEXT NULL,
            worker_id TEXT NOT NULL,
            CONSTRAINT plainjobs_job_unique_uuid UNIQUE (uuid)
        )"#,
        r#"CREATE TABLE IF NOT EXISTS plainjobs_jobresult (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            uuid TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            job_process_uuid TEXT NOT NULL,
            started_at INTEGER NULL,
            ended_at INTEGER NULL,
            error TEXT NOT NULL,
            status TEXT NOT NULL,
            job_request_uuid TEXT NOT NULL,
            requested_at INTEGER NULL,
            job_class TEXT NOT NULL,
            parameters TEXT NULL,
            priority INTEGER NOT NULL,
            source TEXT NOT NULL,
            queue TEXT NOT NULL,
            retries INTEGER NOT NULL,
            retry_attempt INTEGER NOT NULL,
            concurrency_key TEXT NOT NULL,
            retry_job_request_uuid TEXT NULL,
            trace_id TEXT NULL,
            span_id TEXT NULL,
            CONSTRAINT plainjobs_jobresult_unique_uuid UNIQUE (uuid),
            CONSTRAINT plainjobs_jobresult_unique_job_process_uuid UNIQUE (job_process_uuid)
        )"#,
        r#"CREATE TABLE IF NOT EXISTS plainjobs_workerheartbeat (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            worker_id TEXT NOT NULL,
            hostname TEXT NOT NULL,
            pid INTEGER NOT NULL,
            queues TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            last_heartbeat_at INTEGER NOT NULL,
            CONSTRAINT plainjobs_workerheartbeat_unique_worker_id UNIQUE (worker_id)
        )"#,
        "CREATE INDEX IF NOT EXISTS plainjobs_jobrequest_claim_idx ON plainjobs_jobrequest (queue, priority DESC, COALESCE(start_at, created_at), id)",
        "CREATE INDEX IF NOT EXISTS plainjobs_jobrequest_start_at_idx ON plainjobs_jobrequest (start_at)",
        "CREATE INDEX IF NOT EXISTS job_request_concurrency_key ON plainjobs_jobrequest (job_class, concurrency_key)",
        "CREATE INDEX IF NOT EXISTS job_concurrency_key ON plainjobs_jobprocess (job_class, concurrency_key)",
        "CREATE INDEX IF NOT EXISTS plainjobs_jobprocess_worker_id_idx ON plainjobs_jobprocess (worker_id)",
        "CREATE INDEX IF NOT EXISTS plainjobs_jobprocess_job_request_uuid_idx ON plainjobs_jobprocess (job_request_uuid)",
        "CREATE INDEX IF NOT EXISTS plainjobs_jobresult_created_at_idx ON plainjobs_jobresult (created_at)",
        "CREATE INDEX IF NOT EXISTS plainjobs_jobresult_status_idx ON plainjobs_jobresult (status)",
        "CREATE INDEX IF NOT EXISTS plainjobs_jobresult_queue_idx ON plainjobs_jobresult (queue)",
        "CREATE INDEX IF NOT EXISTS plainjobs_jobresult_retryable_idx ON plainjobs_jobresult (id) WHERE retry_job_request_uuid IS NULL AND retries > 0 AND retry_attempt < retries AND status IN ('ERRORED', 'LOST', 'CANCELLED')",
        "CREATE INDEX IF NOT EXISTS plainjobs_workerheartbeat_last_heartbeat_at_idx ON plainjobs_workerheartbeat (last_heartbeat_at)",
        "CREATE INDEX IF NOT EXISTS plainjobs_jobresult_class_key_idx ON plainjobs_jobresult (job_class, concurrency_key)",
    ],
},
Migration {
    version: 2,
    name: "partial indexes for keys and start times",
    statements: &[
        "DROP INDEX IF EXISTS plainjobs_jobrequest_start_at_idx",
        "DROP INDEX IF EXISTS job_request_concurrency_key",
        "DROP INDEX IF EXISTS job_concurrency_key",
        "DROP INDEX IF EXISTS plainjobs_jobresult_class_key_idx",
        CREATE_PARTIAL_INDEXES[0],
        CREATE_PARTIAL_INDEXES[1],
        CREATE_PARTIAL_INDEXES[2],
        CREATE_PARTIAL_INDEXES[3],
    ],
},
Migration {
    version: 3,
    name: "paused queues",
    statements: &[
        "CREATE TABLE IF NOT EXISTS plainjobs_paused_queue (
            queue TEXT PRIMARY KEY,
            paused_at INTEGER NOT NULL,
            paused_by TEXT NOT NULL
        )",
    ],
},
Migration {
    version: 4,
    name: "results by the request that retried them",
    statements: &[
        "CREATE INDEX IF NOT EXISTS plainjobs_jobresult_retried_by_idx ON plainjobs_jobresult (retry_job_request_uuid, id) WHERE retry_job_request_uuid IS NOT NULL",
    ],
}];
