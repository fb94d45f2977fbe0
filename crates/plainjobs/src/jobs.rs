//! [`Jobs`]: the handle an application keeps to enqueue and inspect jobs.

use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use uuid::Uuid;

use crate::enqueue::{caller_source, Enqueue, EnqueueMany, Options};
use crate::job::Job;
use crate::model::{JobProcess, JobRequest, JobResult, JobStatus, WorkerHeartbeat};
use crate::registry::{RawJob, Registry};
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{QueueStats, ResultFilter, Store};
use crate::{redact_url, Error, Result};

/// A connection to the job tables: enqueue, inspect, retry. Cheap to clone.
///
/// # Example
/// ```no_run
/// # async fn demo() -> plainjobs::Result<()> {
/// let jobs = plainjobs::Jobs::connect("postgres://app@127.0.0.1/app").await?;
/// jobs.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    pool: Option<PgPool>,
    sqlite: Option<sqlx::SqlitePool>,
    /// The running workers made from this handle (or its clones) that accept jobs enqueued
    /// through it directly (`WorkerConfig::local_dispatch`).
    local: std::sync::Mutex<Vec<std::sync::Weak<crate::worker::Shared>>>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jobs")
    }
}

/// A job found by [`Jobs::find`].
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "table", rename_all = "snake_case")]
pub enum Found {
    /// Pending.
    Request(JobRequest),
    /// Claimed or running.
    Process(JobProcess),
    /// Finished.
    Result(JobResult),
}

/// Connection settings for [`Jobs::connect_with`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Pool size (default 10). A worker uses about four connections besides its jobs' own.
    pub max_connections: u32,
    /// How long to wait for the first connection (default 10 s).
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_connections: 10,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Parameters of a row a job was enqueued with, to retry it or to enqueue it by name.
pub(crate) fn raw_job(job_class: &str, parameters: Option<&Value>) -> RawJob {
    RawJob {
        job_class: job_class.to_string(),
        parameters: parameters
            .cloned()
            .unwrap_or_else(|| serde_json::json!({"args": [], "kwargs": {}})),
    }
}

