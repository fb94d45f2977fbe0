//! [`Enqueue`]: one job, awaited on its own connection or run in the caller's transaction.

use std::future::{Future, IntoFuture};
use std::panic::Location;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::Instrument;

use super::admit::enqueue_on;
use super::again::{enqueue_again, is_terminated_connection};
use super::on_commit::count_on_commit;
use super::request::{build_request, caller_source, Options};
use super::single::enqueue_once;
use super::traced::Sending;
use super::transaction::TransactionConn;
use crate::job::{Job, JobContext};
use crate::model::JobRequest;
use crate::registry::{ErasedJob, RawJob};
use crate::store::Start;
use crate::{Jobs, Result};

impl Jobs {
    /// Starts an enqueue of `job`; set options on the builder, then `.await` it. Concurrent
    /// enqueues through this handle share commits (see [`Enqueue`]); each returns after its
    /// own row's commit.
    #[track_caller]
    pub fn enqueue<J: Job>(&self, job: J) -> Enqueue<'_> {
        Enqueue::new(self, Box::new(job), Location::caller())
    }

    /// Starts an enqueue of a job known only by name, with its parameters as a plain.jobs
    /// envelope (`{"args": [...], "kwargs": {...}}`), as the CLI does. It runs on any worker that
    /// registered the name; plain.jobs' default uniqueness applies.
    #[track_caller]
    pub fn enqueue_by_name(&self, job_class: &str, parameters: Value) -> Enqueue<'_> {
        let job = RawJob::new(job_class, Some(&parameters));
        Enqueue::new(self, Box::new(job), Location::caller())
    }
}

impl JobContext {
    /// Enqueues a job from inside this one. Its uniqueness check does not count this running
    /// job, so a job can enqueue its own successor under the same concurrency key.
    #[track_caller]
    pub fn enqueue<J: Job>(&self, job: J) -> Enqueue<'_> {
        let mut e = Enqueue::new(&self.jobs, Box::new(job), Location::caller());
        e.opts.exclude_process = Some(self.process.uuid);
        e
    }
}

/// An enqueue being built: set options, then `.await` it (its own transaction) or call
/// [`in_transaction`](Enqueue::in_transaction). Resolves to `Ok(None)` when `should_enqueue`
/// refused the job (a duplicate by its concurrency key, say), which is not an error.
///
/// Awaited enqueues of jobs without a concurrency key, made concurrently through one
/// [`Jobs`](crate::Jobs) handle (or its clones), share insert statements and their commits;
/// durability is unchanged: each returns once its own row has committed. An enqueue dropped
/// while it waits for a shared statement makes no job; dropped once the statement has taken
/// its row, the job may still be made (as when an enqueue is dropped after sending its insert).
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
    jobs: &'j Jobs,
    job: Box<dyn ErasedJob>,
    opts: Options,
    source: String,
    caller: &'static Location<'static>,
}

impl<'j> Enqueue<'j> {
    fn new(
        jobs: &'j Jobs,
        job: Box<dyn ErasedJob>,
        caller: &'static Location<'static>,
    ) -> Enqueue<'j> {
        Enqueue {
            jobs,
            job,
            opts: Options::default(),
            source: caller_source(caller),
            caller,
        }
    }

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
    /// The longest one run of this job may take (overrides the job type's
    /// [`timeout`](crate::Job::timeout)); stored with the job's parameters, kept by its retries.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.opts.timeout = Some(limit);
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
        let send = Sending::start();
        let mut req = build_request(&*self.job, &self.opts, self.source)
            .inspect_err(|e| send.failed_early(e))?;
        send.describe(&mut req, Some(self.caller), None);
        let (uuid, exclude) = (req.uuid, self.opts.exclude_process);
        let mut conn = tx.as_conn(self.jobs.pooler());
        let out = enqueue_on(&mut *conn, &*self.job, req.clone(), exclude)
            .instrument(send.span().clone())
            .await;
        send.finish(self.jobs, &req.queue, &req.job_class, out.as_ref(), false);
        if let (Ok(Some(_)), Some(metrics)) = (&out, self.jobs.metrics()) {
            count_on_commit(self.jobs, metrics, vec![uuid], &req, send.elapsed());
        }
        out
    }

    /// Its own connection (or transaction, with a key); once more, idempotently, when the
    /// server closed the connection.
    async fn run(self) -> Result<Option<JobRequest>> {
        let send = Sending::start();
        let mut req = build_request(&*self.job, &self.opts, self.source)
            .inspect_err(|e| send.failed_early(e))?;
        send.describe(&mut req, Some(self.caller), None);
        let (job, exclude) = (&*self.job, self.opts.exclude_process);
        let out = async {
            match enqueue_once(self.jobs, job, req.clone(), exclude).await {
                Err(e) if is_terminated_connection(&e) => {
                    tracing::debug!(error = %e, job_request_uuid = %req.uuid, "connection was closed by the server; enqueueing again");
                    enqueue_again(self.jobs, job, req.clone(), exclude).await
                }
                other => other,
            }
        }
        .instrument(send.span().clone())
        .await;
        send.finish(self.jobs, &req.queue, &req.job_class, out.as_ref(), true);
        out
    }
}

impl<'j> IntoFuture for Enqueue<'j> {
    type Output = Result<Option<JobRequest>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'j>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}
