//! [`WorkerConfig`]: a worker's timing and limits.

use std::time::Duration;

use crate::settings::Settings;

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
    /// Wake on `LISTEN/NOTIFY` (off: workers only poll). With it on, claims also run on
    /// sessions of their own that keep one plan for the claim (session settings need session
    /// connections, as LISTEN does). Behind a transaction-mode pooler
    /// ([`Pooler::Transaction`](crate::Pooler::Transaction)) the store has neither: its workers
    /// are woken only by their own process's inserts, and each claim sets its plan's settings
    /// for its own transaction.
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
    /// A job enqueued through this worker's [`Jobs`](crate::Jobs) handle (or a clone of it) while the
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
    /// Claim only jobs whose name this worker registered (false by default: it claims every job
    /// of its queues, and one it cannot build ends ERRORED as unknown). Turn it on when the
    /// queues are shared with workers that run other job types — plain.jobs' Python workers,
    /// or Rust workers with other registries — so each side leaves the other's jobs alone.
    /// A worker that serves everything pays nothing for it (the claim is unchanged).
    pub only_registered: bool,
    /// Log throughput stats this often (None: never).
    pub stats_interval: Option<Duration>,
    /// Exit with an error after this many consecutive claim failures (30).
    pub max_claim_failures: u32,
    /// The IANA time zone schedules given as text are evaluated in (UTC).
    pub timezone: chrono_tz::Tz,
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
            only_registered: false,
            stats_interval: None,
            max_claim_failures: 30,
            timezone: chrono_tz::UTC,
        }
    }
}

impl WorkerConfig {
    /// The worker timing that configuration (`plainjobs.toml`, `PLAINJOBS_*`) describes; the
    /// rest as [`WorkerConfig::default`].
    pub fn from_settings(settings: &Settings) -> WorkerConfig {
        WorkerConfig {
            heartbeat_interval: settings.heartbeat_interval,
            heartbeat_timeout: settings.heartbeat_timeout,
            rescue_interval: settings.heartbeat_interval,
            poll_interval: settings.poll_interval,
            retention: settings.retention,
            shutdown_timeout: settings.shutdown_timeout,
            listen: settings.listen,
            stats_interval: settings.stats_every,
            timezone: settings.timezone,
            ..WorkerConfig::default()
        }
    }
}
