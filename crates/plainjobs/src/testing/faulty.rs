//! A store that wraps a real one and injects faults, so that tests can see what the layers
//! above do when the database misbehaves, with no hooks in production code.
//!
//! A test builds a [`Jobs`] (and from it a worker) on a wrapped store:
//!
//! ```ignore
//! let (jobs, faults) = FaultyStore::wrap(&test_jobs(backend).await);
//! faults.lose_claim_replies.store(1, Ordering::Release);
//! let worker = Worker::new(jobs.clone()).register::<MyJob>().spawn();
//! ```

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{JobProcess, JobRequest, JobResult, WorkerHeartbeat};
use crate::store::{
    CancelTarget, CancelledRows, ClaimHow, Conn, CountedResults, Finish, Inspect, Listener,
    Located, Migrated, NewHeartbeat, NewRequest, Orphans, PausedQueue, ProcessFilter, QueueDepth,
    QueueStats, RequestFilter, ResultFilter, SchemaReport, Store, StoreTx,
};
use crate::{Error, Jobs, Result};

/// The faults a [`FaultyStore`] injects, shared with the test that sets them while the store
/// is in use.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    /// This many claims that take jobs commit, but their reply is lost on the way back: the
    /// claim returns a connection error ([`DbErrorKind::ConnectionLost`]) after the real claim
    /// committed. Counts down to zero.
    ///
    /// [`DbErrorKind::ConnectionLost`]: crate::error::DbErrorKind::ConnectionLost
    pub lose_claim_replies: Arc<AtomicU32>,
    /// While set, the database cannot be reached: every call fails before it gets there
    /// ([`DbErrorKind::Unavailable`]), and nothing is written.
    ///
    /// [`DbErrorKind::Unavailable`]: crate::error::DbErrorKind::Unavailable
    pub unavailable: Arc<AtomicBool>,
    /// How many calls reached the store (each one a statement or a few): what a test of the
    /// cost of a caller counts.
    pub calls: Arc<AtomicU64>,
    /// How many times the queue depths were read.
    pub depths_reads: Arc<AtomicU64>,
    /// Milliseconds each read of the queue depths takes on top of the real one (a big
    /// backlog's scan).
    pub depths_delay_ms: Arc<AtomicU64>,
    /// On autocommit connections: the number of rows of each `insert_requests`, in order.
    pub inserts: Arc<std::sync::Mutex<Vec<usize>>>,
    /// On autocommit connections: each `insert_requests` waits this many milliseconds before
    /// it is sent (so that concurrent callers pile up behind it).
    pub insert_pause_ms: Arc<AtomicU64>,
    /// On autocommit connections: this many `insert_requests` of more than one row (batches
    /// of coalesced enqueues) commit, but their reply is lost as when the server closes the
    /// connection ([`DbErrorKind::Terminated`]). Counts down.
    ///
    /// [`DbErrorKind::Terminated`]: crate::error::DbErrorKind::Terminated
    pub lose_insert_replies: Arc<AtomicU32>,
}

/// A store that delegates every call to a real one, injecting [`Faults`]. The transactions
/// and connections it hands out are the real store's.
pub(crate) struct FaultyStore {
    inner: Arc<dyn Store>,
    faults: Faults,
}

impl FaultyStore {
    /// A handle on the database of `jobs` whose store injects the returned faults (none until
    /// the test sets them). Workers made from it see the faults; `jobs` itself does not.
    pub(crate) fn wrap(jobs: &Jobs) -> (Jobs, Faults) {
        let faults = Faults::default();
        let wrapped = jobs.wrap_store(|inner| {
            Arc::new(FaultyStore {
                inner,
                faults: faults.clone(),
            })
        });
        (wrapped, faults)
    }

    /// Fails the call when the database is "unreachable".
    fn reach(&self) -> Result<()> {
        self.faults.calls.fetch_add(1, Ordering::AcqRel);
        if self.faults.unavailable.load(Ordering::Acquire) {
            return Err(Error::from(sqlx::Error::PoolTimedOut));
        }
        Ok(())
    }
}

