//! The statements for browsing the tables, the same on both backends (written once, like
//! `portable.rs`): pages of requests, processes and results by keyset, the links of a retry
//! chain, and the runs of a schedule.
//!
//! Each page's query carries only the conditions its filter sets (rather than `$1 IS NULL OR
//! …`), so that each combination gets a plan of its own and uses the index that fits it: the
//! primary key for the keyset, the uuid indexes for a uuid.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::listing::{cursor_id, in_list_order, Order, ProcessFilter, ProcessState, RequestFilter};
use super::rows::{
    decode_all, job_process, job_request, job_result, PROCESS_COLUMNS, REQUEST_COLUMNS,
    RESULT_COLUMNS,
};
use super::sql::{Arg, SqlBackend, SqlConn, Statement};
use super::ResultFilter;
use crate::model::{JobProcess, JobRequest, JobResult};
use crate::Result;

/// A `WHERE` clause built from the conditions a filter sets, with its arguments numbered in
/// order.
#[derive(Default)]
struct Conditions<'a> {
    sql: Vec<String>,
    args: Vec<Arg<'a>>,
}

impl<'a> Conditions<'a> {
    /// Adds a condition whose one placeholder is written `$?`.
    fn with(&mut self, condition: &str, arg: Arg<'a>) {
        self.args.push(arg);
        let n = self.args.len();
        self.sql.push(condition.replace("$?", &format!("${n}")));
    }

    /// Adds a condition without arguments.
    fn plain(&mut self, condition: &str) {
        self.sql.push(condition.to_string());
    }

    /// Adds the keyset condition of a page and returns its `ORDER BY`.
    fn keyset(&mut self, order: Order, cursor: super::Cursor) -> &'static str {
        let (condition, order_by) = order.keyset(cursor, self.args.len() + 1);
        if let (Some(condition), Some(id)) = (condition, cursor_id(cursor)) {
            self.args.push(Arg::Int(id));
            self.sql.push(condition);
        }
        order_by
    }

    /// `SELECT {columns} FROM {table} WHERE … ORDER BY {order} LIMIT {limit}`.
    fn select(self, columns: &str, table: &str, order_by: &str, limit: i64) -> Statement<'a> {
        let mut sql = format!("SELECT {columns} FROM {table}");
        if !self.sql.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&self.sql.join(" AND "));
        }
        let n = self.args.len() + 1;
        sql.push_str(&format!(" ORDER BY {order_by} LIMIT ${n}"));
        let statement = self
            .args
            .into_iter()
            .fold(Statement::new(sql), Statement::arg);
        statement.arg(Arg::Int(limit))
    }
}

/// Rows per page, plus the one that tells whether there are more.
fn fetch_limit(limit: i64) -> i64 {
    limit.max(1).saturating_add(1)
}

/// A page of pending requests, oldest first: up to `limit + 1` rows, in the list's order.
pub(crate) async fn requests_page<B: SqlBackend>(
    backend: &B,
    filter: &RequestFilter,
) -> Result<Vec<JobRequest>> {
    let mut c = Conditions::default();
    if let Some(queue) = &filter.queue {
        c.with("queue = $?", Arg::Text(Some(queue)));
    }
    if let Some(job_class) = &filter.job_class {
        c.with("job_class = $?", Arg::Text(Some(job_class)));
    }
    if let Some(key) = &filter.concurrency_key {
        c.with("concurrency_key = $?", Arg::Text(Some(key)));
        // The key indexes leave out rows without a key (see `key_condition`).
        if !key.is_empty() {
            c.plain("concurrency_key <> ''");
        }
    }
    let order_by = c.keyset(Order::Ascending, filter.cursor);
    let statement = c.select(
        REQUEST_COLUMNS,
        "plainjobs_jobrequest",
        order_by,
        fetch_limit(filter.limit),
    );
    let rows = backend.pooled().await?.rows(&statement).await?;
    Ok(in_list_order(
        decode_all(&rows, job_request)?,
        filter.cursor,
    ))
}

/// A page of claimed jobs, oldest first: up to `limit + 1` rows, in the list's order.
pub(crate) async fn processes_page<B: SqlBackend>(
    backend: &B,
    filter: &ProcessFilter,
) -> Result<Vec<JobProcess>> {
    let mut c = Conditions::default();
    match filter.state {
        Some(ProcessState::Waiting) => c.plain("started_at IS NULL"),
        Some(ProcessState::Running) => c.plain("started_at IS NOT NULL"),
        None => {}
    }
    if let Some(queue) = &filter.queue {
        c.with("queue = $?", Arg::Text(Some(queue)));
    }
    if let Some(worker_id) = filter.worker_id {
        c.with("worker_id = $?", Arg::Uuid(Some(worker_id)));
    }
    let order_by = c.keyset(Order::Ascending, filter.cursor);
    let statement = c.select(
        PROCESS_COLUMNS,
        "plainjobs_jobprocess",
        order_by,
        fetch_limit(filter.limit),
    );
    let rows = backend.pooled().await?.rows(&statement).await?;
    Ok(in_list_order(
        decode_all(&rows, job_process)?,
        filter.cursor,
    ))
}

