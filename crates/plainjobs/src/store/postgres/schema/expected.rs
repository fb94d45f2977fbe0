//! The schema a PostgreSQL database should have: plain.jobs' four tables exactly as a Plain
//! deploy (`plain postgres sync`, plain.jobs 0.57) leaves them, and our additions in forms that
//! plain.postgres' convergence leaves alone. docs/decisions/plain-compatibility.md says why.

/// The schema version this build writes and understands.
pub(crate) const SCHEMA_VERSION: i64 = 8;

/// The lock plain.postgres takes around `sync` and `migrations apply` (its schema lock,
/// `plain/postgres/schema_lock.py`): held while we migrate, so a Plain deploy and plainjobs
/// never change the schema at once.
pub(crate) const PLAIN_SCHEMA_LOCK: i64 = 1_047_265_496;

/// The four tables, as `CREATE TABLE IF NOT EXISTS` in plain's column order (id, then the
/// fields alphabetically), with plain's defaults and unique constraints.
pub(crate) const CREATE_TABLES: &str = include_str!("plain_tables.sql");

/// A column as the catalog shows it (`format_type`, `pg_get_expr` of the default).
pub(crate) struct Column {
    pub table: &'static str,
    pub name: &'static str,
    pub ty: &'static str,
    pub not_null: bool,
    /// The default as `pg_get_expr` prints it, and as SQL to set it.
    pub default: Option<(&'static str, &'static str)>,
}

const fn col(
    table: &'static str,
    name: &'static str,
    ty: &'static str,
    not_null: bool,
    default: Option<(&'static str, &'static str)>,
) -> Column {
    Column {
        table,
        name,
        ty,
        not_null,
        default,
    }
}

const TEXT: &str = "text";
const TS: &str = "timestamp with time zone";
const EMPTY: Option<(&str, &str)> = Some(("''::text", "''"));
const NOW: Option<(&str, &str)> = Some(("statement_timestamp()", "statement_timestamp()"));
const ZERO: Option<(&str, &str)> = Some(("0", "0"));
const DEFAULT_QUEUE: Option<(&str, &str)> = Some(("'default'::text", "'default'"));
const NEW_UUID: Option<(&str, &str)> = Some(("gen_random_uuid()", "gen_random_uuid()"));

const REQ: &str = "plainjobs_jobrequest";
const PROC: &str = "plainjobs_jobprocess";
const RES: &str = "plainjobs_jobresult";
const HB: &str = "plainjobs_workerheartbeat";

/// The four tables.
pub(crate) const TABLES: [&str; 4] = [REQ, PROC, RES, HB];

/// Every column of plain.jobs' tables.
pub(crate) const COLUMNS: &[Column] = &[
    col(REQ, "id", "bigint", true, None),
    col(REQ, "concurrency_key", TEXT, true, EMPTY),
    col(REQ, "created_at", TS, true, NOW),
    col(REQ, "job_class", TEXT, true, None),
    col(REQ, "parameters", "jsonb", false, None),
    col(REQ, "priority", "smallint", true, ZERO),
    col(REQ, "queue", TEXT, true, DEFAULT_QUEUE),
    col(REQ, "retries", "smallint", true, ZERO),
    col(REQ, "retry_attempt", "smallint", true, ZERO),
    col(REQ, "source", TEXT, true, EMPTY),
    col(REQ, "span_id", TEXT, false, None),
    col(REQ, "start_at", TS, false, None),
    col(REQ, "trace_id", TEXT, false, None),
    col(REQ, "uuid", "uuid", true, NEW_UUID),
    col(PROC, "id", "bigint", true, None),
    col(PROC, "concurrency_key", TEXT, true, EMPTY),
    col(PROC, "created_at", TS, true, NOW),
    col(PROC, "job_class", TEXT, true, None),
    col(PROC, "job_request_uuid", "uuid", true, None),
    col(PROC, "parameters", "jsonb", false, None),
    col(PROC, "priority", "smallint", true, ZERO),
    col(PROC, "queue", TEXT, true, DEFAULT_QUEUE),
    col(PROC, "requested_at", TS, false, None),
    col(PROC, "retries", "smallint", true, ZERO),
    col(PROC, "retry_attempt", "smallint", true, ZERO),
    col(PROC, "source", TEXT, true, EMPTY),
    col(PROC, "span_id", TEXT, false, None),
    col(PROC, "started_at", TS, false, None),
    col(PROC, "trace_id", TEXT, false, None),
    col(PROC, "uuid", "uuid", true, NEW_UUID),
    col(PROC, "worker_id", "uuid", true, None),
    col(RES, "id", "bigint", true, None),
    col(RES, "concurrency_key", TEXT, true, EMPTY),
    col(RES, "created_at", TS, true, NOW),
    col(RES, "ended_at", TS, false, None),
    col(RES, "error", TEXT, true, EMPTY),
    col(RES, "job_class", TEXT, true, None),
    col(RES, "job_process_uuid", "uuid", true, None),
    col(RES, "job_request_uuid", "uuid", true, None),
    col(RES, "parameters", "jsonb", false, None),
    col(RES, "priority", "smallint", true, ZERO),
    col(RES, "queue", TEXT, true, DEFAULT_QUEUE),
    col(RES, "requested_at", TS, false, None),
    col(RES, "retries", "smallint", true, ZERO),
    col(RES, "retry_attempt", "smallint", true, ZERO),
    col(RES, "retry_job_request_uuid", "uuid", false, None),
    col(RES, "source", TEXT, true, EMPTY),
    col(RES, "span_id", TEXT, false, None),
    col(RES, "started_at", TS, false, None),
    col(RES, "status", TEXT, true, None),
    col(RES, "trace_id", TEXT, false, None),
    col(RES, "uuid", "uuid", true, NEW_UUID),
    col(HB, "id", "bigint", true, None),
    col(HB, "hostname", TEXT, true, None),
    col(HB, "last_heartbeat_at", TS, true, None),
    col(HB, "pid", "integer", true, None),
    col(HB, "queues", "jsonb", true, None),
    col(HB, "started_at", TS, true, NOW),
    col(HB, "worker_id", "uuid", true, None),
];

