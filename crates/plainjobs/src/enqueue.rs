//! Enqueueing: the builder, uniqueness under the key's lock, and enqueue inside the caller's
//! transaction.

use std::future::{Future, IntoFuture};
use std::panic::Location;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use uuid::Uuid;

use crate::error::DbErrorKind;
use crate::job::LockStrategy;
use crate::model::{new_uuid, JobRequest};
use crate::registry::ErasedJob;
use crate::store::{Conn, Located, NewRequest, Start};
use crate::{Error, Jobs, Result};

/// The longest queue name, job class and concurrency key the schema holds.
pub const MAX_NAME_LEN: usize = 255;

/// The advisory lock id plain.jobs takes for a job class and concurrency key: the first 8 bytes,
/// big-endian and signed, of `md5("{job_class}::{concurrency_key}")`.
///
/// # Example
/// ```
/// let id = plainjobs::advisory_lock_id("app.jobs.Report", "daily");
/// assert_eq!(id, plainjobs::advisory_lock_id("app.jobs.Report", "daily"));
/// ```
pub fn advisory_lock_id(job_class: &str, concurrency_key: &str) -> i64 {
    let digest = Md5::digest(format!("{job_class}::{concurrency_key}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The queries a job's [`should_enqueue`](crate::Job::should_enqueue) can make, inside the
/// enqueue's transaction and under the key's lock.
pub struct UniqueCheck<'a> {
    pub(crate) conn: &'a mut dyn Conn,
    pub(crate) job_class: String,
    pub(crate) concurrency_key: String,
    pub(crate) exclude_process: Option<Uuid>,
}

impl UniqueCheck<'_> {
    /// The job class being enqueued.
    pub fn job_class(&self) -> &str {
        &self.job_class
    }

    /// Pending requests of this job class with this key (`include_retries: false` counts only
    /// first attempts).
    ///
    /// # Errors
    /// A database error.
    pub async fn requested_jobs(&mut self, include_retries: bool) -> Result<i64> {
        self.conn
            .count_requests(&self.job_class, &self.concurrency_key, include_retries)
            .await
    }

    /// Claimed or running jobs of this class with this key, not counting the job that is
    /// enqueueing (when the enqueue comes from a running job).
    ///
    /// # Errors
    /// A database error.
    pub async fn processing_jobs(&mut self, include_retries: bool) -> Result<i64> {
        self.conn
            .count_processes(
                &self.job_class,
                &self.concurrency_key,
                include_retries,
                self.exclude_process,
            )
            .await
    }

    /// Takes a transaction-scoped advisory lock with an id of your own (for a
    /// [`LockStrategy::Custom`]).
    ///
    /// # Errors
    /// A database error.
    pub async fn advisory_lock(&mut self, id: i64) -> Result<()> {
        self.conn.advisory_lock(id).await
    }
}

/// Options of one enqueue; missing ones come from the job type's defaults.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub queue: Option<String>,
    pub priority: Option<i16>,
    pub retries: Option<i16>,
    pub retry_attempt: Option<i16>,
    pub concurrency_key: Option<String>,
    pub start: Option<Start>,
    pub trace: Option<(String, String)>,
    pub exclude_process: Option<Uuid>,
}

fn check_len(field: &'static str, value: &str) -> Result<()> {
    let chars = value.chars().count();
    if chars > MAX_NAME_LEN {
        return Err(Error::InvalidInput {
            field,
            problem: format!("{chars} characters long; the limit is {MAX_NAME_LEN}"),
        });
    }
    Ok(())
}

fn check_hex(field: &'static str, value: &str, digits: usize) -> Result<()> {
    let ok = value.len() == digits + 2
        && value.starts_with("0x")
        && value[2..].chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            field,
            problem: format!("{value:?} is not 0x followed by {digits} hex digits"),
        })
    }
}

/// Builds the row to insert, validating every value the schema constrains.
pub(crate) fn build_request(
    job: &dyn ErasedJob,
    opts: &Options,
    source: String,
) -> Result<NewRequest> {
    build_request_as(job, opts, source, new_uuid())
}