/// Results, newest first, as `filter` says: up to `filter.limit` rows, in the list's order.
pub(crate) async fn results<B: SqlBackend>(
    backend: &B,
    filter: &ResultFilter,
) -> Result<Vec<JobResult>> {
    let mut c = Conditions::default();
    if let Some(status) = filter.status {
        c.with("status = $?", Arg::Text(Some(status.as_str())));
    }
    if filter.retried {
        c.plain("(retry_job_request_uuid IS NOT NULL OR retry_attempt > 0)");
    }
    if let Some(queue) = &filter.queue {
        c.with("queue = $?", Arg::Text(Some(queue)));
    }
    if let Some(job_class) = &filter.job_class {
        c.with("job_class = $?", Arg::Text(Some(job_class)));
    }
    if let Some(since) = filter.since {
        c.with("created_at >= $?", Arg::Time(Some(since)));
    }
    if let Some(until) = filter.until {
        c.with("created_at < $?", Arg::Time(Some(until)));
    }
    if let Some(ids) = &filter.ids {
        c.with("id >= $?", Arg::Int(ids.start));
        c.with("id < $?", Arg::Int(ids.end));
    }
    if let Some(uuid) = filter.uuid {
        // Three unique or indexed columns: one bitmap of each.
        c.with(
            "(uuid = $? OR job_process_uuid = $? OR job_request_uuid = $?)",
            Arg::Uuid(Some(uuid)),
        );
    }
    let order_by = c.keyset(Order::Descending, filter.cursor);
    let statement = c.select(
        RESULT_COLUMNS,
        "plainjobs_jobresult",
        order_by,
        filter.limit,
    );
    let rows = backend.pooled().await?.rows(&statement).await?;
    Ok(in_list_order(decode_all(&rows, job_result)?, filter.cursor))
}

/// The results of these requests, oldest first.
pub(crate) async fn results_of_requests<B: SqlBackend>(
    backend: &B,
    request_uuids: &[Uuid],
) -> Result<Vec<JobResult>> {
    if request_uuids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {RESULT_COLUMNS} FROM plainjobs_jobresult WHERE job_request_uuid = ANY($1) ORDER BY id"
    );
    let statement = Statement::new(sql).arg(Arg::Uuids(request_uuids));
    let rows = backend.pooled().await?.rows(&statement).await?;
    decode_all(&rows, job_result)
}

/// The result that was retried (or deferred) by the request `request_uuid`, written no later
/// than `made_by`: the request's own creation, which the result precedes or shares (a retry is
/// written with its failure, one transaction, one `now()`). Found by the partial index of
/// results by `retry_job_request_uuid` (one lookup, whether or not any result retried it).
pub(crate) async fn result_retried_by<B: SqlBackend>(
    backend: &B,
    request_uuid: Uuid,
    made_by: DateTime<Utc>,
) -> Result<Option<JobResult>> {
    let sql = format!(
        "SELECT {RESULT_COLUMNS} FROM plainjobs_jobresult
         WHERE retry_job_request_uuid = $1 AND created_at <= $2
         ORDER BY created_at DESC LIMIT 1"
    );
    let statement = Statement::new(sql)
        .arg(Arg::Uuid(Some(request_uuid)))
        .arg(Arg::Time(Some(made_by)));
    let row = backend.pooled().await?.row(&statement).await?;
    Ok(row.as_ref().map(job_result).transpose()?)
}

/// The newest runs of a schedule: results and pending requests of `job_class` whose
/// concurrency key starts with `key_prefix` (`"{key}:scheduled:"`), newest occurrence first.
/// The key index serves it (keys of one class, in order; the Unix seconds that end a scheduled
/// key have ten digits, so they sort as numbers).
#[cfg_attr(not(feature = "admin"), allow(dead_code))] // the dashboard's alone
pub(crate) async fn scheduled_runs<B: SqlBackend>(
    backend: &B,
    job_class: &str,
    key_prefix: &str,
    limit: i64,
) -> Result<(Vec<JobRequest>, Vec<JobResult>)> {
    let requests = scheduled(
        REQUEST_COLUMNS,
        "plainjobs_jobrequest",
        job_class,
        key_prefix,
        limit,
    );
    let results = scheduled(
        RESULT_COLUMNS,
        "plainjobs_jobresult",
        job_class,
        key_prefix,
        limit,
    );
    let mut conn = backend.pooled().await?;
    let requests = decode_all(&conn.rows(&requests).await?, job_request)?;
    let results = decode_all(&conn.rows(&results).await?, job_result)?;
    Ok((requests, results))
}

/// The query of [`scheduled_runs`] on one table.
#[cfg_attr(not(feature = "admin"), allow(dead_code))] // the dashboard's alone
fn scheduled<'a>(
    columns: &str,
    table: &str,
    job_class: &'a str,
    key_prefix: &'a str,
    limit: i64,
) -> Statement<'a> {
    Statement::new(format!(
        "SELECT {columns} FROM {table}
         WHERE job_class = $1 AND concurrency_key <> '' AND substr(concurrency_key, 1, length($2)) = $2
         ORDER BY concurrency_key DESC, id DESC LIMIT $3"
    ))
    .arg(Arg::Text(Some(job_class)))
    .arg(Arg::Text(Some(key_prefix)))
    .arg(Arg::Int(limit))
}

/// Makes these scheduled requests ready now (`start_at` NULL); returns how many changed.
pub(crate) async fn run_requests_now<B: SqlBackend>(backend: &B, uuids: &[Uuid]) -> Result<u64> {
    let statement = Statement::new(
        "UPDATE plainjobs_jobrequest SET start_at = NULL WHERE uuid = ANY($1) AND start_at IS NOT NULL",
    )
    .arg(Arg::Uuids(uuids));
    Ok(backend.pooled().await?.run(&statement).await?)
}

/// Deletes these results; returns how many.
pub(crate) async fn delete_results<B: SqlBackend>(backend: &B, uuids: &[Uuid]) -> Result<u64> {
    let statement = Statement::new("DELETE FROM plainjobs_jobresult WHERE uuid = ANY($1)")
        .arg(Arg::Uuids(uuids));
    Ok(backend.pooled().await?.run(&statement).await?)
}
