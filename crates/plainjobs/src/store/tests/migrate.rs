//! `Store::migrate` and `Store::check_schema`: on PostgreSQL, the catalog read and every
//! difference fixed; on SQLite, the migration runner.

use sqlx::postgres::PgPool;

use super::Bed;
use crate::store::sqlite::migrate::{apply, Migration};
use crate::store::sqlite::SqliteStore;
use crate::testing::{conformance, Backend, FreshDb, Raw};
use crate::Error;

/// Migrating a current schema changes nothing and says so; the check finds nothing to fix.
async fn migrating_again_changes_nothing(backend: Backend) {
    let bed = Bed::new(backend).await;
    let again = bed.store().migrate().await.unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    let report = bed.store().check_schema().await.unwrap();
    assert!(report.is_current(), "{:?}", report.problems);
    assert!(report.tables && report.claim_index);
    assert_eq!(report.version, Some(report.known_version));
    assert!(!report.is_newer());
}

/// A schema migrated by a newer plainjobs is refused, and nothing is changed.
async fn a_newer_schema_is_refused(backend: Backend) {
    let bed = Bed::new(backend).await;
    let newer = match backend {
        Backend::Postgres => {
            "COMMENT ON FUNCTION plainjobs_notify_jobrequest() IS 'plainjobs schema 99'"
        }
        Backend::Sqlite => {
            "INSERT INTO plainjobs_rs_migrations (version, name, applied_at) VALUES (99, 'from the future', 0)"
        }
    };
    bed.db.exec(newer).await;
    let refused = bed.store().migrate().await.unwrap_err();
    assert!(
        matches!(refused, Error::SchemaTooNew { found: 99, .. }),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("upgrade plainjobs"),
        "{refused}"
    );
    let report = bed.store().check_schema().await.unwrap();
    assert!(report.is_newer());
    assert_eq!(report.version, Some(99));
}

/// No tables: the check says so, and migrate makes them.
async fn the_check_sees_missing_tables_and_migrate_makes_them(backend: Backend) {
    let db = FreshDb::create(backend).await;
    let jobs = crate::Jobs::connect(&db.url).await.unwrap();
    let report = jobs.check_schema().await.unwrap();
    assert!(!report.tables && !report.claim_index, "{report:?}");
    assert_eq!(report.version, None);
    let made = jobs.migrate().await.unwrap();
    assert!(!made.changes.is_empty());
    assert!(jobs.check_schema().await.unwrap().is_current());
    db.remove().await;
}

const CREATE_ONE: Migration = Migration {
    version: 1,
    name: "one",
    // Not idempotent: it fails if it runs twice.
    statements: &["CREATE TABLE runner_one (x INTEGER)"],
};
const CREATE_TWO: Migration = Migration {
    version: 2,
    name: "two",
    statements: &["CREATE TABLE runner_two (x INTEGER)"],
};
const BROKEN_TWO: Migration = Migration {
    version: 2,
    name: "two",
    statements: &["CREATE TABLE runner_two (x INTEGER)", "NOT SQL AT ALL"],
};

/// The SQLite runner applies the pending steps in order, all in one transaction: a failing step
/// names itself and leaves nothing behind (not even the history table); applied steps are
/// skipped later and reported as changes only when they ran.
#[tokio::test]
async fn the_sqlite_runner_applies_pending_steps_all_or_nothing() {
    let db = FreshDb::create(Backend::Sqlite).await;
    let store = SqliteStore::open(&db.url, 2).await.unwrap();
    let raw = Raw::Sqlite(store.pool().clone());
    let failed = apply(&store, &[CREATE_ONE, BROKEN_TWO]).await.unwrap_err();
    assert!(
        matches!(
            failed,
            Error::Migration {
                version: 2,
                name: "two",
                ..
            }
        ),
        "{failed:?}"
    );
    for table in ["runner_one", "runner_two", "plainjobs_rs_migrations"] {
        let sql = format!("SELECT count(*) FROM {table}");
        assert!(
            raw.try_count(&sql).await.is_err(),
            "{table} was rolled back"
        );
    }
    let first = apply(&store, &[CREATE_ONE]).await.unwrap();
    assert_eq!(first.changes, ["applied migration 1 (one)"]);
    let second = apply(&store, &[CREATE_ONE, CREATE_TWO]).await.unwrap();
    assert_eq!(second.changes, ["applied migration 2 (two)"]);
    assert_eq!(second.version, 2);
    let history = raw
        .try_count("SELECT count(*) FROM plainjobs_rs_migrations")
        .await;
    assert_eq!(history.unwrap(), 2);
    db.remove().await;
}