/// [`build_request`] with the request's uuid given (a bulk enqueue makes them all up front).
fn build_request_as(
    job: &dyn ErasedJob,
    opts: &Options,
    source: String,
    uuid: Uuid,
) -> Result<NewRequest> {
    let job_class = job.job_class().to_string();
    check_len("job class name", &job_class)?;
    if job_class.is_empty() {
        return Err(Error::InvalidInput {
            field: "job class name",
            problem: "it is empty".into(),
        });
    }
    let queue = opts.queue.clone().unwrap_or_else(|| job.default_queue());
    check_len("queue", &queue)?;
    if queue.is_empty() {
        return Err(Error::InvalidInput {
            field: "queue",
            problem: "it is empty".into(),
        });
    }
    let concurrency_key = opts
        .concurrency_key
        .clone()
        .unwrap_or_else(|| job.default_concurrency_key());
    check_len("concurrency_key", &concurrency_key)?;
    let retries = opts.retries.unwrap_or_else(|| job.default_retries());
    if retries < 0 {
        return Err(Error::InvalidInput {
            field: "retries",
            problem: format!("{retries} is negative"),
        });
    }
    let retry_attempt = opts.retry_attempt.unwrap_or(0);
    if retry_attempt < 0 {
        return Err(Error::InvalidInput {
            field: "retry_attempt",
            problem: format!("{retry_attempt} is negative"),
        });
    }
    let start = opts.start.unwrap_or(Start::Now);
    if let Start::After(d) = start {
        // Far beyond any sensible delay, and safely inside PostgreSQL's interval range.
        if d > Duration::from_secs(100 * 365 * 24 * 3600) {
            return Err(Error::InvalidInput {
                field: "delay",
                problem: format!("{d:?} is more than 100 years"),
            });
        }
    }
    let (trace_id, span_id) = match &opts.trace {
        Some((t, s)) => {
            check_hex("trace_id", t, 32)?;
            check_hex("span_id", s, 16)?;
            (Some(t.clone()), Some(s.clone()))
        }
        None => (None, None),
    };
    Ok(NewRequest {
        uuid,
        parameters: job.parameters()?,
        job_class,
        priority: opts.priority.unwrap_or_else(|| job.default_priority()),
        source,
        queue,
        retries,
        retry_attempt,
        concurrency_key,
        start,
        trace_id,
        span_id,
    })
}

/// Enqueues one job on `conn`: under the key's lock (when the key is not empty), asks
/// `should_enqueue`, inserts. `conn` must be a transaction when the key is not empty.
pub(crate) async fn enqueue_on(
    conn: &mut dyn Conn,
    job: &dyn ErasedJob,
    req: NewRequest,
    exclude_process: Option<Uuid>,
) -> Result<Option<JobRequest>> {
    if !admit(conn, job, &req, exclude_process).await? {
        return Ok(None);
    }
    let mut rows = conn.insert_requests(vec![req]).await?;
    Ok(rows.pop())
}

/// Takes the key's lock (when the key is not empty) and asks `should_enqueue` whether `req`
/// may be enqueued.
async fn admit(
    conn: &mut dyn Conn,
    job: &dyn ErasedJob,
    req: &NewRequest,
    exclude_process: Option<Uuid>,
) -> Result<bool> {
    let mut check = UniqueCheck {
        conn,
        job_class: req.job_class.clone(),
        concurrency_key: req.concurrency_key.clone(),
        exclude_process,
    };
    if !req.concurrency_key.is_empty() {
        match job.lock_strategy() {
            LockStrategy::None => {}
            LockStrategy::Advisory => {
                check
                    .advisory_lock(advisory_lock_id(&req.job_class, &req.concurrency_key))
                    .await?
            }
            LockStrategy::Custom(lock) => {
                lock.lock(&mut check, &req.job_class, &req.concurrency_key)
                    .await?
            }
        }
    }
    if !job.should_enqueue(&req.concurrency_key, &mut check).await? {
        tracing::debug!(job_class = %req.job_class, concurrency_key = %req.concurrency_key, "enqueue skipped by should_enqueue");
        return Ok(false);
    }
    Ok(true)
}

