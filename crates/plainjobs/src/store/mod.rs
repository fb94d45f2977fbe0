//! The storage boundary: every SQL statement lives behind these traits, one implementation per
//! backend. Nothing above this module knows which database it talks to: errors come out as
//! [`DbErrorKind`](crate::error::DbErrorKind)s (`errors.rs` and each backend's `errors.rs`),
//! and the store spawns no tasks (the worker drives its [`Listener`]).
//!
//! - `mod.rs`: the traits — [`Conn`], [`StoreTx`], [`Store`], [`Inspect`] (what operators
//!   read), [`Listener`]; `types.rs`: the plain data that crosses the boundary.
//! - `postgres/`, `sqlite/`: one directory per backend, a file per concern (the claim, inserts,
//!   the result writer, hand-back, rescues, wake-ups, migrations, errors). The claim, inserts,
//!   finishes and rescues are written per backend: that is where the databases differ.
//! - What is the same on both is written once: rows decoded through [`rows::DecodeRow`],
//!   statements in PostgreSQL's notation rendered for SQLite by a small codec (`sql.rs`),
//!   the reads and plain writes that share their SQL (`portable.rs`), and the migration runner
//!   (`migrate.rs`).
//! - `tests/`: the conformance suite, each method tested directly on both backends.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{JobProcess, JobRequest, JobResult, JobStatus, WorkerHeartbeat};
use crate::Result;

mod browse;
mod cancel;
mod counts;
pub(crate) mod errors;
mod listing;
mod local_wake;
mod overview;
mod portable;
pub(crate) mod postgres;
mod rows;
mod sql;
pub(crate) mod sqlite;
#[cfg(test)]
mod tests;
mod types;

pub(crate) use cancel::{CancelTarget, CancelledRows};
pub(crate) use listing::paginate;
pub use listing::{Cursor, Page, ProcessFilter, ProcessState, RequestFilter};
pub use overview::QueueDepth;
#[cfg_attr(not(feature = "admin"), allow(unused_imports))] // the dashboard's alone
pub(crate) use overview::{CountedResults, MinuteCount};
pub use postgres::{Pooler, UnknownPooler};
pub(crate) use types::{
    fold_stats, key_condition, ClaimHow, Finish, Located, NewHeartbeat, NewRequest, Orphans, Start,
    NOT_BEGUN,
};
pub use types::{JobFilter, Migrated, PausedQueue, Purged, QueueStats, ResultFilter, SchemaReport};

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

/// Tells when requests may have been inserted (a notification, another process's commit), and
/// when an operator cancelled jobs or paused a queue. The store spawns nothing: the worker
/// awaits [`Listener::wait`] in a task of its own.
#[async_trait::async_trait]
pub(crate) trait Listener: Send {
    /// Returns what may have happened since the last call. An error means the listener cannot
    /// tell for now; calling again retries.
    async fn wait(&mut self) -> Result<Heard>;
}