/// An index plain.jobs' models declare: its name, table, and the columns of its `USING btree`.
pub(crate) struct Index {
    pub table: &'static str,
    pub name: &'static str,
    pub columns: &'static str,
}

const fn idx(table: &'static str, name: &'static str, columns: &'static str) -> Index {
    Index {
        table,
        name,
        columns,
    }
}

/// plain.jobs' indexes (its models' `Options.indexes`).
pub(crate) const INDEXES: &[Index] = &[
    idx(REQ, "plainjobs_jobrequest_priority_idx", "priority"),
    idx(REQ, "plainjobs_jobrequest_created_at_idx", "created_at"),
    idx(REQ, "plainjobs_jobrequest_queue_idx", "queue"),
    idx(REQ, "plainjobs_jobrequest_start_at_idx", "start_at"),
    idx(
        REQ,
        "plainjobs_jobrequest_concurrency_key_idx",
        "concurrency_key",
    ),
    idx(
        REQ,
        "job_request_concurrency_key",
        "job_class, concurrency_key",
    ),
    idx(PROC, "plainjobs_jobprocess_created_at_idx", "created_at"),
    idx(PROC, "plainjobs_jobprocess_queue_idx", "queue"),
    idx(
        PROC,
        "plainjobs_jobprocess_concurrency_key_idx",
        "concurrency_key",
    ),
    idx(PROC, "plainjobs_jobprocess_started_at_idx", "started_at"),
    idx(
        PROC,
        "plainjobs_jobprocess_job_request_uuid_idx",
        "job_request_uuid",
    ),
    idx(PROC, "plainjobs_jobprocess_worker_id_idx", "worker_id"),
    idx(PROC, "job_concurrency_key", "job_class, concurrency_key"),
    idx(RES, "plainjobs_jobresult_created_at_idx", "created_at"),
    idx(RES, "plainjobs_jobresult_status_idx", "status"),
];

/// A constraint: its name, table, and definition as `pg_get_constraintdef` prints it (which is
/// also what `ADD CONSTRAINT name` takes).
pub(crate) struct Constraint {
    pub table: &'static str,
    pub name: &'static str,
    pub definition: &'static str,
}

const fn con(table: &'static str, name: &'static str, definition: &'static str) -> Constraint {
    Constraint {
        table,
        name,
        definition,
    }
}

/// plain.jobs' unique constraints.
pub(crate) const UNIQUE: &[Constraint] = &[
    con(REQ, "plainjobs_jobrequest_unique_uuid", "UNIQUE (uuid)"),
    con(PROC, "plainjobs_job_unique_uuid", "UNIQUE (uuid)"),
    con(RES, "plainjobs_jobresult_unique_uuid", "UNIQUE (uuid)"),
    con(
        RES,
        "plainjobs_jobresult_unique_job_process_uuid",
        "UNIQUE (job_process_uuid)",
    ),
    con(
        HB,
        "plainjobs_workerheartbeat_unique_worker_id",
        "UNIQUE (worker_id)",
    ),
];