/// Whether the server closed the connection (administrator command, crash, restart): the
/// statement may have failed before it ran, or its reply may have been lost after it
/// committed. Worth one more try on a fresh connection, as long as that try can tell which.
pub(crate) fn is_terminated_connection(err: &Error) -> bool {
    err.db_kind() == Some(DbErrorKind::Terminated)
}

/// Whether an insert was refused because a request with the same uuid exists.
pub(crate) fn is_duplicate_request_uuid(err: &Error) -> bool {
    err.db_kind() == Some(DbErrorKind::DuplicateRequestUuid)
}

/// The requests among `reqs` that are in the database already (pending, claimed or finished),
/// in the order of `reqs`. A pending one is returned as its row is; for one that a worker
/// already claimed or finished the request row is gone, so it is returned as it was sent with
/// `id` 0, `created_at` the time it was made (the process's or result's `requested_at`) and
/// `start_at` computed from it as the insert did.
pub(crate) async fn already_enqueued(jobs: &Jobs, reqs: &[NewRequest]) -> Result<Vec<JobRequest>> {
    let uuids: Vec<Uuid> = reqs.iter().map(|r| r.uuid).collect();
    let found: std::collections::HashMap<Uuid, Located> = jobs
        .store()
        .locate_requests(&uuids)
        .await?
        .into_iter()
        .collect();
    Ok(reqs
        .iter()
        .filter_map(|r| {
            found.get(&r.uuid).map(|located| match *located {
                Located::Pending {
                    id,
                    created_at,
                    start_at,
                } => r.to_request(id, created_at, start_at),
                Located::Taken { requested_at } => {
                    let start_at = match r.start {
                        Start::Now => None,
                        Start::After(d) => chrono::TimeDelta::from_std(d)
                            .ok()
                            .and_then(|d| requested_at.checked_add_signed(d)),
                        Start::At(t) => Some(t),
                    };
                    r.to_request(0, requested_at, start_at)
                }
            })
        })
        .collect())
}

/// Enqueues through the store: in one autocommit statement when the key is empty, else in a
/// transaction of its own. When the server closed the connection, tries once more (see
/// [`enqueue_again`]).
pub(crate) async fn enqueue_via_store(
    jobs: &Jobs,
    job: &dyn ErasedJob,
    req: NewRequest,
    exclude_process: Option<Uuid>,
) -> Result<Option<JobRequest>> {
    match enqueue_once(jobs, job, req.clone(), exclude_process).await {
        Err(e) if is_terminated_connection(&e) => {
            tracing::debug!(error = %e, job_request_uuid = %req.uuid, "connection was closed by the server; enqueueing again");
            enqueue_again(jobs, job, req, exclude_process).await
        }
        other => other,
    }
}

/// The second attempt of an enqueue whose first attempt failed without saying whether it
/// committed. `req` is the first attempt's request, uuid included. If that uuid is in the
/// database (pending, claimed or finished: see [`already_enqueued`]) the first attempt
/// committed and its request is returned without inserting anything; otherwise the enqueue runs
/// again, and a duplicate uuid refused by the insert (the first attempt became visible in
/// between) is the same success.
pub(crate) async fn enqueue_again(
    jobs: &Jobs,
    job: &dyn ErasedJob,
    req: NewRequest,
    exclude_process: Option<Uuid>,
) -> Result<Option<JobRequest>> {
    let reqs = std::slice::from_ref(&req);
    if let Some(found) = already_enqueued(jobs, reqs).await?.pop() {
        tracing::debug!(job_request_uuid = %req.uuid, "the first attempt had committed; not enqueueing again");
        return Ok(Some(found));
    }
    match enqueue_once(jobs, job, req.clone(), exclude_process).await {
        Err(e) if is_duplicate_request_uuid(&e) => {
            match already_enqueued(jobs, reqs).await?.pop() {
                Some(found) => Ok(Some(found)),
                None => Err(e),
            }
        }
        other => other,
    }
}

