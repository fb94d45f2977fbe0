//! [`EnqueueMany`]: many jobs in one transaction, in statements of thousands.

use std::future::{Future, IntoFuture};
use std::panic::Location;
use std::pin::Pin;
use std::time::Duration;

use tracing::Instrument;
use uuid::Uuid;

use super::admit::enqueue_on;
use super::again::{already_enqueued, is_duplicate_request_uuid, is_terminated_connection};
use super::on_commit::count_on_commit;
use super::request::{build_request_as, caller_source, Options};
use super::traced::Sending;
use super::transaction::TransactionConn;
use crate::job::Job;
use crate::model::{new_uuid, JobRequest};
use crate::registry::ErasedJob;
use crate::store::{Conn, NewRequest, Start};
use crate::{Jobs, Result};

impl Jobs {
    /// Enqueues many jobs of one type, all or none, in one transaction: jobs without a
    /// concurrency key are inserted 2,000 per statement, then jobs with a key go through their
    /// lock and `should_enqueue` one by one. Returns the requests made, those without a key
    /// first.
    #[track_caller]
    pub fn enqueue_many<J: Job>(&self, jobs: impl IntoIterator<Item = J>) -> EnqueueMany<'_> {
        EnqueueMany {
            jobs: self,
            items: jobs.into_iter().map(|j| Box::new(j) as Box<_>).collect(),
            opts: Options::default(),
            source: caller_source(Location::caller()),
            caller: Location::caller(),
        }
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
    pub(crate) caller: &'static Location<'static>,
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
    /// Run-time limit for each of them (see [`Enqueue::timeout`](crate::Enqueue::timeout)).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.opts.timeout = Some(limit);
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
        let mut this = self;
        let Some((send, first)) = this.start_send()? else {
            return Ok(Vec::new());
        };
        let (simple, keyed) = this.build(&this.items, 0, &this.new_uuids())?;
        let mut conn = tx.as_conn(this.jobs.pooler());
        let out = this
            .insert_built(&mut *conn, simple, keyed)
            .instrument(send.span().clone())
            .await;
        match (&out, this.jobs.metrics()) {
            (Ok(made), Some(metrics)) if !made.is_empty() => {
                let uuids = made.iter().map(|r| r.uuid).collect();
                count_on_commit(this.jobs, metrics, uuids, &first, send.elapsed());
            }
            (Err(e), _) => send.failed(this.jobs, &first.queue, &first.job_class, e),
            _ => {}
        }
        out
    }

    /// The `send` span of the whole batch, named after its first job, whose context every row
    /// stores (when sampled and none was given); with that first job's request. None for an
    /// empty batch.
    fn start_send(&mut self) -> Result<Option<(Sending, NewRequest)>> {
        let Some(job) = self.items.first() else {
            return Ok(None);
        };
        let send = Sending::start();
        let mut first = build_request_as(&**job, &self.opts, String::new(), Uuid::nil())
            .inspect_err(|e| send.failed_early(e))?;
        let context = send.describe(&mut first, Some(self.caller), Some(self.items.len()));
        if self.opts.trace.is_none() {
            self.opts.trace = context;
        }
        Ok(Some((send, first)))
    }

    async fn run(mut self) -> Result<Vec<JobRequest>> {
        let Some((send, first)) = self.start_send()? else {
            return Ok(Vec::new());
        };
        let uuids = self.new_uuids();
        let out = async {
            match self.run_once(&uuids).await {
                Err(e) if is_terminated_connection(&e) => {
                    tracing::debug!(error = %e, "connection was closed by the server; enqueueing again");
                    self.run_again(&uuids).await
                }
                other => other,
            }
        }
        .instrument(send.span().clone())
        .await;
        match (&out, self.jobs.metrics()) {
            (Ok(made), Some(m)) if !made.is_empty() => m.sent_many(
                &first.queue,
                &first.job_class,
                made.len() as u64,
                send.elapsed(),
            ),
            (Err(e), _) => send.failed(self.jobs, &first.queue, &first.job_class, e),
            _ => {}
        }
        out
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
