//! The worker: claims jobs, runs them, records results; heartbeats, rescue, retries, retention
//! and graceful shutdown.
//!
//! A running worker is a handful of tasks around one claim loop:
//! - the **claim loop** takes as many ready jobs as it has free slots, in one statement, and
//!   spawns each; it sleeps on `LISTEN/NOTIFY` (or the next `start_at`, or a poll interval);
//! - a **completer** writes the results of finished jobs, many per statement;
//! - the **heartbeat** keeps this worker's row fresh (claiming pauses while it cannot);
//! - **maintenance** rescues dead workers' jobs, retries, deletes old results, runs schedules.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::job::{Job, State};
use crate::registry::Registry;
use crate::schedule::Schedule;
use crate::{Jobs, Result};

pub(crate) mod maintenance;
pub(crate) mod retry;
mod run;

pub(crate) use run::{take_local_slot, Shared};

/// Timing and limits of a worker. The defaults match plain.jobs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// How often the heartbeat row is refreshed (60 s).
    pub heartbeat_interval: Duration,
    /// A heartbeat older than this means its worker is dead (300 s).
    pub heartbeat_timeout: Duration,
    /// How often rescue of dead workers and own orphans runs (the heartbeat interval).
    pub rescue_interval: Duration,
    /// Longest sleep between claims when no notification comes (1 s).
    pub poll_interval: Duration,
    /// How often the safety-net retry pass runs (60 s).
    pub retry_interval: Duration,
    /// How long results are kept (7 days).
    pub retention: Duration,
    /// How often old results are deleted (1 hour).
    pub retention_interval: Duration,
    /// After a shutdown request, how long running jobs may take before they are cancelled
    /// (None: wait for them).
    pub shutdown_timeout: Option<Duration>,
    /// Wake on `LISTEN/NOTIFY` (turn off behind a transaction-mode pooler; workers then poll).
    /// With it on, claims also run on sessions of their own that keep one plan for the claim
    /// (session settings need session connections, as LISTEN does).
    pub listen: bool,
    /// Claims commit without waiting for their WAL to reach the disk (`synchronous_commit =
    /// off` for the claim's own transaction only; false by default). It takes a disk flush off
    /// the idle enqueue-to-start path, and nothing is lost: a claim that a server crash loses
    /// is a job still queued, and any later durable commit — the job's result included —
    /// flushes the claim first. The price: if the server crashes within a fraction of a second
    /// of a claim, jobs this worker already started are claimed and run again *while the first
    /// run may still be going* (the first run's result is then dropped), where with a durable
    /// claim the first run would simply finish. Turn it on only if every job tolerates two
    /// overlapping runs after a database crash.
    pub asynchronous_claims: bool,
    /// A job enqueued through this worker's [`Jobs`] handle (or a clone of it) while the
    /// worker is idle goes straight to it (true by default): the enqueue inserts the job as
    /// this worker's process, begun, in its one statement, and the job starts as soon as that
    /// commits, with no request row, no notification and no claim in between. That halves the
    /// commits between enqueue and start. Only jobs that start now, on a queue this worker
    /// serves, of a type it has registered, enqueued outside a caller's transaction, and only
    /// while the worker has a free slot, nothing claimed ahead and found nothing more to claim
    /// on its last look; otherwise the job is queued as usual. The returned request then has
    /// `id` 0 (it never had a row); its uuid is the job's identity, as always. Everything after
    /// the start (heartbeats, rescue if this process dies, results, retries) is as for a
    /// claimed job. A job may thereby start before an older one that another process queued a
    /// moment earlier and this worker has not been told of yet. Jobs with a concurrency key and
    /// jobs a running job enqueues through its [`JobContext`](crate::JobContext) (its
    /// follow-ups) are always queued.
    pub local_dispatch: bool,
    /// Log throughput stats this often (None: never).
    pub stats_interval: Option<Duration>,
    /// Exit with an error after this many consecutive claim failures (30).
    pub max_claim_failures: u32,
    /// The IANA time zone schedules given as text are evaluated in (UTC).
    pub timezone: chrono_tz::Tz,
    /// Tests only: this many claims that take jobs commit, but their reply is lost on the way
    /// back (the claim loop sees a connection error).
    #[cfg(test)]
    pub(crate) lose_claim_replies: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            heartbeat_interval: Duration::from_secs(60),
            heartbeat_timeout: Duration::from_secs(300),
            rescue_interval: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            retry_interval: Duration::from_secs(60),
            retention: Duration::from_secs(7 * 24 * 3600),
            retention_interval: Duration::from_secs(3600),
            shutdown_timeout: None,
            listen: true,
            asynchronous_claims: false,
            local_dispatch: true,
            stats_interval: None,
            max_claim_failures: 30,
            timezone: chrono_tz::UTC,
            #[cfg(test)]
            lose_claim_replies: Default::default(),
        }
    }
}