/// Our indexes, each as the index of a btree EXCLUDE constraint: plain.postgres' convergence
/// drops every btree index its models do not declare, and leaves exclusion constraints alone.
/// Each ends with `id WITH =` (`id` is the primary key), so it can never refuse a row; it
/// exists for its index.
pub(crate) const OURS: &[Constraint] = &[
    // The claim's ORDER BY exactly (FIFO within priority): the claim reads the first entries
    // and never sorts.
    con(
        REQ,
        "plainjobs_jobrequest_claim_excl",
        "EXCLUDE USING btree (queue WITH =, priority DESC WITH =, COALESCE(start_at, created_at) WITH =, id WITH =)",
    ),
    // The retry pass finds retryable results without scanning history.
    con(
        RES,
        "plainjobs_jobresult_retryable_excl",
        "EXCLUDE USING btree (id WITH =) WHERE (((retry_job_request_uuid IS NULL) AND (retries > 0) AND (retry_attempt < retries) AND (status = ANY (ARRAY['ERRORED'::text, 'LOST'::text, 'CANCELLED'::text]))))",
    ),
    // Finished results by key: the scheduling pass enqueues each occurrence once.
    con(
        RES,
        "plainjobs_jobresult_class_key_excl",
        "EXCLUDE USING btree (job_class WITH =, concurrency_key WITH =, id WITH =) WHERE ((concurrency_key <> ''::text))",
    ),
    // Results by request uuid: a job's chain, and the enqueue's idempotent second attempt.
    con(
        RES,
        "plainjobs_jobresult_job_request_uuid_excl",
        "EXCLUDE USING btree (job_request_uuid WITH =, id WITH =)",
    ),
    // Results by the request that retried them: a job's chain walked back from a retry (or
    // found to end at a never-retried job) in one lookup. Partial: most results are never
    // retried, so the drain pays for it only on failures.
    con(
        RES,
        "plainjobs_jobresult_retried_by_excl",
        "EXCLUDE USING btree (retry_job_request_uuid WITH =, id WITH =) WHERE ((retry_job_request_uuid IS NOT NULL))",
    ),
];

/// Indexes earlier plainjobs versions made that the objects above replace (or that plain's own
/// indexes now serve), dropped when found.
pub(crate) const OBSOLETE_INDEXES: &[&str] = &[
    "plainjobs_jobrequest_claim_idx",
    "plainjobs_jobrequest_start_at_partial_idx",
    "plainjobs_jobrequest_class_key_idx",
    "plainjobs_jobprocess_class_key_idx",
    "plainjobs_jobresult_class_key_partial_idx",
    "plainjobs_jobresult_class_key_idx",
    "plainjobs_jobresult_retryable_idx",
    "plainjobs_jobresult_job_request_uuid_idx",
    "plainjobs_jobresult_job_class_idx",
    "plainjobs_jobresult_queue_idx",
    "plainjobs_workerheartbeat_last_heartbeat_at_idx",
];

/// The insert notification: one per inserting statement, naming the table's schema, so any
/// producer (plain.jobs' Python code too) wakes the workers of that schema. Except when the
/// inserting transaction says `plainjobs.notify = off`: the store's own inserts, which wake
/// the workers after their commit instead (`store/postgres/wake.rs`) — a `NOTIFY` inside the
/// inserting transaction makes concurrent enqueues commit one at a time.
pub(crate) const NOTIFY_FUNCTION: &str = r#"CREATE OR REPLACE FUNCTION plainjobs_notify_jobrequest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('plainjobs.notify', true) IS DISTINCT FROM 'off' THEN
        PERFORM pg_notify('plainjobs_jobrequest', TG_TABLE_SCHEMA);
    END IF;
    RETURN NULL;
END
$$"#;

/// What the function body must send.
pub(crate) const NOTIFY_BODY: &str = "pg_notify('plainjobs_jobrequest', TG_TABLE_SCHEMA)";

/// What the function body must honour: inserts that wake the workers themselves.
pub(crate) const NOTIFY_QUIET: &str = "current_setting('plainjobs.notify', true)";

/// The paused queues (`store/postgres/paused.rs`), as `migrate` creates the function: nothing
/// paused. Replacing an existing one would resume every queue, so it is only created.
pub(crate) const PAUSED_FUNCTION: &str = "CREATE OR REPLACE FUNCTION plainjobs_paused_queues() RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$";

pub(crate) const NOTIFY_TRIGGER: [&str; 2] = [
    "DROP TRIGGER IF EXISTS plainjobs_jobrequest_notify ON plainjobs_jobrequest",
    "CREATE TRIGGER plainjobs_jobrequest_notify AFTER INSERT ON plainjobs_jobrequest FOR EACH STATEMENT EXECUTE FUNCTION plainjobs_notify_jobrequest()",
];

/// plain.postgres' migration history and the row that marks plain.jobs' one migration as
/// applied: without it, a Plain deploy after us would run `CREATE TABLE` again and fail.
pub(crate) const PLAIN_MIGRATION_RECORD: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS plainmigrations (
        id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        app text NOT NULL,
        applied timestamp with time zone DEFAULT statement_timestamp() NOT NULL,
        name text NOT NULL
    )",
    "INSERT INTO plainmigrations (app, name)
     SELECT 'plainjobs', '0001_initial'
     WHERE NOT EXISTS (SELECT 1 FROM plainmigrations WHERE app = 'plainjobs' AND name = '0001_initial')",
];

/// Where the schema version is recorded: a comment on our function (convergence reads no
/// comments, and no table of ours is left for `plain postgres schema` to call unknown).
pub(crate) fn version_comment(version: i64) -> String {
    format!("COMMENT ON FUNCTION plainjobs_notify_jobrequest() IS 'plainjobs schema {version}'")
}
