//! What the PostgreSQL server itself says about a phase: statements executed (from
//! `pg_stat_statements`), WAL written (the insert position), and which processes are the
//! cluster's (for CPU). Read on a dedicated connection whose own statements carry
//! [`PROBE`] and are left out of the counts.

use std::collections::HashMap;

use anyhow::Context;
use sqlx::{Connection, PgConnection};

/// Marks the benchmark's own queries, so the statement counts leave them out.
pub const PROBE: &str = "/* plainjobs-bench probe */";

pub async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {}", plainjobs::redact_url(url)))
}

/// One statement's totals (pg_stat_statements).
#[derive(Clone, Debug, Default)]
pub struct StatementTotals {
    pub query: String,
    pub calls: i64,
    pub exec_ms: f64,
    pub rows: i64,
}

/// Totals per statement (by queryid).
pub type Statements = HashMap<i64, StatementTotals>;

/// A row of pg_stat_statements: queryid, calls, total_exec_time, rows, query.
type StatementRow = (Option<i64>, i64, f64, i64, Option<String>);

pub struct ServerProbe {
    conn: PgConnection,
    /// This connection's backend, left out of the cluster's CPU.
    pub backend_pid: i32,
    /// The cluster's postmaster.
    pub postmaster: Option<i32>,
    statements: bool,
}

impl ServerProbe {
    pub async fn connect(url: &str) -> anyhow::Result<ServerProbe> {
        let mut conn = connect(url).await?;
        let backend_pid: i32 = sqlx::query_scalar(&format!("{PROBE} SELECT pg_backend_pid()"))
            .fetch_one(&mut conn)
            .await?;
        let statements = enable_statements(&mut conn).await?;
        Ok(ServerProbe {
            conn,
            backend_pid,
            postmaster: crate::cpu::parent(backend_pid),
            statements,
        })
    }

    /// Every statement run in this database so far, but the probes'.
    pub async fn statements(&mut self) -> anyhow::Result<Option<Statements>> {
        if !self.statements {
            return Ok(None);
        }
        let rows: Vec<StatementRow> = sqlx::query_as(&format!(
            "{PROBE} SELECT queryid, calls, total_exec_time, rows, left(query, 160)
             FROM public.pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND query NOT LIKE '%plainjobs-bench probe%'"
        ))
        .fetch_all(&mut self.conn)
        .await
        .context("reading pg_stat_statements")?;
        let mut out = Statements::new();
        for (id, calls, exec_ms, rows, query) in rows {
            // Entries of other users share a queryid now and then: add them up.
            let e = out.entry(id.unwrap_or(0)).or_default();
            e.calls += calls;
            e.exec_ms += exec_ms;
            e.rows += rows;
            if e.query.is_empty() {
                e.query = one_line(&query.unwrap_or_default());
            }
        }
        Ok(Some(out))
    }

    /// The server's WAL insert position, in bytes.
    pub async fn wal_position(&mut self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(&format!(
            "{PROBE} SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::int8"
        ))
        .fetch_one(&mut self.conn)
        .await?)
    }

    /// Flushes dirty pages now, so that a phase does not pay for the previous one's.
    pub async fn checkpoint(&mut self) -> anyhow::Result<()> {
        sqlx::query(&format!("{PROBE} CHECKPOINT"))
            .execute(&mut self.conn)
            .await
            .context("CHECKPOINT")?;
        Ok(())
    }

    /// Runs one statement of the benchmark's own (left out of the counts).
    pub async fn execute(&mut self, sql: &str) -> anyhow::Result<()> {
        sqlx::raw_sql(&format!("{PROBE} {sql}"))
            .execute(&mut self.conn)
            .await
            .with_context(|| format!("running {sql}"))?;
        Ok(())
    }

    /// The connection, for COPY.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

/// Creates the extension in this database when the server has the library loaded; true if
/// statements can be counted.
async fn enable_statements(conn: &mut PgConnection) -> anyhow::Result<bool> {
    let preload: String = sqlx::query_scalar(&format!(
        "{PROBE} SELECT current_setting('shared_preload_libraries')"
    ))
    .fetch_one(&mut *conn)
    .await?;
    if !preload.contains("pg_stat_statements") {
        return Ok(false);
    }
    sqlx::query(&format!(
        "{PROBE} CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public"
    ))
    .execute(&mut *conn)
    .await
    .context("creating pg_stat_statements")?;
    Ok(true)
}

fn one_line(q: &str) -> String {
    q.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What ran between two readings: (total calls, per statement), largest first.
pub fn statements_between(before: &Statements, after: &Statements) -> (i64, Vec<StatementTotals>) {
    let mut per: Vec<StatementTotals> = after
        .iter()
        .filter_map(|(id, a)| {
            let b = before.get(id).cloned().unwrap_or_default();
            let calls = a.calls - b.calls;
            (calls > 0).then(|| StatementTotals {
                query: a.query.clone(),
                calls,
                exec_ms: a.exec_ms - b.exec_ms,
                rows: a.rows - b.rows,
            })
        })
        .collect();
    per.sort_by_key(|s| std::cmp::Reverse(s.calls));
    (per.iter().map(|s| s.calls).sum(), per)
}