/// PostgreSQL: a schema whose objects were taken away or changed (by a Plain deploy, by hand,
/// by an older plainjobs) is reported object by object, and migrate puts every one back.
#[tokio::test]
async fn postgres_migrate_fixes_every_difference_it_reports() {
    let bed = Bed::new(Backend::Postgres).await;
    for broken in [
        "ALTER TABLE plainjobs_jobrequest DROP CONSTRAINT plainjobs_jobrequest_claim_excl",
        "ALTER TABLE plainjobs_jobresult DROP CONSTRAINT plainjobs_jobresult_retryable_excl",
        "DROP INDEX plainjobs_jobprocess_worker_id_idx",
        "ALTER TABLE plainjobs_jobrequest ALTER COLUMN queue TYPE varchar(255)",
        "ALTER TABLE plainjobs_jobresult ALTER COLUMN created_at DROP DEFAULT",
        "ALTER TABLE plainjobs_jobrequest SET (autovacuum_vacuum_threshold = 5000)",
        "CREATE INDEX plainjobs_jobrequest_claim_idx ON plainjobs_jobrequest (queue, priority DESC, (COALESCE(start_at, created_at)), id)",
        "DELETE FROM plainmigrations",
        "DROP TRIGGER plainjobs_jobrequest_notify ON plainjobs_jobrequest",
    ] {
        bed.db.exec(broken).await;
    }
    let report = bed.store().check_schema().await.unwrap();
    assert!(!report.claim_index);
    let problems = report.problems.join("\n");
    for expected in [
        "constraint plainjobs_jobrequest_claim_excl is missing",
        "constraint plainjobs_jobresult_retryable_excl is missing",
        "index plainjobs_jobprocess_worker_id_idx is missing",
        "column plainjobs_jobrequest.queue: is character varying(255), expected text",
        "column plainjobs_jobresult.created_at: default none, expected statement_timestamp()",
        "plainjobs_jobrequest has storage parameters (autovacuum_vacuum_threshold=5000)",
        "index plainjobs_jobrequest_claim_idx (made by an earlier plainjobs) is left over",
        "plain.jobs' migration is not recorded",
        "the insert notification trigger is missing",
    ] {
        assert!(
            problems.contains(expected),
            "{expected:?} not in:\n{problems}"
        );
    }
    let fixed = bed.store().migrate().await.unwrap();
    assert_eq!(
        fixed.changes.len(),
        report.problems.len(),
        "{:?}",
        fixed.changes
    );
    let after = bed.store().check_schema().await.unwrap();
    assert!(after.is_current(), "{:?}", after.problems);
    assert!(after.claim_index);
}

