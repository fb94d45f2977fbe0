//! The operator subcommands, mountable in an application's own clap CLI.
//!
//! The `plainjobs` binary is these commands plus `demo` and `completions`. An application mounts
//! them to get `myapp jobs worker`, with its own job types registered:
//!
//! ```no_run
//! use clap::Parser;
//! # use plainjobs::{Job, JobContext, JobError, Outcome, Registry};
//! # #[derive(serde::Serialize, serde::Deserialize)] struct WelcomeUser { user_id: i64 }
//! # impl Job for WelcomeUser { const NAME: &'static str = "app.WelcomeUser";
//! #   async fn run(&self, _: &JobContext) -> Result<Outcome, JobError> { Ok(Outcome::Success) } }
//!
//! #[derive(Parser)]
//! enum MyApp {
//!     /// Background jobs.
//!     Jobs(plainjobs::cli::JobsCli),
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let mut registry = Registry::new();
//!     registry.register::<WelcomeUser>();
//!     match MyApp::parse() {
//!         MyApp::Jobs(cli) => plainjobs::cli::main(cli, registry).await,
//!     }
//! }
//! ```
//!
//! One file per group of commands: `enqueue.rs`, `worker.rs`, `stats.rs`, `results.rs` (and
//! `show.rs`), `retry.rs`, `purge.rs` (with `clear`), `foreground.rs` (`run`, `list`,
//! `schedule`), `config.rs`, `doctor.rs`; shared parts in `context.rs` (settings and
//! connections), `output.rs` (tables, times), `values.rs` (flag parsers), `watch.rs`
//! (`--watch`) and `error.rs`.

#[cfg(feature = "admin")]
mod admin;
mod config;
mod context;
mod control;
mod doctor;
mod enqueue;
mod error;
mod foreground;
mod observe;
mod output;
mod purge;
mod results;
mod retry;
mod show;
mod stats;
mod values;
mod watch;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

#[cfg(feature = "admin")]
pub use admin::AdminArgs;
pub use config::ConfigArgs;
pub use context::{connect, load_settings, Ctx};
pub use control::{CancelArgs, QueueArgs};
pub use enqueue::{EnqueueArgs, EnqueueCommandArgs, EnqueueOptions};
pub use error::CliError;
pub use foreground::{RunArgs, ScheduleArgs};
pub use purge::{ClearArgs, PurgeArgs};
pub use results::ResultsArgs;
pub use retry::RetryArgs;
pub use show::ShowArgs;
pub use stats::StatsArgs;
pub use values::TimeRange;
pub use worker::WorkerArgs;

use crate::Registry;
use observe::Observe;

/// Options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Database URL: postgres://… or sqlite://FILE. Default: PLAINJOBS_DATABASE_URL, then
    /// DATABASE_URL, then `database_url` in plainjobs.toml, else the SQLite file
    /// plainjobs.sqlite3 in the working directory.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Configuration file. Default: ./plainjobs.toml when it exists.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of text; errors too, as {"error": {"kind", "message", "exit_code"}}
    /// on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The subcommands plus their global options, ready to mount as one clap command.
#[derive(Debug, Clone, Args)]
pub struct JobsCli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Operator commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Create or upgrade the job tables (safe to run again; accepts plain.jobs' tables).
    Migrate,
    /// Run a worker until SIGTERM or Ctrl-C (a second Ctrl-C cancels running jobs).
    Worker(WorkerArgs),
    /// Enqueue any job by name; a worker that knows the name runs it.
    Enqueue(EnqueueArgs),
    /// Enqueue a shell command (plain.jobs' ScheduledCommand job; with --cwd or --env,
    /// plainjobs.ShellCommand).
    EnqueueCommand(EnqueueCommandArgs),
    /// Jobs per queue (ready, scheduled, claimed, running, results) and the workers.
    Stats(StatsArgs),
    /// Recent results, newest first.
    Results(ResultsArgs),
    /// Show one job by any of its uuids (request, process or result), with its error.
    Show(ShowArgs),
    /// Retry failed results now: by uuid, or every failed one a filter matches.
    Retry(RetryArgs),
    /// Delete results older than the retention period.
    Clear(ClearArgs),
    /// Cancel pending and running jobs, all or by queue, job name and time (asks first); each
    /// gets a CANCELLED result.
    Purge(PurgeArgs),
    /// Cancel jobs by any of their uuids: a waiting one is removed, a running one is stopped by
    /// its worker; each gets a CANCELLED result saying who cancelled it, and is not retried.
    Cancel(CancelArgs),
    /// Pause a queue on every worker: they stop claiming from it (running jobs finish).
    Pause(QueueArgs),
    /// Resume a paused queue.
    Resume(QueueArgs),
    /// Run one job in the foreground, without a worker.
    Run(RunArgs),
    /// List the registered job names.
    List,
    /// Print the next fire times of a cron expression.
    Schedule(ScheduleArgs),
    /// Show the configuration in effect and where each value came from.
    #[command(after_long_help = config::reference())]
    Config(ConfigArgs),
    /// Check the installation: the database, the schema, the workers, stuck jobs.
    Doctor,
    /// Serve the web dashboard (on 127.0.0.1:8080 unless --bind says otherwise; any other
    /// address needs admin_token, or admin_username and admin_password, configured).
    #[cfg(feature = "admin")]
    Admin(admin::AdminArgs),
}

