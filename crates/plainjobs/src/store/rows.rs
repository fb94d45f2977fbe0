//! Rows decoded once for both backends.
//!
//! The backends differ in how a column holds a value, not in which columns make a row: SQLite
//! keeps times as integer microseconds since the Unix epoch, uuids and JSON as text, and small
//! integers as 64-bit ones. Each backend's row type says how to read each kind of column
//! ([`DecodeRow`]); which column fills which field is written here.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::model::{JobProcess, JobRequest, JobResult, JobStatus, WorkerHeartbeat};
use crate::{Error, Result};

/// The columns [`job_request`] reads, in table order.
pub(crate) const REQUEST_COLUMNS: &str = "id, created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at, trace_id, span_id";
/// The columns [`job_process`] reads, in table order.
pub(crate) const PROCESS_COLUMNS: &str = "id, uuid, created_at, started_at, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, trace_id, span_id, worker_id";
/// The columns [`job_result`] reads, in table order.
pub(crate) const RESULT_COLUMNS: &str = "id, uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, retry_job_request_uuid, trace_id, span_id";
/// The columns [`worker_heartbeat`] reads, in table order.
pub(crate) const HEARTBEAT_COLUMNS: &str =
    "id, worker_id, hostname, pid, queues, started_at, last_heartbeat_at";

/// How a backend's row holds each kind of value, by column name.
pub(crate) trait DecodeRow: sqlx::Row {
    fn int64(&self, column: &str) -> sqlx::Result<i64>;
    fn opt_int64(&self, column: &str) -> sqlx::Result<Option<i64>>;
    fn int32(&self, column: &str) -> sqlx::Result<i32>;
    fn int16(&self, column: &str) -> sqlx::Result<i16>;
    fn text(&self, column: &str) -> sqlx::Result<String>;
    fn opt_text(&self, column: &str) -> sqlx::Result<Option<String>>;
    fn time(&self, column: &str) -> sqlx::Result<DateTime<Utc>>;
    fn opt_time(&self, column: &str) -> sqlx::Result<Option<DateTime<Utc>>>;
    fn uuid(&self, column: &str) -> sqlx::Result<Uuid>;
    fn opt_uuid(&self, column: &str) -> sqlx::Result<Option<Uuid>>;
    fn json(&self, column: &str) -> sqlx::Result<Option<Value>>;
}

/// A column whose value cannot be what the field needs.
pub(crate) fn decode_error(column: &str, problem: impl Into<String>) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: problem.into().into(),
    }
}

/// Decodes every row with `decode`.
pub(crate) fn decode_all<R, T>(rows: &[R], decode: fn(&R) -> sqlx::Result<T>) -> Result<Vec<T>> {
    rows.iter()
        .map(|r| decode(r).map_err(Error::from))
        .collect()
}

/// A row of `plainjobs_jobrequest` ([`REQUEST_COLUMNS`]).
pub(crate) fn job_request<R: DecodeRow>(row: &R) -> sqlx::Result<JobRequest> {
    Ok(JobRequest {
        id: row.int64("id")?,
        created_at: row.time("created_at")?,
        uuid: row.uuid("uuid")?,
        job_class: row.text("job_class")?,
        parameters: row.json("parameters")?,
        priority: row.int16("priority")?,
        source: row.text("source")?,
        queue: row.text("queue")?,
        retries: row.int16("retries")?,
        retry_attempt: row.int16("retry_attempt")?,
        concurrency_key: row.text("concurrency_key")?,
        start_at: row.opt_time("start_at")?,
        trace_id: row.opt_text("trace_id")?,
        span_id: row.opt_text("span_id")?,
    })
}

/// A row of `plainjobs_jobprocess` ([`PROCESS_COLUMNS`]).
pub(crate) fn job_process<R: DecodeRow>(row: &R) -> sqlx::Result<JobProcess> {
    Ok(JobProcess {
        id: row.int64("id")?,
        uuid: row.uuid("uuid")?,
        created_at: row.time("created_at")?,
        started_at: row.opt_time("started_at")?,
        job_request_uuid: row.uuid("job_request_uuid")?,
        requested_at: row.opt_time("requested_at")?,
        job_class: row.text("job_class")?,
        parameters: row.json("parameters")?,
        priority: row.int16("priority")?,
        source: row.text("source")?,
        queue: row.text("queue")?,
        retries: row.int16("retries")?,
        retry_attempt: row.int16("retry_attempt")?,
        concurrency_key: row.text("concurrency_key")?,
        trace_id: row.opt_text("trace_id")?,
        span_id: row.opt_text("span_id")?,
        worker_id: row.uuid("worker_id")?,
    })
}

/// A row of `plainjobs_jobresult` ([`RESULT_COLUMNS`]).
pub(crate) fn job_result<R: DecodeRow>(row: &R) -> sqlx::Result<JobResult> {
    let status = row.text("status")?;
    let status = status
        .parse::<JobStatus>()
        .map_err(|e| decode_error("status", e.to_string()))?;
    Ok(JobResult {
        id: row.int64("id")?,
        uuid: row.uuid("uuid")?,
        created_at: row.time("created_at")?,
        job_process_uuid: row.uuid("job_process_uuid")?,
        started_at: row.opt_time("started_at")?,
        ended_at: row.opt_time("ended_at")?,
        error: row.text("error")?,
        status,
        job_request_uuid: row.uuid("job_request_uuid")?,
        requested_at: row.opt_time("requested_at")?,
        job_class: row.text("job_class")?,
        parameters: row.json("parameters")?,
        priority: row.int16("priority")?,
        source: row.text("source")?,
        queue: row.text("queue")?,
        retries: row.int16("retries")?,
        retry_attempt: row.int16("retry_attempt")?,
        concurrency_key: row.text("concurrency_key")?,
        retry_job_request_uuid: row.opt_uuid("retry_job_request_uuid")?,
        trace_id: row.opt_text("trace_id")?,
        span_id: row.opt_text("span_id")?,
    })
}

/// A row of `plainjobs_workerheartbeat` ([`HEARTBEAT_COLUMNS`]). The queues are a JSON array
/// of names; anything else a foreign writer left there is shown as text rather than refused.
pub(crate) fn worker_heartbeat<R: DecodeRow>(row: &R) -> sqlx::Result<WorkerHeartbeat> {
    let queues = match row.json("queues")? {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        Some(other) => vec![other.to_string()],
        None => Vec::new(),
    };
    Ok(WorkerHeartbeat {
        id: row.int64("id")?,
        worker_id: row.uuid("worker_id")?,
        hostname: row.text("hostname")?,
        pid: row.int32("pid")?,
        queues,
        started_at: row.time("started_at")?,
        last_heartbeat_at: row.time("last_heartbeat_at")?,
    })
}