/// What a [`Listener`] heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heard {
    /// Requests may have been inserted.
    Requests,
    /// Jobs were cancelled or a queue paused or resumed.
    Control,
    /// Anything may have been missed (the connection dropped).
    Anything,
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
pub(crate) trait Store: Inspect + 'static {
    /// Creates or upgrades the schema.
    async fn migrate(&self) -> Result<Migrated>;
    /// What differs from the expected schema, changing nothing.
    async fn check_schema(&self) -> Result<SchemaReport>;
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
    /// results were written (a process already rescued is skipped). `pinned_session`: as
    /// [`ClaimHow::pinned_session`], for the worker's result writer.
    async fn finish_many(
        &self,
        worker_id: Uuid,
        starts: &[Uuid],
        items: &[Finish],
        pinned_session: bool,
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
    async fn retryable_results(
        &self,
        queues: &[String],
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<JobResult>>;
    /// Bumps a result's retry_attempt so an unbuildable retry is not tried forever.
    async fn bump_retry_attempt(&self, result_uuid: Uuid) -> Result<()>;
    /// Deletes up to `batch` results created more than `age` ago; returns how many.
    async fn delete_results_before(&self, age: Duration, batch: i64) -> Result<u64>;
    /// A listener for inserted requests, which the worker drives; None when the backend cannot
    /// tell (the worker then relies on polling).
    async fn listener(&self) -> Result<Option<Box<dyn Listener>>>;

    /// The result with this uuid.
    async fn result_by_uuid(&self, uuid: Uuid) -> Result<Option<JobResult>>;
    /// Where each of these request uuids is now, in one statement: still pending, or claimed
    /// or finished (a process or a result with that `job_request_uuid`). Uuids found nowhere
    /// are left out.
    async fn locate_requests(&self, uuids: &[Uuid]) -> Result<Vec<(Uuid, Located)>>;
    /// Moves the target's pending and claimed jobs into CANCELLED results whose error is
    /// `reason`, in one transaction, and tells the workers that held any.
    async fn cancel(&self, target: CancelTarget<'_>, reason: &str) -> Result<CancelledRows>;
    /// Which of these processes still exist.
    async fn existing_processes(&self, uuids: &[Uuid]) -> Result<Vec<Uuid>>;
    /// Pauses `queue` for every worker; false when it already was.
    async fn pause_queue(&self, queue: &str, by: &str) -> Result<bool>;
    /// Resumes `queue`; false when it was not paused.
    async fn resume_queue(&self, queue: &str) -> Result<bool>;
    /// The paused queues, by name.
    async fn paused_queues(&self) -> Result<Vec<PausedQueue>>;
    /// Makes these scheduled requests ready now (`start_at` NULL); returns how many changed.
    async fn run_requests_now(&self, uuids: &[Uuid]) -> Result<u64>;
    /// Deletes these results; returns how many.
    async fn delete_results(&self, uuids: &[Uuid]) -> Result<u64>;
}

/// What operators (and tests) read: the tables as they are, changing nothing.
#[async_trait::async_trait]
pub(crate) trait Inspect: Send + Sync {
    /// Pending requests, in claim order.
    async fn requests(&self, limit: i64) -> Result<Vec<JobRequest>>;
    /// Processes, oldest first.
    async fn processes(&self, limit: i64) -> Result<Vec<JobProcess>>;
    /// One request by uuid.
    async fn request_by_uuid(&self, uuid: Uuid) -> Result<Option<JobRequest>>;
    /// One process by its own uuid or its request's.
    async fn process_by_uuid(&self, uuid: Uuid) -> Result<Option<JobProcess>>;
    /// The result with this uuid, else the result of the process with this uuid, else the
    /// newest result of the request with this uuid.
    async fn find_result(&self, uuid: Uuid) -> Result<Option<JobResult>>;
    /// Pending requests and processes of this job name holding this concurrency key (what
    /// refuses a duplicate), oldest first, at most `limit` of each.
    async fn holding_key(
        &self,
        job_class: &str,
        key: &str,
        limit: i64,
    ) -> Result<(Vec<JobRequest>, Vec<JobProcess>)>;
    /// Results, newest first, a page at `filter.cursor` of up to `filter.limit` rows.
    async fn results(&self, filter: &ResultFilter) -> Result<Vec<JobResult>>;
    /// Up to `limit + 1` pending requests from `filter.cursor`, oldest first.
    async fn requests_page(&self, filter: &RequestFilter) -> Result<Vec<JobRequest>>;
    /// Up to `limit + 1` processes from `filter.cursor`, oldest first.
    async fn processes_page(&self, filter: &ProcessFilter) -> Result<Vec<JobProcess>>;
    /// The results of these requests, oldest first.
    async fn results_of_requests(&self, request_uuids: &[Uuid]) -> Result<Vec<JobResult>>;
    /// The result retried or deferred by the request `request_uuid`, written no later than
    /// `made_by` (the request's creation).
    async fn result_retried_by(
        &self,
        request_uuid: Uuid,
        made_by: DateTime<Utc>,
    ) -> Result<Option<JobResult>>;
    /// Pending requests and results of `job_class` whose key starts with `key_prefix`, newest
    /// key first, up to `limit` of each.
    #[cfg_attr(not(feature = "admin"), allow(dead_code))] // the dashboard's alone
    async fn scheduled_runs(
        &self,
        job_class: &str,
        key_prefix: &str,
        limit: i64,
    ) -> Result<(Vec<JobRequest>, Vec<JobResult>)>;
    /// Pending and claimed jobs per queue.
    async fn queue_depths(&self) -> Result<Vec<QueueDepth>>;
    /// The id after which the results written `age` ago or since begin (the newest id, or 0,
    /// when there are none).
    #[cfg_attr(not(feature = "admin"), allow(dead_code))] // the dashboard's alone
    async fn results_start(&self, age: Duration) -> Result<i64>;
    /// Results with ids in `(after_id, after_id + span]` written over `settle` ago, counted per
    /// minute, queue and status (see `counts.rs`).
    #[cfg_attr(not(feature = "admin"), allow(dead_code))] // the dashboard's alone
    async fn count_results_after(
        &self,
        after_id: i64,
        span: i64,
        settle: Duration,
    ) -> Result<CountedResults>;
    /// Worker heartbeats, oldest registration first.
    async fn workers(&self) -> Result<Vec<WorkerHeartbeat>>;
    /// Per-queue counts.
    async fn stats(&self) -> Result<Vec<QueueStats>>;
}
