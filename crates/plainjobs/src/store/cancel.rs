//! Cancelling jobs, written once for both backends: pending requests and claimed processes
//! become CANCELLED results in the transaction that deletes them, so no cancelled job is ever
//! without a result, and workers running one are told (PostgreSQL: `NOTIFY plainjobs_control`;
//! SQLite: their next look, within the poll interval).
//!
//! A cancelled result keeps plain.jobs' shape: it is the row plain.jobs' own `convert_to_result`
//! would write, except that `retries` is set to `retry_attempt`. plain.jobs' retry pass (and
//! ours) retries CANCELLED results with retries left, as it must after a shutdown; a job an
//! operator cancelled must stay cancelled.

use std::collections::HashMap;

use uuid::Uuid;

use super::rows::{decode_all, job_result, DecodeRow, RESULT_COLUMNS};
use super::sql::{Arg, SqlBackend, SqlConn, Statement};
use super::JobFilter;
use crate::model::JobResult;
use crate::Result;

/// Which jobs to cancel.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CancelTarget<'a> {
    /// The jobs with these uuids: their requests', or their processes' (by their own uuid or
    /// their request's).
    Uuids(&'a [Uuid]),
    /// Every pending and claimed job the filter matches.
    Matching(&'a JobFilter),
}

/// What a cancel moved into CANCELLED results.
#[derive(Debug, Default)]
pub(crate) struct CancelledRows {
    /// Results of requests that were waiting.
    pub pending: Vec<JobResult>,
    /// Results of processes that a worker held (running, or claimed ahead), with that worker.
    pub claimed: Vec<(JobResult, Uuid)>,
}

/// The columns of a result written from a row of `plainjobs_jobrequest` (as `source`), in the
/// order of [`INSERT_COLUMNS`].
const FROM_REQUEST: &str = "{new}, $2, {new}, NULL, $2, $3, 'CANCELLED', uuid, created_at, job_class, parameters, priority, source, queue, retry_attempt, retry_attempt, concurrency_key, NULL, trace_id, span_id";

/// As [`FROM_REQUEST`], from a row of `plainjobs_jobprocess`.
const FROM_PROCESS: &str = "{new}, $2, uuid, started_at, $2, $3, 'CANCELLED', job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retry_attempt, retry_attempt, concurrency_key, NULL, trace_id, span_id";

const INSERT_COLUMNS: &str = "uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, retry_job_request_uuid, trace_id, span_id";

/// Cancels the target's pending and claimed jobs, each with a CANCELLED result whose error is
/// `reason`, in one transaction.
pub(crate) async fn cancel<B: SqlBackend>(
    backend: &B,
    target: CancelTarget<'_>,
    reason: &str,
) -> Result<CancelledRows> {
    let mut tx = backend.begin_write().await?;
    let requests = lock(&mut tx, B::LOCK_ROWS, "plainjobs_jobrequest", target).await?;
    let pending = move_to_results::<B>(&mut tx, "plainjobs_jobrequest", &requests, reason).await?;
    let processes = lock(&mut tx, B::LOCK_ROWS, "plainjobs_jobprocess", target).await?;
    let claimed = move_to_results::<B>(&mut tx, "plainjobs_jobprocess", &processes, reason).await?;
    if !claimed.is_empty() {
        if let Some(notice) = B::CONTROL_NOTICE {
            tx.run(&Statement::new(notice)).await?;
        }
    }
    B::commit(tx).await?;
    let workers: HashMap<Uuid, Uuid> = processes
        .into_iter()
        .filter_map(|(process, worker)| Some((process, worker?)))
        .collect();
    let claimed = claimed
        .into_iter()
        .filter_map(|r| {
            let worker = workers.get(&r.job_process_uuid).copied()?;
            Some((r, worker))
        })
        .collect();
    Ok(CancelledRows { pending, claimed })
}

/// A locked row: its uuid, and for a process its worker.
type Locked = (Uuid, Option<Uuid>);

/// Locks the target's rows of `table` until the transaction ends; returns their uuids with
/// (for processes) their worker. A claim holding a request commits first, and the request is
/// then gone from this read: it is cancelled as the process it became.
async fn lock<C: SqlConn>(
    conn: &mut C,
    lock_rows: &str,
    table: &str,
    target: CancelTarget<'_>,
) -> Result<Vec<Locked>> {
    let is_process = table == "plainjobs_jobprocess";
    let worker = if is_process { "worker_id" } else { "NULL" };
    let statement = match target {
        CancelTarget::Uuids(uuids) => {
            let matches = if is_process {
                "uuid = ANY($1) OR job_request_uuid = ANY($1)"
            } else {
                "uuid = ANY($1)"
            };
            let sql = format!(
                "SELECT uuid, {worker} AS worker FROM {table} WHERE {matches} ORDER BY id{lock_rows}"
            );
            Statement::new(sql).arg(Arg::Uuids(uuids))
        }
        CancelTarget::Matching(filter) => {
            let enqueued_at = if is_process {
                "COALESCE(requested_at, created_at)"
            } else {
                "created_at"
            };
            let sql = format!(
                "SELECT uuid, {worker} AS worker FROM {table}
                 WHERE ($1 IS NULL OR queue = $1) AND ($2 IS NULL OR job_class = $2)
                   AND ($3 IS NULL OR {enqueued_at} >= $3) AND ($4 IS NULL OR {enqueued_at} < $4)
                 ORDER BY id{lock_rows}"
            );
            Statement::new(sql)
                .arg(Arg::Text(filter.queue.as_deref()))
                .arg(Arg::Text(filter.job_class.as_deref()))
                .arg(Arg::Time(filter.since))
                .arg(Arg::Time(filter.until))
        }
    };
    let rows = conn.rows(&statement).await?;
    decode_all(&rows, |row| {
        Ok((row.uuid("uuid")?, row.opt_uuid("worker")?))
    })
}

/// Writes the CANCELLED results of the locked rows of `table` and deletes the rows.
async fn move_to_results<B: SqlBackend>(
    conn: &mut B::WriteTx,
    table: &str,
    locked: &[Locked],
    reason: &str,
) -> Result<Vec<JobResult>> {
    if locked.is_empty() {
        return Ok(Vec::new());
    }
    let uuids: Vec<Uuid> = locked.iter().map(|(u, _)| *u).collect();
    let columns = if table == "plainjobs_jobprocess" {
        FROM_PROCESS
    } else {
        FROM_REQUEST
    };
    let insert = format!(
        "INSERT INTO plainjobs_jobresult ({INSERT_COLUMNS})
         SELECT {} FROM {table} WHERE uuid = ANY($1) ORDER BY id
         RETURNING {RESULT_COLUMNS}",
        columns.replace("{new}", B::NEW_UUID)
    );
    let insert = Statement::new(insert)
        .arg(Arg::Uuids(&uuids))
        .arg(Arg::Now)
        .arg(Arg::Text(Some(reason)));
    let results = decode_all(&conn.rows(&insert).await?, job_result)?;
    let delete =
        Statement::new(format!("DELETE FROM {table} WHERE uuid = ANY($1)")).arg(Arg::Uuids(&uuids));
    conn.run(&delete).await?;
    Ok(results)
}

/// Which of these processes still exist (a worker's look for jobs cancelled or rescued under
/// it).
pub(crate) async fn existing_processes<B: SqlBackend>(
    backend: &B,
    uuids: &[Uuid],
) -> Result<Vec<Uuid>> {
    if uuids.is_empty() {
        return Ok(Vec::new());
    }
    let statement = Statement::new("SELECT uuid FROM plainjobs_jobprocess WHERE uuid = ANY($1)")
        .arg(Arg::Uuids(uuids));
    let rows = backend.pooled().await?.rows(&statement).await?;
    decode_all(&rows, |row| row.uuid("uuid"))
}