async fn enqueue_once(
    jobs: &Jobs,
    job: &dyn ErasedJob,
    req: NewRequest,
    exclude_process: Option<Uuid>,
) -> Result<Option<JobRequest>> {
    if req.concurrency_key.is_empty() {
        let mut conn = jobs.store().autocommit().await?;
        if !admit(&mut *conn, job, &req, exclude_process).await? {
            return Ok(None);
        }
        // A new job (not a follow-up of a running one) may go straight to an idle worker of
        // this process.
        let slot = exclude_process
            .is_none()
            .then(|| crate::worker::take_local_slot(jobs, &req))
            .flatten();
        if let Some(slot) = slot {
            drop(conn);
            match slot.dispatch(&req).await {
                Ok(Some(dispatched)) => return dispatched.map(Some),
                Ok(None) => {}
                Err(e) => return Err(Error::WorkerTask(e)),
            }
            conn = jobs.store().autocommit().await?;
        }
        let mut rows = conn.insert_requests(vec![req]).await?;
        Ok(rows.pop())
    } else {
        let mut tx = jobs.store().begin().await?;
        let out = enqueue_on(&mut *tx, job, req, exclude_process).await?;
        tx.commit().await?;
        Ok(out)
    }
}

/// A connection in the caller's own transaction, to enqueue jobs that exist if and only if that
/// transaction commits. Implemented for `sqlx::Transaction` of PostgreSQL and SQLite (not for a
/// bare connection: outside a transaction the key's lock would end with its own statement). On SQLite, begin the transaction with
/// `pool.begin_with("BEGIN IMMEDIATE")` when it enqueues jobs with a concurrency key, so the
/// uniqueness check and the insert hold the write lock together.
pub trait TransactionConn: sealed::Sealed + Send {
    #[doc(hidden)]
    fn as_conn(&mut self) -> Box<dyn Conn + '_>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for sqlx::Transaction<'_, sqlx::Postgres> {}

    impl Sealed for sqlx::Transaction<'_, sqlx::Sqlite> {}
}

impl TransactionConn for sqlx::Transaction<'_, sqlx::Sqlite> {
    fn as_conn(&mut self) -> Box<dyn Conn + '_> {
        Box::new(crate::store::sqlite::SqliteConn(&mut **self, None))
    }
}

impl TransactionConn for sqlx::Transaction<'_, sqlx::Postgres> {
    fn as_conn(&mut self) -> Box<dyn Conn + '_> {
        Box::new(crate::store::postgres::PgConn(&mut **self))
    }
}

/// An enqueue being built: set options, then `.await` it (its own transaction) or call
/// [`in_transaction`](Enqueue::in_transaction). Resolves to `Ok(None)` when `should_enqueue`
/// refused the job (a duplicate by its concurrency key, say), which is not an error.
///
/// When awaited and the server closes the connection, the enqueue is tried once more on a fresh
/// connection, without ever making a second job: the request's uuid is made before the first
/// try, and if the first try committed after all, the second returns that request instead of
/// inserting. If a worker has already claimed or finished it by then, the request row no longer
/// exists: the returned [`JobRequest`] has `id` 0, `created_at` the time it was enqueued, and
/// the rest as sent.
///
/// When awaited through the [`Jobs`](crate::Jobs) handle of a worker running in this process
/// (or a clone of it) while that worker is idle, the job usually goes straight to that worker
/// and never has a request row: the returned request then has `id` 0 too (see
/// [`WorkerConfig::local_dispatch`](crate::WorkerConfig::local_dispatch)). A job's identity is
/// its `uuid`, which its process and result carry as `job_request_uuid`.
///
/// # Example
/// ```no_run
/// # use plainjobs::{Job, JobContext, JobError, Jobs, Outcome};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Report { day: String }
/// # impl Job for Report { const NAME: &'static str = "app.Report";
/// #   async fn run(&self, _: &JobContext) -> Result<Outcome, JobError> { Ok(Outcome::Success) } }
/// # async fn demo(jobs: Jobs, pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// let queued = jobs.enqueue(Report { day: "2026-11-28".into() })
///     .queue("reports")
///     .priority(10)
///     .delay(Duration::from_secs(60))
///     .await?;
/// // In the application's own transaction: the job exists if and only if it commits.
/// let mut tx = pool.begin().await?;
/// jobs.enqueue(Report { day: "2026-11-29".into() }).in_transaction(&mut tx).await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[must_use = "an enqueue does nothing until it is awaited"]
pub struct Enqueue<'j> {
    pub(crate) jobs: &'j Jobs,
    pub(crate) job: Box<dyn ErasedJob>,
    pub(crate) opts: Options,
    pub(crate) source: String,
}

