//! The storage boundary: every SQL statement lives behind these traits, one implementation per
//! backend. Nothing above this module knows which database it talks to.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::model::{JobProcess, JobRequest, JobResult, JobStatus, WorkerHeartbeat};
use crate::Result;

pub(crate) mod errors;
pub(crate) mod migrations;
pub(crate) mod postgres;
pub(crate) mod sqlite;

/// When a new request may start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Start {
    /// As soon as possible (`start_at` NULL).
    Now,
    /// `now() + delay` in the database's clock.
    After(Duration),
    /// At an absolute time.
    At(DateTime<Utc>),
}

/// A request to insert.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// Made here, once, before the first attempt to insert it (`model::new_uuid`): a second
    /// attempt after an ambiguous failure inserts the same uuid, so it can tell whether the
    /// first one committed.
    pub uuid: Uuid,
    pub job_class: String,
    pub parameters: Value,
    pub priority: i16,
    pub source: String,
    pub queue: String,
    pub retries: i16,
    pub retry_attempt: i16,
    pub concurrency_key: String,
    pub start: Start,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

impl NewRequest {
    /// The request as inserted, from what the database decided (`id`, `created_at`, `start_at`)
    /// and what was sent, which moves into it.
    pub(crate) fn into_request(
        self,
        id: i64,
        created_at: DateTime<Utc>,
        start_at: Option<DateTime<Utc>>,
    ) -> JobRequest {
        JobRequest {
            id,
            created_at,
            uuid: self.uuid,
            job_class: self.job_class,
            parameters: Some(self.parameters),
            priority: self.priority,
            source: self.source,
            queue: self.queue,
            retries: self.retries,
            retry_attempt: self.retry_attempt,
            concurrency_key: self.concurrency_key,
            start_at,
            trace_id: self.trace_id,
            span_id: self.span_id,
        }
    }

    /// As [`NewRequest::into_request`], keeping the request.
    pub(crate) fn to_request(
        &self,
        id: i64,
        created_at: DateTime<Utc>,
        start_at: Option<DateTime<Utc>>,
    ) -> JobRequest {
        self.clone().into_request(id, created_at, start_at)
    }
}

/// Where [`Store::locate_requests`] found a request's uuid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Located {
    /// Still pending: the request row's id, `created_at` and `start_at`.
    Pending {
        id: i64,
        created_at: DateTime<Utc>,
        start_at: Option<DateTime<Utc>>,
    },
    /// Claimed or finished: the request row is gone. A process or result carries its
    /// `job_request_uuid` and when it was made (`requested_at`, else the row's own
    /// `created_at`).
    Taken { requested_at: DateTime<Utc> },
}

/// SQL condition on a process: its job never began, as far as the database can tell. The claim
/// stamps the jobs it starts at once with its own `now()`, the very value it gives `created_at`,
/// before the worker has seen them; only a later `started_at` (written by the result writer for
/// a job claimed ahead) shows that the job began. Used only for processes that their worker
/// does not account for (neither held nor known to have begun): the claim's own stamp is then
/// no sign of a start, since the claim's reply may never have arrived.
pub(crate) const NOT_BEGUN: &str = "(started_at IS NULL OR started_at = created_at)";

/// The condition a count by concurrency key adds so that it can use the key indexes, which
/// leave out rows without a key (`WHERE concurrency_key <> ''`): implied by a non-empty key,
/// and spelled out because neither database proves it from a bound parameter.
pub(crate) fn key_condition(key: &str) -> &'static str {
    if key.is_empty() {
        ""
    } else {
        " AND concurrency_key <> ''"
    }
}

/// What the orphan rescue did with this worker's processes that it no longer accounts for.
#[derive(Debug, Default)]
pub(crate) struct Orphans {
    /// Never began: handed back to the request table, no retry spent.
    pub handed_back: u64,
    /// Began (by the database's record or the worker's): LOST results.
    pub lost: Vec<JobResult>,
}