/// A worker being configured; [`run`](Worker::run), [`run_until`](Worker::run_until) or
/// [`spawn`](Worker::spawn) it.
///
/// # Example
/// ```no_run
/// # use plainjobs::{Job, JobContext, JobError, Jobs, Outcome, Worker};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct WelcomeUser { user_id: i64 }
/// # impl Job for WelcomeUser { const NAME: &'static str = "app.WelcomeUser";
/// #   async fn run(&self, _: &JobContext) -> Result<Outcome, JobError> { Ok(Outcome::Success) } }
/// # struct Mailer;
/// # async fn demo(jobs: Jobs) -> plainjobs::Result<()> {
/// Worker::new(jobs)
///     .register::<WelcomeUser>()
///     .state(Mailer)
///     .queues(["default", "emails"])
///     .concurrency(16)
///     .run()            // until SIGTERM or Ctrl-C; a second Ctrl-C cancels running jobs
///     .await
/// # }
/// ```
pub struct Worker {
    pub(crate) jobs: Jobs,
    pub(crate) registry: Registry,
    pub(crate) state: State,
    pub(crate) queues: Vec<String>,
    pub(crate) concurrency: usize,
    pub(crate) max_pending: usize,
    pub(crate) config: WorkerConfig,
    pub(crate) schedules: Vec<maintenance::ScheduledJob>,
    pub(crate) clock: Option<maintenance::Clock>,
}

impl Worker {
    /// A worker on `jobs`, serving queue `"default"` with 10 slots.
    pub fn new(jobs: Jobs) -> Worker {
        Worker {
            jobs,
            registry: Registry::new(),
            state: State::default(),
            queues: vec!["default".to_string()],
            concurrency: 10,
            max_pending: 100,
            config: WorkerConfig::default(),
            schedules: Vec::new(),
            clock: None,
        }
    }

    /// Replaces the clock the scheduling pass reads ("now"), for tests that step through
    /// several occurrences without waiting for them. Ready-times and heartbeats always use the
    /// database's clock.
    #[doc(hidden)]
    pub fn schedule_clock(
        mut self,
        now: impl Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync + 'static,
    ) -> Self {
        self.clock = Some(std::sync::Arc::new(now));
        self
    }

    /// Registers a job type (by its name and aliases).
    pub fn register<J: Job>(mut self) -> Self {
        self.registry.register::<J>();
        self
    }