pub(crate) fn caller_source(loc: &Location<'_>) -> String {
    format!("{}:{}", loc.file(), loc.line())
}

impl<'j> Enqueue<'j> {
    /// The queue (default: the job's `default_queue`).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.opts.queue = Some(queue.into());
        self
    }
    /// The priority (higher runs first).
    pub fn priority(mut self, priority: i16) -> Self {
        self.opts.priority = Some(priority);
        self
    }
    /// How many retries after a failure.
    pub fn retries(mut self, retries: i16) -> Self {
        self.opts.retries = Some(retries);
        self
    }
    /// Which attempt this is (0 for a first run).
    pub fn retry_attempt(mut self, attempt: i16) -> Self {
        self.opts.retry_attempt = Some(attempt);
        self
    }
    /// The uniqueness key (default: the job's `default_concurrency_key`).
    pub fn concurrency_key(mut self, key: impl Into<String>) -> Self {
        self.opts.concurrency_key = Some(key.into());
        self
    }
    /// Not before `delay` from now (in the database's clock).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.opts.start = Some(Start::After(delay));
        self
    }
    /// Not before `at`.
    pub fn start_at(mut self, at: DateTime<Utc>) -> Self {
        self.opts.start = Some(Start::At(at));
        self
    }
    /// The trace context to store (`0x` + 32 hex digits, `0x` + 16 hex digits).
    pub fn trace_context(
        mut self,
        trace_id: impl Into<String>,
        span_id: impl Into<String>,
    ) -> Self {
        self.opts.trace = Some((trace_id.into(), span_id.into()));
        self
    }
    /// Overrides the recorded `source` (default: the caller's `file:line`).
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// Enqueues inside the caller's transaction: the job exists if and only if it commits.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a value the schema cannot hold, [`Error::Params`] when the job
    /// cannot be serialized, [`Error::Database`] for a failed query (the caller's transaction is
    /// then aborted, as with any failed statement).
    pub async fn in_transaction<T: TransactionConn + ?Sized>(
        self,
        tx: &mut T,
    ) -> Result<Option<JobRequest>> {
        let req = build_request(&*self.job, &self.opts, self.source)?;
        let mut conn = tx.as_conn();
        enqueue_on(&mut *conn, &*self.job, req, self.opts.exclude_process).await
    }

    async fn run(self) -> Result<Option<JobRequest>> {
        let req = build_request(&*self.job, &self.opts, self.source)?;
        enqueue_via_store(self.jobs, &*self.job, req, self.opts.exclude_process).await
    }
}

impl<'j> IntoFuture for Enqueue<'j> {
    type Output = Result<Option<JobRequest>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'j>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// Requests with a concurrency key, by their index in a bulk enqueue.
type Keyed = Vec<(usize, NewRequest)>;

/// Jobs per insert statement of a bulk enqueue.
const BULK_BATCH: usize = 2000;

/// Many jobs enqueued together, in one transaction: statements of 2,000 for those without a
/// concurrency key; jobs with a key go through their lock and `should_enqueue` one by one. A
/// connection closed by the server is survived as by [`Enqueue`], without duplicates.
#[must_use = "an enqueue does nothing until it is awaited"]
pub struct EnqueueMany<'j> {
    pub(crate) jobs: &'j Jobs,
    pub(crate) items: Vec<Box<dyn ErasedJob>>,
    pub(crate) opts: Options,
    pub(crate) source: String,
}

