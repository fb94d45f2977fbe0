//! [`Jobs`]: the handle an application keeps on the job tables — a connection pool on one
//! backend, and the workers of this process that accept jobs directly. Enqueueing, inspecting
//! and the operator's transitions are methods added by the client modules (`client/`).

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::coalesce::Coalescer;
use crate::dispatch::{LocalDispatch, Reservation};
use crate::store::postgres::{PgStore, Pooler};
use crate::store::sqlite::SqliteStore;
use crate::store::{Migrated, NewRequest, SchemaReport, Store};
use crate::telemetry::hooks::Metrics;
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
    /// plain.jobs' instruments, when given (`with_metrics`): `None` records nothing.
    metrics: Option<Metrics>,
}

struct Inner {
    store: Arc<dyn Store>,
    pool: Option<PgPool>,
    /// What is in front of PostgreSQL (always [`Pooler::Session`] on SQLite).
    pooler: Pooler,
    sqlite: Option<sqlx::SqlitePool>,
    /// The running workers made from this handle (or its clones) that accept jobs enqueued
    /// through it directly (`WorkerConfig::local_dispatch`).
    local: Mutex<Vec<Weak<dyn LocalDispatch>>>,
    /// Concurrent single enqueues share insert statements (`coalesce/`).
    coalesce: Arc<Coalescer>,
}

/// Batches of single enqueues inserted at once on PostgreSQL: a few, so that commits overlap,
/// leaving most of the pool to everything else (a batch holds a connection while inserting).
fn pg_batches_in_flight(max_connections: u32) -> usize {
    (max_connections as usize / 4).clamp(1, 4)
}

/// Which database a [`Jobs`] handle talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// PostgreSQL (`postgres://…`).
    Postgres,
    /// SQLite (`sqlite://…`).
    Sqlite,
}

impl Backend {
    /// `"postgres"` or `"sqlite"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jobs")
    }
}

/// Connection settings for [`Jobs::connect_with`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Pool size (default 10). A worker uses about four connections besides its jobs' own.
    pub max_connections: u32,
    /// How long to wait for the first connection (default 10 s).
    pub connect_timeout: Duration,
    /// Create a SQLite file that does not exist (default true). False for a caller that only
    /// reads or acts on existing jobs: a missing file is then [`Error::NoDatabase`] rather
    /// than a new empty file.
    pub create_if_missing: bool,
    /// What is between this process and PostgreSQL (default [`Pooler::Session`]: nothing, or
    /// a pooler in session mode). A `pooler=` parameter in the URL wins over it.
    pub pooler: Pooler,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_connections: 10,
            connect_timeout: Duration::from_secs(10),
            create_if_missing: true,
            pooler: Pooler::Session,
        }
    }
}