    /// Merges in a prepared registry (names registered before stay, unless it has them too).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry.extend(&registry);
        self
    }

    /// Shared application state for jobs (`ctx.state::<T>()`), one value per type.
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// The queues to serve.
    pub fn queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// How many jobs run at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// At most how many jobs may be claimed ahead of a free slot (100). The worker claims
    /// ahead only as many as can start within about 50 ms at the pace jobs have been running
    /// (none for slow jobs, none before the first job ended), so a job never waits locally
    /// behind long ones; unstarted ones are handed back on shutdown. Claiming ahead is what
    /// lets a claim and a result write carry many jobs each. 0 turns it off.
    pub fn max_pending(mut self, n: usize) -> Self {
        self.max_pending = n;
        self
    }

    /// Replaces the timing configuration, time zone included: call it before
    /// [`timezone`](Worker::timezone) and [`shutdown_timeout`](Worker::shutdown_timeout).
    pub fn config(mut self, config: WorkerConfig) -> Self {
        self.config = config;
        self
    }

    /// Cancels jobs still running this long after a shutdown request.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = Some(timeout);
        self
    }

    /// Runs `job` on a cron schedule (five fields or an `@alias`), evaluated in the configured
    /// time zone. Each occurrence is enqueued once across any number of workers, by the workers
    /// that serve the job's default queue.
    ///
    /// # Errors
    /// [`Error::Schedule`](crate::Error::Schedule) naming the bad field and value, or a schedule
    /// that can never fire.
    pub fn schedule<J: Job>(self, cron: &str, job: J) -> Result<Self> {
        let schedule = Schedule::parse(cron).map_err(|source| crate::Error::Schedule {
            expression: cron.to_string(),
            source,
        })?;
        Ok(self.push_schedule(Box::new(job), schedule, true))
    }

    /// Runs `job` on a prepared [`Schedule`] (its own time zone is kept).
    pub fn schedule_with<J: Job>(self, schedule: Schedule, job: J) -> Self {
        self.push_schedule(Box::new(job), schedule, false)
    }

    /// A schedule from configuration, as plain's `JOBS_SCHEDULE`: `target` is a registered job
    /// name (built with no parameters) or `cmd:<shell command>` (which registers
    /// [`ScheduledCommand`](crate::schedule::ScheduledCommand)).
    ///
    /// # Errors
    /// [`Error::UnknownJob`](crate::Error::UnknownJob), [`Error::Params`](crate::Error::Params)
    /// when the job needs parameters, or [`Error::Schedule`](crate::Error::Schedule).
    pub fn schedule_by_name(mut self, target: &str, cron: &str) -> Result<Self> {
        let schedule = Schedule::parse(cron).map_err(|source| crate::Error::Schedule {
            expression: cron.to_string(),
            source,
        })?;
        let job: Box<dyn crate::registry::ErasedJob> =
            if let Some(cmd) = target.strip_prefix("cmd:") {
                self.registry
                    .register::<crate::schedule::ScheduledCommand>();
                Box::new(crate::schedule::ScheduledCommand(cmd.trim().to_string()))
            } else {
                self.registry.load(target, None).map_err(|e| match e {
                    crate::registry::LoadError::Unknown(name) => crate::Error::UnknownJob(name),
                    crate::registry::LoadError::Params(p) => crate::Error::Params(p),
                })?
            };
        Ok(self.push_schedule(job, schedule, true))
    }

    /// The time zone for schedules given as text (default UTC).
    pub fn timezone(mut self, tz: chrono_tz::Tz) -> Self {
        self.config.timezone = tz;
        self
    }

    fn push_schedule(
        mut self,
        job: Box<dyn crate::registry::ErasedJob>,
        schedule: Schedule,
        zone_from_config: bool,
    ) -> Self {
        self.schedules.push(maintenance::ScheduledJob {
            job,
            schedule,
            stamped: None,
            zone_from_config,
        });
        self
    }

    /// Runs until `signal` completes, then shuts down gracefully.
    ///
    /// # Errors
    /// [`Error::ClaimFailures`](crate::Error::ClaimFailures) when claiming failed too many times in a row, or
    /// a database error when the worker cannot register at all.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let handle = self.spawn();
        let stop = handle.stop.clone();
        let waiter = tokio::spawn(async move {
            signal.await;
            stop.cancel();
        });
        let out = handle.join().await;
        waiter.abort();
        out
    }

    /// Runs until SIGTERM or Ctrl-C (graceful: running jobs finish); a second Ctrl-C or SIGTERM
    /// cancels the jobs still running.
    ///
    /// # Errors
    /// As [`Worker::run_until`].
    pub async fn run(self) -> Result<()> {
        let handle = self.spawn();
        let (stop, abort) = (handle.stop.clone(), handle.abort.clone());
        let signals = tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested: finishing running jobs (again to cancel them)");
            stop.cancel();
            shutdown_signal().await;
            tracing::warn!("second shutdown request: cancelling running jobs");
            abort.cancel();
        });
        let out = handle.join().await;
        signals.abort();
        out
    }

    /// Starts the worker on the current runtime and returns a handle to stop it.
    pub fn spawn(self) -> WorkerHandle {
        let stop = CancellationToken::new();
        let abort = CancellationToken::new();
        let task = tokio::spawn(run::run(self, stop.clone(), abort.clone()));
        WorkerHandle { stop, abort, task }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A running worker.
pub struct WorkerHandle {
    stop: CancellationToken,
    abort: CancellationToken,
    task: JoinHandle<Result<()>>,
}

impl WorkerHandle {
    /// Asks for a graceful shutdown: stop claiming, hand back unstarted jobs, let running ones
    /// finish (up to the shutdown timeout).
    pub fn shutdown(&self) {
        self.stop.cancel();
    }

    /// Cancels the jobs still running (they become CANCELLED, and are retried if they may be).
    pub fn abort(&self) {
        self.stop.cancel();
        self.abort.cancel();
    }

    /// Waits for the worker to end.
    ///
    /// # Errors
    /// The worker's own error, or [`Error::WorkerTask`](crate::Error::WorkerTask) if its task panicked.
    pub async fn join(self) -> Result<()> {
        match self.task.await {
            Ok(out) => out,
            Err(e) => Err(crate::Error::WorkerTask(e)),
        }
    }

    /// Graceful shutdown, then waits.
    ///
    /// # Errors
    /// As [`WorkerHandle::join`].
    pub async fn stop(self) -> Result<()> {
        self.shutdown();
        self.join().await
    }
}