/// An autocommit connection of a [`FaultyStore`]: counts, delays or loses the replies of its
/// inserts; the rest goes straight through.
struct FaultyConn<'a> {
    inner: Box<dyn Conn + 'a>,
    faults: Faults,
}

#[async_trait::async_trait]
impl Conn for FaultyConn<'_> {
    async fn advisory_lock(&mut self, id: i64) -> Result<()> {
        self.inner.advisory_lock(id).await
    }

    async fn count_requests(
        &mut self,
        job_class: &str,
        key: &str,
        include_retries: bool,
    ) -> Result<i64> {
        self.inner
            .count_requests(job_class, key, include_retries)
            .await
    }

    async fn count_processes(
        &mut self,
        job_class: &str,
        key: &str,
        include_retries: bool,
        exclude: Option<Uuid>,
    ) -> Result<i64> {
        self.inner
            .count_processes(job_class, key, include_retries, exclude)
            .await
    }

    async fn count_results(&mut self, job_class: &str, key: &str) -> Result<i64> {
        self.inner.count_results(job_class, key).await
    }

    async fn insert_requests(&mut self, rows: Vec<NewRequest>) -> Result<Vec<JobRequest>> {
        self.faults
            .inserts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rows.len());
        let pause = self.faults.insert_pause_ms.load(Ordering::Acquire);
        if pause > 0 {
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        let batch = rows.len() > 1;
        let made = self.inner.insert_requests(rows).await?;
        if batch && take_one(&self.faults.lose_insert_replies) {
            // The insert committed; the server closed the connection before its reply.
            return Err(Error::Database {
                kind: crate::error::DbErrorKind::Terminated,
                source: sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "test: the insert's reply was lost",
                )),
            });
        }
        Ok(made)
    }
}