/// How a worker's claims run (PostgreSQL; SQLite has one way).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ClaimHow {
    /// On the claim's own sessions, with its plan pinned (needs session connections: not
    /// behind a transaction-mode pooler, where session settings would reach other clients).
    pub pinned_session: bool,
    /// Commit without waiting for the WAL flush (`WorkerConfig::asynchronous_claims`).
    pub async_commit: bool,
}

/// A finished run to record in the batched (no follow-up request) path.
#[derive(Debug, Clone)]
pub(crate) struct Finish {
    pub process_uuid: Uuid,
    pub status: JobStatus,
    pub error: String,
}

/// A worker's registration.
#[derive(Debug, Clone)]
pub(crate) struct NewHeartbeat {
    pub worker_id: Uuid,
    pub hostname: String,
    pub pid: i32,
    pub queues: Vec<String>,
}

/// Filters for listing results.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResultFilter {
    pub status: Option<JobStatus>,
    pub queue: Option<String>,
    pub job_class: Option<String>,
    pub limit: i64,
}

/// Counts for `stats`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QueueStats {
    /// The queue.
    pub queue: String,
    /// Requests ready to run.
    pub ready: i64,
    /// Requests scheduled for later.
    pub scheduled: i64,
    /// Claimed, not started.
    pub waiting: i64,
    /// Running.
    pub running: i64,
    /// Results by status.
    pub results: std::collections::BTreeMap<String, i64>,
}

/// Folds `(queue, kind, count)` rows — kinds `ready`, `scheduled`, `waiting`, `running` and
/// `result:<STATUS>` — into per-queue stats, sorted by queue.
pub(crate) fn fold_stats(rows: impl IntoIterator<Item = (String, String, i64)>) -> Vec<QueueStats> {
    let mut by_queue: std::collections::BTreeMap<String, QueueStats> = Default::default();
    for (queue, kind, n) in rows {
        let entry = by_queue.entry(queue.clone()).or_insert_with(|| QueueStats {
            queue,
            ..Default::default()
        });
        match kind.as_str() {
            "ready" => entry.ready = n,
            "scheduled" => entry.scheduled = n,
            "waiting" => entry.waiting = n,
            "running" => entry.running = n,
            other => {
                entry
                    .results
                    .insert(other.trim_start_matches("result:").to_string(), n);
            }
        }
    }
    by_queue.into_values().collect()
}

/// Queries usable both in a transaction and on an autocommit connection: what enqueue and
/// `should_enqueue` need.
#[async_trait::async_trait]
pub trait Conn: Send {
    /// A transaction-scoped advisory lock (a no-op outside a transaction is the caller's bug).
    async fn advisory_lock(&mut self, id: i64) -> Result<()>;
    /// Requests of this class and key (only first attempts unless `include_retries`).
    async fn count_requests(
        &mut self,
        job_class: &str,
        key: &str,
        include_retries: bool,
    ) -> Result<i64>;
    /// Processes of this class and key, optionally excluding one.
    async fn count_processes(
        &mut self,
        job_class: &str,
        key: &str,
        include_retries: bool,
        exclude: Option<Uuid>,
    ) -> Result<i64>;
    /// Results of this class and key (used to enqueue each scheduled occurrence once).
    async fn count_results(&mut self, job_class: &str, key: &str) -> Result<i64>;
    /// Inserts requests in one statement, returning them in order.
    async fn insert_requests(&mut self, rows: Vec<NewRequest>) -> Result<Vec<JobRequest>>;
}

/// Tells when requests may have been inserted (a notification, another process's commit). The
/// store spawns nothing: the worker awaits [`Listener::wait`] in a task of its own.
#[async_trait::async_trait]
pub(crate) trait Listener: Send {
    /// Returns when requests may have been inserted since the last call (or anything may have
    /// been missed, as when the connection dropped). An error means the listener cannot tell
    /// for now; calling again retries.
    async fn wait(&mut self) -> Result<()>;
}