impl<'j> EnqueueMany<'j> {
    /// The queue for all of them.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.opts.queue = Some(queue.into());
        self
    }
    /// The priority for all of them.
    pub fn priority(mut self, priority: i16) -> Self {
        self.opts.priority = Some(priority);
        self
    }
    /// Retries for all of them.
    pub fn retries(mut self, retries: i16) -> Self {
        self.opts.retries = Some(retries);
        self
    }
    /// Delay for all of them.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.opts.start = Some(Start::After(delay));
        self
    }

    /// One uuid per job, made before the first attempt and kept by a second one.
    pub(crate) fn new_uuids(&self) -> Vec<Uuid> {
        self.items.iter().map(|_| new_uuid()).collect()
    }

    /// Builds the requests of `jobs` (those from index `first` on), with their uuids: those
    /// without a key (inserted together), and those with one (enqueued one by one) with their
    /// index.
    fn build(
        &self,
        jobs: &[Box<dyn ErasedJob>],
        first: usize,
        uuids: &[Uuid],
    ) -> Result<(Vec<NewRequest>, Keyed)> {
        let mut simple = Vec::with_capacity(jobs.len());
        let mut keyed = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            let uuid = uuids.get(first + i).copied().unwrap_or_else(new_uuid);
            let req = build_request_as(&**job, &self.opts, self.source.clone(), uuid)?;
            if req.concurrency_key.is_empty() {
                simple.push(req);
            } else {
                keyed.push((first + i, req));
            }
        }
        Ok((simple, keyed))
    }

    /// Every request, with its uuid (for the second attempt's lookup).
    pub(crate) fn build_all(&self, uuids: &[Uuid]) -> Result<Vec<NewRequest>> {
        let (mut all, keyed) = self.build(&self.items, 0, uuids)?;
        all.extend(keyed.into_iter().map(|(_, r)| r));
        Ok(all)
    }

    /// Jobs without a key go in statements of [`BULK_BATCH`], each built while the database
    /// inserts the one before: the client's work (parameters, encoding) and the server's
    /// overlap instead of adding up. Jobs with a key follow, one by one, in order.
    async fn enqueue_all(&self, conn: &mut dyn Conn, uuids: &[Uuid]) -> Result<Vec<JobRequest>> {
        let mut out = Vec::with_capacity(self.items.len());
        let mut keyed = Vec::new();
        let mut batches = self.items.chunks(BULK_BATCH).enumerate();
        let mut built: Option<Vec<NewRequest>> = None;
        loop {
            let inserting = async {
                match built.take() {
                    Some(rows) if !rows.is_empty() => conn.insert_requests(rows).await,
                    _ => Ok(Vec::new()),
                }
            };
            let next = batches.next();
            let building = async {
                next.map(|(n, jobs)| self.build(jobs, n * BULK_BATCH, uuids))
                    .transpose()
            };
            let (inserted, next_built) = tokio::join!(inserting, building);
            out.extend(inserted?);
            match next_built? {
                Some((simple, keys)) => {
                    built = Some(simple);
                    keyed.extend(keys);
                }
                None => break,
            }
        }
        self.enqueue_keyed(conn, keyed, &mut out).await?;
        Ok(out)
    }

    /// Inserts requests already built: those without a key in statements of [`BULK_BATCH`],
    /// then those with one, one by one.
    async fn insert_built(
        &self,
        conn: &mut dyn Conn,
        mut simple: Vec<NewRequest>,
        keyed: Keyed,
    ) -> Result<Vec<JobRequest>> {
        let mut out = Vec::with_capacity(self.items.len());
        while !simple.is_empty() {
            let rest = simple.split_off(simple.len().min(BULK_BATCH));
            out.extend(conn.insert_requests(simple).await?);
            simple = rest;
        }
        self.enqueue_keyed(conn, keyed, &mut out).await?;
        Ok(out)
    }

    /// Jobs with a key, in order, each through its lock and `should_enqueue`.
    async fn enqueue_keyed(
        &self,
        conn: &mut dyn Conn,
        keyed: Keyed,
        out: &mut Vec<JobRequest>,
    ) -> Result<()> {
        for (i, req) in keyed {
            if let Some(job) = self.items.get(i) {
                if let Some(r) = enqueue_on(conn, &**job, req, None).await? {
                    out.push(r);
                }
            }
        }
        Ok(())
    }

    /// Enqueues inside the caller's transaction.
    ///
    /// # Errors
    /// As [`Enqueue::in_transaction`].
    pub async fn in_transaction<T: TransactionConn + ?Sized>(
        self,
        tx: &mut T,
    ) -> Result<Vec<JobRequest>> {
        // Every request is built before anything is inserted: an error (a job whose
        // parameters cannot be encoded) leaves the caller's transaction untouched, rather than
        // holding the statements before it, which the caller might commit.
        let (simple, keyed) = self.build(&self.items, 0, &self.new_uuids())?;
        let mut conn = tx.as_conn();
        self.insert_built(&mut *conn, simple, keyed).await
    }

    async fn run(self) -> Result<Vec<JobRequest>> {
        let uuids = self.new_uuids();
        match self.run_once(&uuids).await {
            Err(e) if is_terminated_connection(&e) => {
                tracing::debug!(error = %e, "connection was closed by the server; enqueueing again");
                self.run_again(&uuids).await
            }
            other => other,
        }
    }

    /// The second attempt after a closed connection. The first attempt was one transaction:
    /// if any of its requests is in the database it committed, and those found are what it
    /// inserted (the others were refused by `should_enqueue`). Found requests are returned as
    /// [`already_enqueued`] describes.
    pub(crate) async fn run_again(&self, uuids: &[Uuid]) -> Result<Vec<JobRequest>> {
        let reqs = &self.build_all(uuids)?;
        let found = already_enqueued(self.jobs, reqs).await?;
        if !found.is_empty() {
            tracing::debug!(
                jobs = found.len(),
                "the first attempt had committed; not enqueueing again"
            );
            return Ok(found);
        }
        match self.run_once(uuids).await {
            Err(e) if is_duplicate_request_uuid(&e) => {
                let found = already_enqueued(self.jobs, reqs).await?;
                if found.is_empty() {
                    Err(e)
                } else {
                    Ok(found)
                }
            }
            other => other,
        }
    }

    pub(crate) async fn run_once(&self, uuids: &[Uuid]) -> Result<Vec<JobRequest>> {
        let mut tx = self.jobs.store().begin().await?;
        let out = self.enqueue_all(&mut *tx, uuids).await?;
        tx.commit().await?;
        Ok(out)
    }
}

