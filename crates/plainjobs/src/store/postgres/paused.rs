//! Paused queues on PostgreSQL, kept as the value of a function,
//! `plainjobs_paused_queues()`, which returns them as a JSON object (queue → when and by whom).
//!
//! Not a table: plain.postgres calls every table its models do not declare unknown, warns
//! about it at each `plain preflight`, and `plain postgres drop-unknown-tables` would drop it
//! (resuming every queue without a word). Functions are outside what it looks at. Pausing
//! replaces the function under a lock of its own, then notifies the workers of the schema.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::listen::CONTROL_NOTICE;
use super::{PgExec, PgStore};
use crate::store::PausedQueue;
use crate::Result;

/// Serializes pauses and resumes (each replaces the function whole).
const PAUSE_LOCK: i64 = 0x706c_6a6f_6273_7061;

/// Pauses `queue`; false when it already was.
pub(super) async fn pause(store: &PgStore, queue: &str, by: &str) -> Result<bool> {
    let mut tx = store.tx().await?;
    let mut paused = locked_read(&mut tx.exec()).await?;
    if paused.contains_key(queue) {
        return Ok(false);
    }
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut tx.exec())
        .await?;
    let entry = serde_json::json!({"paused_at": now.to_rfc3339(), "paused_by": by});
    paused.insert(queue.to_string(), entry);
    write(&mut tx.exec(), &paused).await?;
    tx.commit().await?;
    Ok(true)
}

/// Resumes `queue`; false when it was not paused.
pub(super) async fn resume(store: &PgStore, queue: &str) -> Result<bool> {
    let mut tx = store.tx().await?;
    let mut paused = locked_read(&mut tx.exec()).await?;
    if paused.remove(queue).is_none() {
        return Ok(false);
    }
    write(&mut tx.exec(), &paused).await?;
    tx.commit().await?;
    Ok(true)
}

/// Every paused queue, by name.
pub(super) async fn paused_queues(store: &PgStore) -> Result<Vec<PausedQueue>> {
    let value = read(&mut store.conn().await?.exec()).await?;
    Ok(decode(&value))
}

async fn locked_read(conn: &mut PgExec<'_>) -> Result<Map<String, Value>> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PAUSE_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(read(conn).await?.into_iter().collect())
}

async fn read(conn: &mut PgExec<'_>) -> Result<Map<String, Value>> {
    let value: Value = sqlx::query_scalar("SELECT plainjobs_paused_queues()")
        .fetch_one(&mut *conn)
        .await?;
    Ok(match value {
        Value::Object(map) => map,
        _ => Map::new(),
    })
}

/// Replaces the function with one returning `paused`, and tells the workers. The definition is
/// quoted by the server (`format('%L')`), so no queue name can break out of it.
async fn write(conn: &mut PgExec<'_>, paused: &Map<String, Value>) -> Result<()> {
    let json = Value::Object(paused.clone()).to_string();
    let ddl: String = sqlx::query_scalar(
        "SELECT format('CREATE OR REPLACE FUNCTION plainjobs_paused_queues() RETURNS jsonb LANGUAGE sql AS %L',
                       format('SELECT %L::jsonb', $1::text))",
    )
    .bind(json)
    .fetch_one(&mut *conn)
    .await?;
    // The simple query protocol: a definition is not worth a prepared statement.
    sqlx::Executor::execute(&mut *conn, ddl.as_str()).await?;
    sqlx::Executor::execute(&mut *conn, CONTROL_NOTICE).await?;
    Ok(())
}

/// The paused queues in `map`, sorted by name; entries that are not as written are shown with
/// what can be read of them.
fn decode(map: &Map<String, Value>) -> Vec<PausedQueue> {
    let mut out: Vec<PausedQueue> = map
        .iter()
        .map(|(queue, entry)| PausedQueue {
            queue: queue.clone(),
            paused_at: entry
                .get("paused_at")
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc)),
            paused_by: entry
                .get("paused_by")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
        .collect();
    out.sort_by(|a, b| a.queue.cmp(&b.queue));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_tolerates_entries_written_by_hand() {
        let map: Map<String, Value> = serde_json::from_str(
            r#"{"b": {"paused_at": "2026-11-30T03:00:00+00:00", "paused_by": "ops"}, "a": 1}"#,
        )
        .expect("json");
        let paused = decode(&map);
        assert_eq!(paused.len(), 2);
        assert_eq!(paused[0].queue, "a");
        assert_eq!(paused[0].paused_at, None);
        assert_eq!(paused[1].paused_by, "ops");
        assert!(paused[1].paused_at.is_some());
    }
}