/// Runs a command and turns the outcome into an exit code, printing errors as one line (or
/// as JSON with `--json`).
pub async fn main(cli: JobsCli, registry: Registry) -> ExitCode {
    let json = cli.global.json;
    match run(cli.global, cli.command, registry).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.print(json);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs one command.
///
/// # Errors
/// [`CliError`]: usage errors (exit 2) and failures (exit 1).
pub async fn run(global: GlobalArgs, command: Command, registry: Registry) -> Result<(), CliError> {
    run_observed(global, command, registry, Observe::default()).await
}

/// Runs one command with `telemetry` (feature `otel`): every command's handle records on its
/// metrics, `worker --metrics-addr` serves them to Prometheus, and what is buffered is exported
/// before it returns. Build it with [`Telemetry::from_env`](crate::telemetry::Telemetry::from_env)
/// and install its [`tracing_layer`](crate::telemetry::Telemetry::tracing_layer) first.
///
/// # Errors
/// As [`run`].
#[cfg(feature = "otel")]
pub async fn run_with_telemetry(
    global: GlobalArgs,
    command: Command,
    registry: Registry,
    telemetry: crate::telemetry::Telemetry,
) -> Result<(), CliError> {
    run_observed(global, command, registry, telemetry).await
}

async fn run_observed(
    global: GlobalArgs,
    command: Command,
    registry: Registry,
    observe: Observe,
) -> Result<(), CliError> {
    let mut ctx = Ctx::load(&global)?;
    if let Command::Worker(args) = command {
        return worker::worker(&ctx, args, registry, observe).await;
    }
    ctx.metrics = observe::metrics_of(&observe);
    let out = run_command(&ctx, command, registry).await;
    observe::finish(&observe);
    out
}

async fn run_command(ctx: &Ctx, command: Command, registry: Registry) -> Result<(), CliError> {
    match command {
        Command::Migrate => worker::migrate(ctx).await,
        Command::Worker(args) => worker::worker(ctx, args, registry, Observe::default()).await,
        Command::Enqueue(args) => enqueue::enqueue(ctx, args).await,
        Command::EnqueueCommand(args) => enqueue::enqueue_command(ctx, args).await,
        Command::Stats(args) => stats::stats(ctx, args).await,
        Command::Results(args) => results::results(ctx, args).await,
        Command::Show(args) => show::show(ctx, args).await,
        Command::Retry(args) => retry::retry(ctx, args, &registry).await,
        Command::Clear(args) => purge::clear(ctx, args).await,
        Command::Purge(args) => purge::purge(ctx, args).await,
        Command::Cancel(args) => control::cancel(ctx, args).await,
        Command::Pause(args) => control::pause(ctx, args).await,
        Command::Resume(args) => control::resume(ctx, args).await,
        Command::Run(args) => foreground::run_job(ctx, args, &registry).await,
        Command::List => foreground::list(ctx, registry),
        Command::Schedule(args) => foreground::schedule(ctx, args),
        Command::Config(args) => config::config(ctx, args),
        Command::Doctor => doctor::doctor(ctx).await,
        #[cfg(feature = "admin")]
        Command::Admin(args) => admin::admin(ctx, args, registry).await,
    }
}

/// Who is acting, for the results and records an operator's command leaves: the command, the
/// user and the host (`plainjobs cancel (ana@web-1)`).
pub(crate) fn operator(command: &str) -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("{command} ({user}@{host})")
}

/// Reads `--params`: an object (kwargs), an array (args), or a full envelope.
///
/// # Errors
/// [`CliError::Usage`] for malformed JSON.
pub fn params_envelope(text: Option<&str>) -> Result<serde_json::Value, CliError> {
    enqueue::params_envelope(text)
}