impl<'j> IntoFuture for EnqueueMany<'j> {
    type Output = Result<Vec<JobRequest>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'j>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::jobs::raw_job;
    use crate::model::JobStatus;
    use crate::registry::RawJob;
    use crate::store::{Finish, NewHeartbeat};
    use crate::test_support::{conformance, test_jobs, Backend};

    fn job() -> RawJob {
        raw_job(
            "tests.Idempotent",
            Some(&serde_json::json!({"args": [1], "kwargs": {}})),
        )
    }

    fn request(job: &RawJob, key: &str, start: Start) -> NewRequest {
        let opts = Options {
            concurrency_key: Some(key.to_string()),
            start: Some(start),
            ..Options::default()
        };
        build_request(job, &opts, "enqueue.rs test".into()).expect("a valid request")
    }

    async fn pending(jobs: &Jobs) -> usize {
        jobs.requests(100).await.expect("requests").len()
    }

    /// The first attempt committed, its reply was lost: the retry returns the pending request
    /// and inserts nothing (with a key, the uniqueness check would otherwise refuse the job as
    /// its own duplicate and report it skipped).
    async fn a_retry_after_a_committed_first_attempt_returns_it_and_inserts_nothing(
        backend: Backend,
    ) {
        let jobs = test_jobs(backend).await;
        let job = job();
        for (key, start) in [
            ("", Start::Now),
            ("k", Start::Now),
            ("", Start::After(Duration::from_secs(3600))),
        ] {
            let req = request(&job, key, start);
            let first = enqueue_once(&jobs, &job, req.clone(), None)
                .await
                .expect("first attempt")
                .expect("enqueued");
            let again = enqueue_again(&jobs, &job, req, None)
                .await
                .expect("second attempt")
                .expect("reported as enqueued");
            assert_eq!(again, first, "key {key:?}");
        }
        assert_eq!(pending(&jobs).await, 3, "no duplicate");
    }

    /// The first attempt committed and a worker claimed the job, then finished it, before the
    /// retry: the request row is gone, the retry still finds the job and inserts nothing.
    async fn a_retry_finds_the_first_attempt_claimed_then_finished(backend: Backend) {
        let jobs = test_jobs(backend).await;
        let job = job();
        let req = request(&job, "", Start::Now);
        let first = enqueue_once(&jobs, &job, req.clone(), None)
            .await
            .expect("first attempt")
            .expect("enqueued");
        let worker_id = new_uuid();
        let store = jobs.store();
        store
            .heartbeat(&NewHeartbeat {
                worker_id,
                hostname: "test".into(),
                pid: 1,
                queues: vec!["default".into()],
            })
            .await
            .expect("heartbeat");
        let claimed = store
            .claim(
                worker_id,
                &["default".to_string()],
                1,
                0,
                crate::store::ClaimHow::default(),
            )
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1);