impl Jobs {
    /// Connects to `url`: `postgres://…` (or `postgresql://…`), or `sqlite://path` (created if
    /// missing; `sqlite::memory:` for a database that lives as long as this handle).
    ///
    /// Behind a connection pooler in transaction mode (PgBouncer's `pool_mode = transaction`),
    /// add `pooler=transaction` to the URL's parameters (see [`Pooler`]):
    /// `postgres://app@pgbouncer:6432/app?pooler=transaction`.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] for another scheme, [`Error::Connect`] (password redacted) when
    /// the database cannot be reached or the URL has a parameter it does not take (such as
    /// `pooler=statement`).
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
            if !options.create_if_missing && SqliteStore::file_is_missing(url) {
                return Err(Error::NoDatabase(redact_url(url)));
            }
            let store = SqliteStore::open(url, options.max_connections)
                .await
                .map_err(connect)?;
            let pool = store.pool().clone();
            return Ok(Jobs {
                inner: Arc::new(Inner {
                    store: Arc::new(store),
                    pool: None,
                    pooler: Pooler::Session,
                    sqlite: Some(pool),
                    local: Default::default(),
                    // SQLite has one writer at a time: one batch, while the next gathers.
                    coalesce: Coalescer::new(1),
                }),
                metrics: None,
            });
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::UnsupportedUrl(redact_url(url)));
        }
        let (driver_url, pooler) =
            Pooler::split_url(url).map_err(|e| connect(sqlx::Error::Configuration(Box::new(e))))?;
        let pooler = pooler.unwrap_or(options.pooler);
        let opts: PgConnectOptions = driver_url.parse().map_err(connect)?;
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
        Ok(Jobs::from_pool_with(pool, pooler))
    }

    /// Uses an existing PostgreSQL pool (the application's own), with nothing in front of the
    /// server or a pooler in session mode.
    pub fn from_pool(pool: PgPool) -> Jobs {
        Jobs::from_pool_with(pool, Pooler::Session)
    }

    /// Uses an existing PostgreSQL pool whose connections go through `pooler`.
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo() -> plainjobs::Result<()> {
    /// use plainjobs::{Jobs, Pooler};
    ///
    /// // The application's pool, through PgBouncer in transaction mode.
    /// let pool = sqlx::PgPool::connect("postgres://app@127.0.0.1:6432/app")
    ///     .await
    ///     .expect("the pooler is up");
    /// let jobs = Jobs::from_pool_with(pool, Pooler::Transaction);
    /// # Ok(()) }
    /// ```
    pub fn from_pool_with(pool: PgPool, pooler: Pooler) -> Jobs {
        let batches = pg_batches_in_flight(pool.options().get_max_connections());
        Jobs {
            inner: Arc::new(Inner {
                store: Arc::new(PgStore::new(pool.clone(), pooler)),
                pool: Some(pool),
                pooler,
                sqlite: None,
                local: Default::default(),
                coalesce: Coalescer::new(batches),
            }),
            metrics: None,
        }
    }

    /// This handle with plain.jobs' metrics (feature `otel`): what it enqueues, and what the
    /// workers made from it run, is recorded on them, and those workers read the gauges. Set
    /// it before making workers and clones: they carry the metrics of the handle they were
    /// made from.
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo(provider: opentelemetry_sdk::metrics::SdkMeterProvider) -> plainjobs::Result<()> {
    /// let jobs = plainjobs::Jobs::connect("sqlite://jobs.sqlite3")
    ///     .await?
    ///     .with_metrics(plainjobs::telemetry::Metrics::new(&provider));
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "otel")]
    pub fn with_metrics(mut self, metrics: crate::telemetry::Metrics) -> Jobs {
        self.metrics = Some(metrics);
        self
    }

    /// This handle with `metrics` (or none).
    #[cfg(feature = "cli")]
    pub(crate) fn recording(mut self, metrics: Option<Metrics>) -> Jobs {
        self.metrics = metrics;
        self
    }

    /// The metrics to record on, when any.
    pub(crate) fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_ref()
    }

    pub(crate) fn store(&self) -> &dyn Store {
        &*self.inner.store
    }

    /// Where concurrent single enqueues through this handle (and its clones) are batched.
    pub(crate) fn coalescer(&self) -> &Arc<Coalescer> {
        &self.inner.coalesce
    }

    /// A handle on the same database (and pools) through `wrap` of this handle's store; it has
    /// workers of its own. Tests wrap the store to inject faults (`testing::FaultyStore`).
    #[cfg(test)]
    pub(crate) fn wrap_store(&self, wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>) -> Jobs {
        Jobs {
            inner: Arc::new(Inner {
                store: wrap(self.inner.store.clone()),
                pool: self.inner.pool.clone(),
                pooler: self.inner.pooler,
                sqlite: self.inner.sqlite.clone(),
                local: Default::default(),
                coalesce: Coalescer::new(self.inner.coalesce.max_in_flight()),
            }),
            metrics: self.metrics.clone(),
        }
    }

    /// Registers a running worker for local dispatch (forgetting stopped ones).
    pub(crate) fn add_local_worker(&self, worker: Weak<dyn LocalDispatch>) {
        let mut local = self.inner.local.lock().unwrap_or_else(|e| e.into_inner());
        local.retain(|w| w.strong_count() > 0);
        local.push(worker);
    }

    /// A free slot of an idle worker of this process that can run `req` (see
    /// [`LocalDispatch`]), or None.
    pub(crate) fn reserve_local_slot(&self, req: &NewRequest) -> Option<Box<dyn Reservation>> {
        let workers: Vec<Arc<dyn LocalDispatch>> = {
            let local = self.inner.local.lock().unwrap_or_else(|e| e.into_inner());
            local.iter().filter_map(Weak::upgrade).collect()
        };
        workers.into_iter().find_map(|w| w.reserve(req))
    }

    /// What is between this process and PostgreSQL ([`Pooler::Session`] on SQLite).
    pub fn pooler(&self) -> Pooler {
        self.inner.pooler
    }

    /// The PostgreSQL pool, for applications that want to share it (None on SQLite). Behind a
    /// transaction pooler ([`Jobs::pooler`]), the application's own statements on it must be
    /// sent as plainjobs sends its own: unnamed (`.persistent(false)`) and in a transaction.
    pub fn pg_pool(&self) -> Option<&PgPool> {
        self.inner.pool.as_ref()
    }

    /// The SQLite pool (None on PostgreSQL). Begin your own transactions on it with
    /// `begin_with("BEGIN IMMEDIATE")` when they enqueue jobs with a concurrency key.
    pub fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        self.inner.sqlite.as_ref()
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        if self.inner.sqlite.is_some() {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    /// Creates or upgrades the job tables and says what it changed (nothing when they are
    /// current). On PostgreSQL the tables are plain.jobs' exactly, as a Plain deploy makes
    /// them, with our additions in forms a Plain deploy leaves alone; `migrate` reads the
    /// catalog and fixes whatever differs (a Plain deploy before it, tables made by an older
    /// plainjobs or by plain.jobs itself), under plain.postgres' own schema lock.
    ///
    /// # Errors
    /// [`Error::SchemaTooNew`] when a newer plainjobs migrated the database (nothing is
    /// changed); [`Error::SchemaChange`] or [`Error::Migration`] naming the change that failed;
    /// [`Error::SchemaUnfixable`] for differences only a person can fix.
    pub async fn migrate(&self) -> Result<Migrated> {
        self.store().migrate().await
    }

    /// How the job tables differ from what this build expects, changing nothing: what
    /// `plainjobs doctor` and a starting worker look at.
    ///
    /// # Errors
    /// A database error.
    pub async fn check_schema(&self) -> Result<SchemaReport> {
        self.store().check_schema().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `pooler` parameter is read before anything is sent: a value it does not know is
    /// refused at once, naming it, with the password redacted.
    #[tokio::test]
    async fn an_unknown_pooler_is_refused_when_connecting() {
        let err = Jobs::connect("postgres://app:secret@127.0.0.1:1/app?pooler=statement")
            .await
            .expect_err("refused");
        let message = err.to_string();
        assert!(matches!(err, Error::Connect { .. }), "{message}");
        assert!(message.contains("pooler=\"statement\""), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }
}
