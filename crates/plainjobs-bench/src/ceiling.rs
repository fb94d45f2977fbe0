//! The SQL ceilings: the lifecycle's statements in batches with no application at all.
//! PostgreSQL: the shared harness's `ceiling/run.sh` (pgbench), on a database of its own on the
//! same cluster. SQLite: `ceiling-sqlite/run.sh` (the sqlite3 shell) on a file the library
//! migrated, so the tables and indexes are the backend's own.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::external::{last_json, run};
use crate::target::Target;

/// The shared PostgreSQL ceiling, `n` jobs in batches of 100, one client.
pub async fn postgres(target: &Target, script_dir: &Path, n: u64) -> anyhow::Result<Value> {
    let db = target.sibling_database("ceiling").await?;
    let script = script_dir.join("run.sh");
    let out = run(
        &script.display().to_string(),
        &[],
        None,
        &[
            ("DATABASE_URL", db.libpq_url()),
            ("N", n.to_string()),
            ("B", "100".into()),
            ("C", "1".into()),
        ],
        Duration::from_secs(900),
    )
    .await?;
    last_json(&out)
}

/// The SQLite ceiling on a fresh file the library migrated.
pub async fn sqlite(target: &Target, script: &Path, n: u64) -> anyhow::Result<Value> {
    target.reset().await?;
    let file = target.sqlite_path().unwrap_or_default().to_string();
    let out = run(
        &script.display().to_string(),
        &[file],
        None,
        &[("N", n.to_string()), ("B", "100".into())],
        Duration::from_secs(900),
    )
    .await?;
    last_json(&out)
}
