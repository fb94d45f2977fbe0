//! The body of one chaos worker process (`plainjobs-chaos worker`): a plainjobs worker that
//! runs [`ChaosJob`]s until SIGTERM, with the short timings of [`Timings`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use plainjobs::{ConnectOptions, Jobs, Worker, WorkerConfig};

use crate::job::ChaosJob;
use crate::runlog::RunLog;

/// Worker timings shared by the worker processes and the orchestrator (which waits on them).
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    /// How long a worker waits for running jobs after SIGTERM before cancelling them.
    pub shutdown_timeout: Duration,
}

pub const TIMINGS: Timings = Timings {
    heartbeat_interval: Duration::from_millis(500),
    heartbeat_timeout: Duration::from_secs(3),
    shutdown_timeout: Duration::from_secs(1),
};

/// What a worker process is told on its command line.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// The database (its application_name names this process, for pg_terminate_backend).
    #[arg(long)]
    pub url: String,
    /// The run log this process appends to.
    #[arg(long)]
    pub log: PathBuf,
    #[arg(long, default_value_t = 6)]
    pub concurrency: usize,
    /// Wake on LISTEN/NOTIFY (off: poll only).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub listen: bool,
}

pub fn worker_config(listen: bool) -> WorkerConfig {
    let mut c = WorkerConfig::default();
    c.heartbeat_interval = TIMINGS.heartbeat_interval;
    c.heartbeat_timeout = TIMINGS.heartbeat_timeout;
    c.rescue_interval = TIMINGS.heartbeat_interval;
    c.poll_interval = Duration::from_millis(250);
    c.retry_interval = Duration::from_secs(1);
    c.shutdown_timeout = Some(TIMINGS.shutdown_timeout);
    c.listen = listen;
    c
}

/// Runs the worker until SIGTERM (or a fatal error).
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    tokio::spawn(exit_when_orphaned());
    let log = Arc::new(RunLog::open(&args.log)?);
    let jobs = connect_patiently(&args.url).await?;
    Worker::new(jobs)
        .register::<ChaosJob>()
        .state(log)
        .config(worker_config(args.listen))
        .concurrency(args.concurrency)
        .run()
        .await
        .context("worker")
}

/// Exits the process once its parent (the orchestrator) is gone: an orchestrator that was
/// SIGKILLed runs no clean-up, and its workers must not run on. The parent is polled rather
/// than asked to signal (PR_SET_PDEATHSIG fires when the *thread* that started the child
/// exits, which in a thread pool is not the orchestrator's end).
async fn exit_when_orphaned() {
    // SAFETY: getppid has no preconditions and cannot fail.
    let parent = unsafe { libc::getppid() };
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // SAFETY: as above.
        if unsafe { libc::getppid() } != parent {
            eprintln!("plainjobs-chaos worker: the orchestrator is gone; exiting");
            std::process::exit(3);
        }
    }
}

/// A worker started while the database restarts keeps trying for a while, as a supervisor
/// restarting it would.
async fn connect_patiently(url: &str) -> anyhow::Result<Jobs> {
    let options = ConnectOptions {
        max_connections: 8,
        ..ConnectOptions::default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Jobs::connect_with(url, options.clone()).await {
            Ok(jobs) => return Ok(jobs),
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(error = %e, "cannot connect yet");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e).context("connect"),
        }
    }
}