        let check = |again: JobRequest| {
            assert_eq!(again.uuid, first.uuid);
            assert_eq!(again.id, 0, "the request row is gone");
            assert_eq!(again.created_at, first.created_at);
            assert_eq!(again.start_at, None);
            assert_eq!(again.parameters, first.parameters);
        };
        let again = enqueue_again(&jobs, &job, req.clone(), None)
            .await
            .expect("second attempt (claimed)")
            .expect("reported as enqueued");
        check(again);
        assert_eq!(pending(&jobs).await, 0, "no duplicate of a claimed job");

        let finish = Finish {
            process_uuid: claimed[0].uuid,
            status: JobStatus::Successful,
            error: String::new(),
        };
        store
            .finish_many(worker_id, &[], &[finish])
            .await
            .expect("finish");
        let again = enqueue_again(&jobs, &job, req, None)
            .await
            .expect("second attempt (finished)")
            .expect("reported as enqueued");
        check(again);
        assert_eq!(pending(&jobs).await, 0, "no duplicate of a finished job");
        assert!(jobs.processes(10).await.expect("processes").is_empty());
    }

    /// The first attempt did not commit: the retry enqueues the job, once.
    async fn a_retry_after_a_first_attempt_that_did_not_commit_enqueues_once(backend: Backend) {
        let jobs = test_jobs(backend).await;
        let job = job();
        let again = enqueue_again(&jobs, &job, request(&job, "k", Start::Now), None)
            .await
            .expect("second attempt")
            .expect("enqueued");
        assert_eq!(jobs.requests(10).await.expect("requests"), vec![again]);
    }

    /// The insert refuses a request whose uuid exists, and the refusal is recognised as such
    /// (what the retry relies on when the first attempt becomes visible only after its look).
    async fn a_duplicate_request_uuid_is_refused_and_recognised(backend: Backend) {
        let jobs = test_jobs(backend).await;
        let job = job();
        let req = request(&job, "", Start::Now);
        enqueue_once(&jobs, &job, req.clone(), None)
            .await
            .expect("first insert");
        let refused = enqueue_once(&jobs, &job, req, None).await;
        assert!(
            matches!(&refused, Err(e) if is_duplicate_request_uuid(e)),
            "{refused:?}"
        );
        assert_eq!(pending(&jobs).await, 1);
    }

    /// Bulk enqueue: the retry after a committed first attempt returns what it inserted.
    async fn a_bulk_retry_after_a_committed_first_attempt_inserts_nothing(backend: Backend) {
        let jobs = test_jobs(backend).await;
        let many = EnqueueMany {
            jobs: &jobs,
            items: (0..3)
                .map(|i| {
                    Box::new(raw_job(
                        "tests.Idempotent",
                        Some(&serde_json::json!({"args": [i], "kwargs": {}})),
                    )) as Box<dyn ErasedJob>
                })
                .collect(),
            opts: Options::default(),
            source: "enqueue.rs test".into(),
        };
        let uuids = many.new_uuids();
        let mut first = many.run_once(&uuids).await.expect("first attempt");
        let mut again = many.run_again(&uuids).await.expect("second attempt");
        first.sort_by_key(|r| r.id);
        again.sort_by_key(|r| r.id);
        assert_eq!(again, first);
        assert_eq!(pending(&jobs).await, 3, "no duplicates");
    }

    conformance!(
        a_retry_after_a_committed_first_attempt_returns_it_and_inserts_nothing,
        a_retry_finds_the_first_attempt_claimed_then_finished,
        a_retry_after_a_first_attempt_that_did_not_commit_enqueues_once,
        a_duplicate_request_uuid_is_refused_and_recognised,
        a_bulk_retry_after_a_committed_first_attempt_inserts_nothing,
    );
}
