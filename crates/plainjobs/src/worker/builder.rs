//! [`Worker`]: a worker being configured.

use std::future::Future;
use std::time::Duration;

use super::core::Shutdown;
use super::handle::{stop_on_signals, WorkerHandle};
use super::maintenance::{Clock, ScheduledJob};
use super::pace::Counters;
use super::{runtime, WorkerConfig};
use crate::job::{Job, State};
use crate::registry::Registry;
use crate::schedule::Schedule;
use crate::{Jobs, Result};

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
    pub(crate) schedules: Vec<ScheduledJob>,
    pub(crate) clock: Option<Clock>,
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
            max_pending: 200,
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

    /// At most how many jobs may be claimed ahead of a free slot (200). The worker claims
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
        self.schedules.push(ScheduledJob {
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
        let stop = handle.shutdown.stop.clone();
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
        let signals = tokio::spawn(stop_on_signals(handle.shutdown.clone()));
        let out = handle.join().await;
        signals.abort();
        out
    }

    /// Starts the worker on the current runtime and returns a handle to stop it.
    pub fn spawn(self) -> WorkerHandle {
        let shutdown = Shutdown::default();
        let counters = std::sync::Arc::new(Counters::default());
        let task = tokio::spawn(runtime::run(self, shutdown.clone(), counters.clone()));
        WorkerHandle {
            shutdown,
            task,
            counters,
        }
    }
}