/// Whether one more fault of a countdown is due (and counts it).
fn take_one(countdown: &AtomicU32) -> bool {
    countdown
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

#[async_trait::async_trait]
impl Inspect for FaultyStore {
    async fn requests(&self, limit: i64) -> Result<Vec<JobRequest>> {
        self.reach()?;
        self.inner.requests(limit).await
    }

    async fn processes(&self, limit: i64) -> Result<Vec<JobProcess>> {
        self.reach()?;
        self.inner.processes(limit).await
    }

    async fn request_by_uuid(&self, uuid: Uuid) -> Result<Option<JobRequest>> {
        self.reach()?;
        self.inner.request_by_uuid(uuid).await
    }

    async fn process_by_uuid(&self, uuid: Uuid) -> Result<Option<JobProcess>> {
        self.reach()?;
        self.inner.process_by_uuid(uuid).await
    }

    async fn find_result(&self, uuid: Uuid) -> Result<Option<JobResult>> {
        self.reach()?;
        self.inner.find_result(uuid).await
    }

    async fn results(&self, filter: &ResultFilter) -> Result<Vec<JobResult>> {
        self.reach()?;
        self.inner.results(filter).await
    }

    async fn holding_key(
        &self,
        job_class: &str,
        key: &str,
        limit: i64,
    ) -> Result<(Vec<JobRequest>, Vec<JobProcess>)> {
        self.reach()?;
        self.inner.holding_key(job_class, key, limit).await
    }

    async fn workers(&self) -> Result<Vec<WorkerHeartbeat>> {
        self.reach()?;
        self.inner.workers().await
    }

    async fn stats(&self) -> Result<Vec<QueueStats>> {
        self.reach()?;
        self.inner.stats().await
    }

    async fn requests_page(&self, filter: &RequestFilter) -> Result<Vec<JobRequest>> {
        self.reach()?;
        self.inner.requests_page(filter).await
    }

    async fn processes_page(&self, filter: &ProcessFilter) -> Result<Vec<JobProcess>> {
        self.reach()?;
        self.inner.processes_page(filter).await
    }

    async fn results_of_requests(&self, request_uuids: &[Uuid]) -> Result<Vec<JobResult>> {
        self.reach()?;
        self.inner.results_of_requests(request_uuids).await
    }

    async fn result_retried_by(
        &self,
        request_uuid: Uuid,
        made_by: DateTime<Utc>,
    ) -> Result<Option<JobResult>> {
        self.reach()?;
        self.inner.result_retried_by(request_uuid, made_by).await
    }

    async fn scheduled_runs(
        &self,
        job_class: &str,
        key_prefix: &str,
        limit: i64,
    ) -> Result<(Vec<JobRequest>, Vec<JobResult>)> {
        self.reach()?;
        self.inner
            .scheduled_runs(job_class, key_prefix, limit)
            .await
    }

    async fn queue_depths(&self) -> Result<Vec<QueueDepth>> {
        self.reach()?;
        self.faults.depths_reads.fetch_add(1, Ordering::AcqRel);
        let delay = self.faults.depths_delay_ms.load(Ordering::Acquire);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        self.inner.queue_depths().await
    }

    async fn results_start(&self, age: Duration) -> Result<i64> {
        self.reach()?;
        self.inner.results_start(age).await
    }

    async fn count_results_after(
        &self,
        after_id: i64,
        span: i64,
        settle: Duration,
    ) -> Result<CountedResults> {
        self.reach()?;
        self.inner.count_results_after(after_id, span, settle).await
    }
}

#[async_trait::async_trait]
impl Store for FaultyStore {
    async fn migrate(&self) -> Result<Migrated> {
        self.reach()?;
        self.inner.migrate().await
    }

    async fn check_schema(&self) -> Result<SchemaReport> {
        self.reach()?;
        self.inner.check_schema().await
    }

    async fn now(&self) -> Result<DateTime<Utc>> {
        self.reach()?;
        self.inner.now().await
    }

    async fn begin(&self) -> Result<Box<dyn StoreTx + '_>> {
        self.reach()?;
        self.inner.begin().await
    }

    async fn autocommit(&self) -> Result<Box<dyn Conn + '_>> {
        self.reach()?;
        let conn = self.inner.autocommit().await?;
        Ok(Box::new(FaultyConn {
            inner: conn,
            faults: self.faults.clone(),
        }))
    }

    async fn heartbeat(&self, hb: &NewHeartbeat) -> Result<bool> {
        self.reach()?;
        self.inner.heartbeat(hb).await
    }

    async fn deregister(&self, worker_id: Uuid) -> Result<bool> {
        self.reach()?;
        self.inner.deregister(worker_id).await
    }

    async fn insert_started(
        &self,
        worker_id: Uuid,
        req: &NewRequest,
        process_uuid: Uuid,
    ) -> Result<Option<(JobRequest, JobProcess)>> {
        self.reach()?;
        self.inner
            .insert_started(worker_id, req, process_uuid)
            .await
    }

    async fn claim(
        &self,
        worker_id: Uuid,
        queues: &[String],
        start: i64,
        prefetch: i64,
        how: ClaimHow,
    ) -> Result<Vec<JobProcess>> {
        self.reach()?;
        let claimed = self
            .inner
            .claim(worker_id, queues, start, prefetch, how)
            .await?;
        if !claimed.is_empty() && take_one(&self.faults.lose_claim_replies) {
            // The claim committed; its reply is lost on the way back.
            return Err(Error::from(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "test: the claim's reply was lost",
            ))));
        }
        Ok(claimed)
    }

    async fn finish_many(
        &self,
        worker_id: Uuid,
        starts: &[Uuid],
        items: &[Finish],
        pinned_session: bool,
    ) -> Result<Vec<Uuid>> {
        self.reach()?;
        self.inner
            .finish_many(worker_id, starts, items, pinned_session)
            .await
    }

    async fn hand_back(&self, worker_id: Uuid, uuids: &[Uuid]) -> Result<u64> {
        self.reach()?;
        self.inner.hand_back(worker_id, uuids).await
    }

    async fn hand_back_unaccounted(&self, worker_id: Uuid, accounted: &[Uuid]) -> Result<u64> {
        self.reach()?;
        self.inner.hand_back_unaccounted(worker_id, accounted).await
    }

    async fn vacuum_requests(&self) -> Result<()> {
        self.reach()?;
        self.inner.vacuum_requests().await
    }

    async fn next_start_in(&self, queues: &[String]) -> Result<Option<Duration>> {
        self.reach()?;
        self.inner.next_start_in(queues).await
    }

    async fn stale_workers(&self, timeout: Duration) -> Result<Vec<Uuid>> {
        self.reach()?;
        self.inner.stale_workers(timeout).await
    }

    async fn rescue_worker(
        &self,
        worker_id: Uuid,
        timeout: Duration,
    ) -> Result<Option<Vec<JobResult>>> {
        self.reach()?;
        self.inner.rescue_worker(worker_id, timeout).await
    }

    async fn rescue_orphans(
        &self,
        worker_id: Uuid,
        timeout: Duration,
        held: &[Uuid],
        began: &[Uuid],
    ) -> Result<Orphans> {
        self.reach()?;
        self.inner
            .rescue_orphans(worker_id, timeout, held, began)
            .await
    }

    async fn rescue_unowned(&self, timeout: Duration) -> Result<Vec<JobResult>> {
        self.reach()?;
        self.inner.rescue_unowned(timeout).await
    }

    async fn retryable_results(
        &self,
        queues: &[String],
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<JobResult>> {
        self.reach()?;
        self.inner.retryable_results(queues, after_id, limit).await
    }

    async fn bump_retry_attempt(&self, result_uuid: Uuid) -> Result<()> {
        self.reach()?;
        self.inner.bump_retry_attempt(result_uuid).await
    }

    async fn delete_results_before(&self, age: Duration, batch: i64) -> Result<u64> {
        self.reach()?;
        self.inner.delete_results_before(age, batch).await
    }

    async fn listener(&self) -> Result<Option<Box<dyn Listener>>> {
        self.reach()?;
        self.inner.listener().await
    }

    async fn result_by_uuid(&self, uuid: Uuid) -> Result<Option<JobResult>> {
        self.reach()?;
        self.inner.result_by_uuid(uuid).await
    }

    async fn locate_requests(&self, uuids: &[Uuid]) -> Result<Vec<(Uuid, Located)>> {
        self.reach()?;
        self.inner.locate_requests(uuids).await
    }

    async fn cancel(&self, target: CancelTarget<'_>, reason: &str) -> Result<CancelledRows> {
        self.reach()?;
        self.inner.cancel(target, reason).await
    }

    async fn existing_processes(&self, uuids: &[Uuid]) -> Result<Vec<Uuid>> {
        self.reach()?;
        self.inner.existing_processes(uuids).await
    }

    async fn pause_queue(&self, queue: &str, by: &str) -> Result<bool> {
        self.reach()?;
        self.inner.pause_queue(queue, by).await
    }

    async fn resume_queue(&self, queue: &str) -> Result<bool> {
        self.reach()?;
        self.inner.resume_queue(queue).await
    }

    async fn paused_queues(&self) -> Result<Vec<PausedQueue>> {
        self.reach()?;
        self.inner.paused_queues().await
    }

    async fn run_requests_now(&self, uuids: &[Uuid]) -> Result<u64> {
        self.reach()?;
        self.inner.run_requests_now(uuids).await
    }

    async fn delete_results(&self, uuids: &[Uuid]) -> Result<u64> {
        self.reach()?;
        self.inner.delete_results(uuids).await
    }
}