impl Jobs {
    /// Connects to `url`: `postgres://…` (or `postgresql://…`), or `sqlite://path` (created if
    /// missing; `sqlite::memory:` for a database that lives as long as this handle).
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] for another scheme, [`Error::Connect`] (password redacted) when
    /// the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Jobs> {
        Jobs::connect_with(url, ConnectOptions::default()).await
    }

    /// Connects with explicit pool settings.
    ///
    /// # Errors
    /// As [`Jobs::connect`].
    pub async fn connect_with(url: &str, options: ConnectOptions) -> Result<Jobs> {
        let connect = |source| Error::Connect {
            url: redact_url(url),
            source,
        };
        if url.starts_with("sqlite:") {
            let store = SqliteStore::open(url, options.max_connections)
                .await
                .map_err(connect)?;
            let pool = store.pool().clone();
            return Ok(Jobs {
                inner: Arc::new(Inner {
                    store: Arc::new(store),
                    pool: None,
                    sqlite: Some(pool),
                    local: Default::default(),
                }),
            });
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::UnsupportedUrl(redact_url(url)));
        }
        let opts: PgConnectOptions = url.parse().map_err(connect)?;
        // One direct connection first: a refused or failed connection reports its own cause at
        // once, where the pool would wait out its timeout and report only that.
        let first = tokio::time::timeout(
            options.connect_timeout,
            <sqlx::PgConnection as sqlx::Connection>::connect_with(&opts),
        )
        .await
        .map_err(|_| connect(sqlx::Error::PoolTimedOut))?
        .map_err(connect)?;
        let _ = sqlx::Connection::close(first).await;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(options.connect_timeout)
            .test_before_acquire(false)
            .connect_with(opts)
            .await
            .map_err(connect)?;
        Ok(Jobs::from_pool(pool))
    }

    /// Uses an existing PostgreSQL pool (the application's own).
    pub fn from_pool(pool: PgPool) -> Jobs {
        Jobs {
            inner: Arc::new(Inner {
                store: Arc::new(PgStore::new(pool.clone())),
                pool: Some(pool),
                sqlite: None,
                local: Default::default(),
            }),
        }
    }

    pub(crate) fn store(&self) -> &dyn Store {
        &*self.inner.store
    }

    /// Registers a running worker for local dispatch (forgetting stopped ones).
    pub(crate) fn add_local_worker(&self, worker: std::sync::Weak<crate::worker::Shared>) {
        let mut local = self.inner.local.lock().unwrap_or_else(|e| e.into_inner());
        local.retain(|w| w.strong_count() > 0);
        local.push(worker);
    }

    /// The running workers registered for local dispatch.
    pub(crate) fn local_workers(&self) -> Vec<Arc<crate::worker::Shared>> {
        let local = self.inner.local.lock().unwrap_or_else(|e| e.into_inner());
        local.iter().filter_map(std::sync::Weak::upgrade).collect()
    }

    /// The PostgreSQL pool, for applications that want to share it (None on SQLite).
    pub fn pg_pool(&self) -> Option<&PgPool> {
        self.inner.pool.as_ref()
    }

    /// The SQLite pool (None on PostgreSQL). Begin your own transactions on it with
    /// `begin_with("BEGIN IMMEDIATE")` when they enqueue jobs with a concurrency key.
    pub fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        self.inner.sqlite.as_ref()
    }

    /// Which backend this is: `"postgres"` or `"sqlite"`.
    pub fn backend(&self) -> &'static str {
        if self.inner.sqlite.is_some() {
            "sqlite"
        } else {
            "postgres"
        }
    }

    /// Creates or upgrades the schema (idempotent; accepts tables plain.jobs created).
    ///
    /// # Errors
    /// [`Error::Migration`] naming the step that failed.
    pub async fn migrate(&self) -> Result<()> {
        self.store().migrate().await
    }

    /// Starts an enqueue of `job`; set options on the builder, then `.await` it.
    #[track_caller]
    pub fn enqueue<J: Job>(&self, job: J) -> Enqueue<'_> {
        Enqueue {
            jobs: self,
            job: Box::new(job),
            opts: Options::default(),
            source: caller_source(Location::caller()),
        }
    }

    /// Starts an enqueue of a job known only by name, with its parameters as a plain.jobs
    /// envelope (`{"args": [...], "kwargs": {...}}`), as the CLI does. It runs on any worker that
    /// registered the name; plain.jobs' default uniqueness applies.
    #[track_caller]
    pub fn enqueue_by_name(&self, job_class: &str, parameters: Value) -> Enqueue<'_> {
        Enqueue {
            jobs: self,
            job: Box::new(raw_job(job_class, Some(&parameters))),
            opts: Options::default(),
            source: caller_source(Location::caller()),
        }
    }

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
        }
    }

    /// Retries a failed result now, with the job's backoff and uniqueness when `registry` knows
    /// its type (else no delay and plain.jobs' default uniqueness). Returns the new request, or
    /// None when the result is not retryable or `should_enqueue` refused.
    ///
    /// Unlike the automatic retries, this also retries results whose retries are used up
    /// (`force`), as an operator asking for it expects.
    ///
    /// # Errors
    /// A database error.
    pub async fn retry_result(
        &self,
        result_uuid: Uuid,
        registry: &Registry,
        force: bool,
    ) -> Result<Option<JobRequest>> {
        crate::worker::retry::retry_now(self, registry, result_uuid, force).await
    }

    /// Finds a job by uuid: a request, a process (by its own or its request's uuid), or a result
    /// (by its own uuid, or the newest result of the request with that uuid).
    ///
    /// # Errors
    /// A database error.
    pub async fn find(&self, uuid: Uuid) -> Result<Option<Found>> {
        if let Some(r) = self.store().request_by_uuid(uuid).await? {
            return Ok(Some(Found::Request(r)));
        }
        if let Some(p) = self.store().process_by_uuid(uuid).await? {
            return Ok(Some(Found::Process(p)));
        }
        Ok(self.store().find_result(uuid).await?.map(Found::Result))
    }

    /// Pending requests, in claim order.
    ///
    /// # Errors
    /// A database error.
    pub async fn requests(&self, limit: i64) -> Result<Vec<JobRequest>> {
        self.store().requests(limit).await
    }

    /// Claimed and running jobs.
    ///
    /// # Errors
    /// A database error.
    pub async fn processes(&self, limit: i64) -> Result<Vec<JobProcess>> {
        self.store().processes(limit).await
    }

    /// Results, newest first, optionally filtered.
    ///
    /// # Errors
    /// A database error.
    pub async fn results(
        &self,
        status: Option<JobStatus>,
        queue: Option<&str>,
        job_class: Option<&str>,
        limit: i64,
    ) -> Result<Vec<JobResult>> {
        let filter = ResultFilter {
            status,
            queue: queue.map(str::to_string),
            job_class: job_class.map(str::to_string),
            limit,
        };
        self.store().results(&filter).await
    }

    /// Registered workers.
    ///
    /// # Errors
    /// A database error.
    pub async fn workers(&self) -> Result<Vec<WorkerHeartbeat>> {
        self.store().workers().await
    }

    /// Counts per queue.
    ///
    /// # Errors
    /// A database error.
    pub async fn stats(&self) -> Result<Vec<QueueStats>> {
        self.store().stats().await
    }

    /// Deletes results created more than `older_than` ago, in batches; returns how many.
    ///
    /// # Errors
    /// A database error.
    pub async fn clear_results(&self, older_than: Duration) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self.store().delete_results_before(older_than, 5000).await?;
            total += n;
            if n < 5000 {
                return Ok(total);
            }
        }
    }

    /// Deletes every pending and running job; returns (requests, processes) deleted.
    ///
    /// # Errors
    /// A database error.
    pub async fn purge(&self) -> Result<(u64, u64)> {
        self.store().purge().await
    }
}