/// A transaction on the store.
#[async_trait::async_trait]
pub(crate) trait StoreTx: Conn {
    /// Deletes a process if it still exists and belongs to `worker_id`.
    async fn delete_process(
        &mut self,
        process_uuid: Uuid,
        worker_id: Uuid,
    ) -> Result<Option<JobProcess>>;
    /// Writes the result of a deleted process.
    async fn insert_result(
        &mut self,
        process: &JobProcess,
        status: JobStatus,
        error: &str,
        retry_request: Option<Uuid>,
    ) -> Result<JobResult>;
    /// Locks a result that is still retryable (skipping one another worker is retrying); with
    /// `force`, any failed result not yet retried, whatever its attempts.
    async fn lock_retryable(&mut self, result_uuid: Uuid, force: bool)
        -> Result<Option<JobResult>>;
    /// Links a result to the request that retries it.
    async fn link_retry(&mut self, result_uuid: Uuid, request_uuid: Uuid) -> Result<()>;
    /// Commits.
    async fn commit(self: Box<Self>) -> Result<()>;
}

/// A backend.
#[async_trait::async_trait]
pub(crate) trait Store: Send + Sync + 'static {
    /// Creates or upgrades the schema.
    async fn migrate(&self) -> Result<()>;
    /// The database's clock.
    async fn now(&self) -> Result<DateTime<Utc>>;
    /// Begins a transaction.
    async fn begin(&self) -> Result<Box<dyn StoreTx + '_>>;
    /// A pooled connection in autocommit mode.
    async fn autocommit(&self) -> Result<Box<dyn Conn + '_>>;

    /// Registers or refreshes a worker's heartbeat, re-creating the row if it vanished; true
    /// when the row was (re-)created.
    async fn heartbeat(&self, hb: &NewHeartbeat) -> Result<bool>;
    /// Deletes the heartbeat unless processes of this worker remain; true if deleted.
    async fn deregister(&self, worker_id: Uuid) -> Result<bool>;
    /// Inserts `req` straight as a process of `worker_id` with uuid `process_uuid`, begun at
    /// once (`started_at` = `created_at`, as a claim stamps the jobs it starts), with no request
    /// row: a new job handed to an idle worker of this process. `None` when the worker's
    /// heartbeat row is gone (as a claim, it then takes nothing). The request comes back with
    /// `id` 0 (it never had a row) and `created_at` the process's `requested_at`.
    async fn insert_started(
        &self,
        worker_id: Uuid,
        req: &NewRequest,
        process_uuid: Uuid,
    ) -> Result<Option<(JobRequest, JobProcess)>>;
    /// Claims up to `start + prefetch` ready requests of `queues` for `worker_id` (only if its
    /// heartbeat exists); the first `start` are marked started.
    async fn claim(
        &self,
        worker_id: Uuid,
        queues: &[String],
        start: i64,
        prefetch: i64,
        how: ClaimHow,
    ) -> Result<Vec<JobProcess>>;
    /// In one statement: marks `starts` started (claimed-ahead jobs that began; never ones in
    /// `items`) and moves the processes of `items` to results. Returns the process uuids whose
    /// results were written (a process already rescued is skipped).
    async fn finish_many(
        &self,
        worker_id: Uuid,
        starts: &[Uuid],
        items: &[Finish],
    ) -> Result<Vec<Uuid>>;
    /// Hands unstarted processes back to the request table: same uuid, same `created_at`,
    /// `start_at` NULL, no retry spent.
    async fn hand_back(&self, worker_id: Uuid, uuids: &[Uuid]) -> Result<u64>;
    /// Hands back (as [`Store::hand_back`]) every process of `worker_id` that is not in
    /// `accounted` (what the worker holds or knows began) and never began ([`NOT_BEGUN`]): the
    /// jobs of a claim that committed although its reply was lost.
    async fn hand_back_unaccounted(&self, worker_id: Uuid, accounted: &[Uuid]) -> Result<u64>;
    /// Reclaims the dead entries that claims and results leave in the request and process tables
    /// (skipped when another vacuum is running). No-op where the backend has no need.
    async fn vacuum_requests(&self) -> Result<()>;
    /// Time until the earliest scheduled request of `queues` becomes ready.
    async fn next_start_in(&self, queues: &[String]) -> Result<Option<Duration>>;
    /// Workers whose heartbeat is older than `timeout`.
    async fn stale_workers(&self, timeout: Duration) -> Result<Vec<Uuid>>;
    /// Claims a stale worker (deletes its heartbeat if still stale) and turns its processes into
    /// LOST results, in one transaction. None if another rescuer got there first.
    async fn rescue_worker(
        &self,
        worker_id: Uuid,
        timeout: Duration,
    ) -> Result<Option<Vec<JobResult>>>;
    /// This worker's processes older than `timeout` that it is not holding, in one
    /// transaction: those that never began ([`NOT_BEGUN`], and not in `began`) are handed back
    /// as [`Store::hand_back`] does; the others become LOST results.
    async fn rescue_orphans(
        &self,
        worker_id: Uuid,
        timeout: Duration,
        held: &[Uuid],
        began: &[Uuid],
    ) -> Result<Orphans>;
    /// Processes older than `timeout` whose worker has no heartbeat row at all (a claim that
    /// raced a rescue, a row written by a worker that died before registering), as LOST results.
    async fn rescue_unowned(&self, timeout: Duration) -> Result<Vec<JobResult>>;
    /// Results that qualify for a retry with an id above `after_id`, oldest first.
    async fn retryable_results(&self, after_id: i64, limit: i64) -> Result<Vec<JobResult>>;
    /// Bumps a result's retry_attempt so an unbuildable retry is not tried forever.
    async fn bump_retry_attempt(&self, result_uuid: Uuid) -> Result<()>;
    /// Deletes up to `batch` results created more than `age` ago; returns how many.
    async fn delete_results_before(&self, age: Duration, batch: i64) -> Result<u64>;
    /// A listener for inserted requests, which the worker drives; None when the backend cannot
    /// tell (the worker then relies on polling).
    async fn listener(&self) -> Result<Option<Box<dyn Listener>>>;

    // Inspection, for operators and tests.
    /// Pending requests, oldest first.
    async fn requests(&self, limit: i64) -> Result<Vec<JobRequest>>;
    /// Processes.
    async fn processes(&self, limit: i64) -> Result<Vec<JobProcess>>;
    /// One request by uuid.
    async fn request_by_uuid(&self, uuid: Uuid) -> Result<Option<JobRequest>>;
    /// Where each of these request uuids is now, in one statement: still pending, or claimed
    /// or finished (a process or a result with that `job_request_uuid`). Uuids found nowhere
    /// are left out.
    async fn locate_requests(&self, uuids: &[Uuid]) -> Result<Vec<(Uuid, Located)>>;
    /// One process by uuid.
    async fn process_by_uuid(&self, uuid: Uuid) -> Result<Option<JobProcess>>;
    /// The result with this uuid, else the newest result of the request with this uuid.
    async fn find_result(&self, uuid: Uuid) -> Result<Option<JobResult>>;
    /// One result by uuid.
    async fn result_by_uuid(&self, uuid: Uuid) -> Result<Option<JobResult>>;
    /// Results, newest first.
    async fn results(&self, filter: &ResultFilter) -> Result<Vec<JobResult>>;
    /// Worker heartbeats.
    async fn workers(&self) -> Result<Vec<WorkerHeartbeat>>;
    /// Per-queue counts.
    async fn stats(&self) -> Result<Vec<QueueStats>>;
    /// Deletes every pending and running job; returns (requests, processes) deleted.
    async fn purge(&self) -> Result<(u64, u64)>;
}