/// PostgreSQL: the schema an older plainjobs made (migrations 1–5: varchar columns, no
/// defaults, plain indexes of our own, autovacuum settings, a history table) becomes plain.jobs'
/// schema with ours in EXCLUDE form, rows kept.
#[tokio::test]
async fn postgres_migrate_upgrades_the_schema_of_earlier_versions() {
    let db = FreshDb::create(Backend::Postgres).await;
    let pool = PgPool::connect(&db.url).await.unwrap();
    sqlx::raw_sql(OLD_SCHEMA).execute(&pool).await.unwrap();
    let jobs = crate::Jobs::from_pool(pool.clone());
    let before = jobs.check_schema().await.unwrap();
    assert_eq!(before.version, Some(5));
    assert!(!before.claim_index);
    let upgraded = jobs.migrate().await.unwrap();
    assert!(!upgraded.changes.is_empty());
    let after = jobs.check_schema().await.unwrap();
    assert!(after.is_current(), "{:?}", after.problems);
    assert_eq!(after.version, Some(after.known_version));
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM plainjobs_jobrequest")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept, 1, "the pending job is kept");
    let history: bool = sqlx::query_scalar("SELECT to_regclass('plainjobs_rs_migrations') IS NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(history, "the old history table is gone");
    pool.close().await;
    db.remove().await;
}

/// PostgreSQL: migrators that start together (several workers at once) take plain's schema
/// lock in turn; both succeed, and no change is made twice.
#[tokio::test]
async fn postgres_concurrent_migrations_serialize() {
    let db = FreshDb::create(Backend::Postgres).await;
    let (a, b) = (
        crate::Jobs::connect(&db.url).await.unwrap(),
        crate::Jobs::connect(&db.url).await.unwrap(),
    );
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let twice: Vec<&String> = ra
        .changes
        .iter()
        .filter(|c| rb.changes.contains(c))
        .collect();
    assert!(twice.is_empty(), "made twice: {twice:?}");
    assert!(!ra.changes.is_empty() || !rb.changes.is_empty());
    assert!(a.check_schema().await.unwrap().is_current());
    db.remove().await;
}

/// What plainjobs' migrations 1–5 made (abridged to what the upgrade touches), with one job.
const OLD_SCHEMA: &str = r#"
CREATE TABLE plainjobs_rs_migrations (version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
INSERT INTO plainjobs_rs_migrations (version, name) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e');
CREATE TABLE plainjobs_jobrequest (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, created_at timestamptz NOT NULL, uuid uuid NOT NULL,
    job_class varchar(255) NOT NULL, parameters jsonb NULL, priority smallint NOT NULL, source text NOT NULL,
    queue varchar(255) NOT NULL, retries smallint NOT NULL, retry_attempt smallint NOT NULL,
    concurrency_key varchar(255) NOT NULL, start_at timestamptz NULL, trace_id varchar(34) NULL, span_id varchar(18) NULL,
    CONSTRAINT plainjobs_jobrequest_unique_uuid UNIQUE (uuid));
CREATE TABLE plainjobs_jobprocess (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, uuid uuid NOT NULL, created_at timestamptz NOT NULL,
    started_at timestamptz NULL, job_request_uuid uuid NOT NULL, requested_at timestamptz NULL,
    job_class varchar(255) NOT NULL, parameters jsonb NULL, priority smallint NOT NULL, source text NOT NULL,
    queue varchar(255) NOT NULL, retries smallint NOT NULL, retry_attempt smallint NOT NULL,
    concurrency_key varchar(255) NOT NULL, trace_id varchar(34) NULL, span_id varchar(18) NULL, worker_id uuid NOT NULL,
    CONSTRAINT plainjobs_job_unique_uuid UNIQUE (uuid));
CREATE TABLE plainjobs_jobresult (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, uuid uuid NOT NULL, created_at timestamptz NOT NULL,
    job_process_uuid uuid NOT NULL, started_at timestamptz NULL, ended_at timestamptz NULL, error text NOT NULL,
    status varchar(20) NOT NULL, job_request_uuid uuid NOT NULL, requested_at timestamptz NULL,
    job_class varchar(255) NOT NULL, parameters jsonb NULL, priority smallint NOT NULL, source text NOT NULL,
    queue varchar(255) NOT NULL, retries smallint NOT NULL, retry_attempt smallint NOT NULL,
    concurrency_key varchar(255) NOT NULL, retry_job_request_uuid uuid NULL, trace_id varchar(34) NULL, span_id varchar(18) NULL,
    CONSTRAINT plainjobs_jobresult_unique_uuid UNIQUE (uuid),
    CONSTRAINT plainjobs_jobresult_unique_job_process_uuid UNIQUE (job_process_uuid));
CREATE TABLE plainjobs_workerheartbeat (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, worker_id uuid NOT NULL, hostname varchar(255) NOT NULL,
    pid integer NOT NULL, queues jsonb NOT NULL, started_at timestamptz NOT NULL, last_heartbeat_at timestamptz NOT NULL,
    CONSTRAINT plainjobs_workerheartbeat_unique_worker_id UNIQUE (worker_id));
CREATE INDEX plainjobs_jobrequest_claim_idx ON plainjobs_jobrequest (queue, priority DESC, (COALESCE(start_at, created_at)), id);
CREATE INDEX plainjobs_jobresult_retryable_idx ON plainjobs_jobresult (id) WHERE retry_job_request_uuid IS NULL AND retries > 0 AND retry_attempt < retries AND status IN ('ERRORED', 'LOST', 'CANCELLED');
CREATE INDEX plainjobs_jobrequest_class_key_idx ON plainjobs_jobrequest (job_class, concurrency_key) WHERE concurrency_key <> '';
CREATE INDEX plainjobs_jobresult_queue_idx ON plainjobs_jobresult (queue);
ALTER TABLE plainjobs_jobrequest SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);
CREATE OR REPLACE FUNCTION plainjobs_notify_jobrequest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('plainjobs_jobrequest', TG_TABLE_SCHEMA); RETURN NULL; END $$;
CREATE TRIGGER plainjobs_jobrequest_notify AFTER INSERT ON plainjobs_jobrequest FOR EACH STATEMENT EXECUTE FUNCTION plainjobs_notify_jobrequest();
INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key)
VALUES (now(), gen_random_uuid(), 'app.Old', '{"args": [], "kwargs": {}}', 0, '', 'default', 0, 0, '');
"#;

conformance!(
    migrating_again_changes_nothing,
    a_newer_schema_is_refused,
    the_check_sees_missing_tables_and_migrate_makes_them,
);
