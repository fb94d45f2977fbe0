//! The operator subcommands, mountable in an application's own clap CLI.
//!
//! The `plainjobs` binary is these commands plus `demo`. An application mounts them to get
//! `myapp jobs worker`, with its own job types registered:
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

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::job::{JobContext, Outcome, State};
use crate::model::{JobProcess, JobResult, JobStatus};
use crate::registry::{LoadError, Registry};
use crate::schedule::{Schedule, ScheduledCommand};
use crate::settings::{parse_duration, Settings};
use crate::{Found, Jobs, ResultFilter, Worker};

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
    /// Enqueue a shell command (the built-in plain.jobs.scheduling.ScheduledCommand job).
    EnqueueCommand(EnqueueCommandArgs),
    /// Counts per queue (pending, processing, results) and workers.
    Stats(JsonArg),
    /// List recent results.
    Results(ResultsArgs),
    /// Show one job (request, process or result) by uuid, with its error text.
    Show(ShowArgs),
    /// Retry failed results now.
    Retry(RetryArgs),
    /// Delete results older than the retention period.
    Clear(ClearArgs),
    /// Delete every pending and running job (asks first).
    Purge(PurgeArgs),
    /// Run one job in the foreground, without a worker.
    Run(RunArgs),
    /// List the registered job names.
    List(JsonArg),
    /// Print the next fire times of a cron expression.
    Schedule(ScheduleArgs),
    /// Serve the web dashboard (on 127.0.0.1:8080 unless --bind says otherwise; any other
    /// address needs admin_token, or admin_username and admin_password, configured).
    #[cfg(feature = "admin")]
    Admin(AdminArgs),
}

/// `admin` options.
#[cfg(feature = "admin")]
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080 or 0.0.0.0:8080.
    #[arg(long, value_name = "ADDR", default_value = crate::admin::DEFAULT_BIND)]
    pub bind: String,
    /// Show everything, change nothing (also admin_read_only in plainjobs.toml).
    #[arg(long)]
    pub read_only: bool,
}

/// `--json`.
#[derive(Debug, Clone, Args)]
pub struct JsonArg {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `worker` options.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Queue to serve (repeatable). Default: the configured queues, else "default".
    #[arg(long = "queue", short = 'q', value_name = "QUEUE")]
    pub queues: Vec<String>,
    /// Jobs run at once.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Jobs claimed ahead of a free slot (handed back on shutdown).
    #[arg(long, value_name = "N")]
    pub max_pending: Option<usize>,
    /// Log throughput this often (0 = never), e.g. 60s.
    #[arg(long, value_name = "DURATION")]
    pub stats_every: Option<String>,
    /// After a shutdown request, cancel jobs still running after this long, e.g. 30s.
    #[arg(long, value_name = "DURATION")]
    pub shutdown_timeout: Option<String>,
}

/// Options shared by the enqueue commands.
#[derive(Debug, Clone, Args)]
pub struct EnqueueOptions {
    /// Queue (default: "default").
    #[arg(long)]
    pub queue: Option<String>,
    /// Run no earlier than this from now, e.g. 90s, 5m.
    #[arg(long, value_name = "DURATION")]
    pub delay: Option<String>,
    /// Priority (higher runs first).
    #[arg(long, allow_negative_numbers = true)]
    pub priority: Option<i16>,
    /// Retries after a failure.
    #[arg(long)]
    pub retries: Option<i16>,
    /// Uniqueness key: refused while a job of this name with this key is pending or running.
    #[arg(long, value_name = "KEY")]
    pub concurrency_key: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `enqueue` arguments.
#[derive(Debug, Clone, Args)]
pub struct EnqueueArgs {
    /// The job's registered name (its job_class).
    pub job_name: String,
    /// Parameters as JSON: an object (keyword arguments), an array (positional arguments), or a
    /// full {"args": [...], "kwargs": {...}} envelope.
    #[arg(long, value_name = "JSON")]
    pub params: Option<String>,
    /// Enqueue options.
    #[command(flatten)]
    pub options: EnqueueOptions,
}

/// `enqueue-command` arguments.
#[derive(Debug, Clone, Args)]
pub struct EnqueueCommandArgs {
    /// The shell command (run with sh -c).
    pub command: String,
    /// Enqueue options.
    #[command(flatten)]
    pub options: EnqueueOptions,
}

/// `results` arguments.
#[derive(Debug, Clone, Args)]
pub struct ResultsArgs {
    /// Only this status (SUCCESSFUL, ERRORED, CANCELLED, DEFERRED, LOST).
    #[arg(long)]
    pub status: Option<String>,
    /// Only this queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Only this job name.
    #[arg(long = "job", value_name = "NAME")]
    pub job: Option<String>,
    /// How many (newest first).
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `show` arguments.
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// A request, process or result uuid.
    pub uuid: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `retry` arguments.
#[derive(Debug, Clone, Args)]
pub struct RetryArgs {
    /// Result uuids to retry.
    pub uuids: Vec<String>,
    /// Retry every failed (ERRORED, LOST, CANCELLED) result not yet retried.
    #[arg(long)]
    pub failed: bool,
    /// With --failed: only this queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `clear` arguments.
#[derive(Debug, Clone, Args)]
pub struct ClearArgs {
    /// Delete results older than this (default: the retention setting, 7d).
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<String>,
}

/// `purge` arguments.
#[derive(Debug, Clone, Args)]
pub struct PurgeArgs {
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `run` arguments.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// A registered job name.
    pub job_name: String,
    /// Parameters as JSON (as for enqueue).
    #[arg(long, value_name = "JSON")]
    pub params: Option<String>,
}

/// `schedule` arguments.
#[derive(Debug, Clone, Args)]
pub struct ScheduleArgs {
    /// A five-field cron expression or @alias, e.g. "0 9 * * 1-5".
    pub cron: String,
    /// How many fire times.
    #[arg(long, default_value_t = 5)]
    pub count: usize,
    /// Start after this time (RFC 3339, e.g. 2026-03-08T00:00:00Z). Default: now.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// IANA time zone (default: the configured one, else UTC).
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A failed command: a usage error (exit 2) or a runtime failure (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input: an unknown name, malformed JSON, a bad duration or cron, bad configuration.
    #[error("{0}")]
    Usage(String),
    /// Something failed at run time (the database, a job).
    #[error("{0}")]
    Failure(String),
}

impl CliError {
    /// 2 for usage errors, 1 for failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failure(_) => 1,
        }
    }
}

impl From<crate::Error> for CliError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::InvalidInput { .. }
            | crate::Error::UnknownJob(_)
            | crate::Error::Params(_)
            | crate::Error::Schedule { .. }
            | crate::Error::UnsupportedUrl(_) => CliError::Usage(e.to_string()),
            other => CliError::Failure(other.to_string()),
        }
    }
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

/// Runs a command and turns the outcome into an exit code, printing errors as one line.
pub async fn main(cli: JobsCli, registry: Registry) -> ExitCode {
    match run(cli.global, cli.command, registry).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Loads settings: file, environment, then the global flags.
///
/// # Errors
/// [`CliError::Usage`] naming the bad key.
pub fn load_settings(global: &GlobalArgs) -> Result<Settings, CliError> {
    let mut settings =
        Settings::load(global.config.as_deref()).map_err(|e| usage(e.to_string()))?;
    if let Some(url) = &global.database_url {
        settings.database_url = Some(url.clone());
    }
    Ok(settings)
}

/// Connects to the configured database, or to the embedded default
/// ([`DEFAULT_DATABASE_URL`](crate::settings::DEFAULT_DATABASE_URL), a SQLite file in the working
/// directory) when none is configured.
///
/// # Errors
/// A failure when the database cannot be reached, a usage error for an unsupported URL.
pub async fn connect(settings: &Settings) -> Result<Jobs, CliError> {
    Ok(Jobs::connect(settings.database_url_or_default()).await?)
}

fn duration_arg(flag: &str, text: &str) -> Result<Duration, CliError> {
    parse_duration(text).map_err(|e| usage(format!("{flag}: {e}")))
}

/// Reads `--params`: an object (kwargs), an array (args), or a full envelope.
///
/// # Errors
/// [`CliError::Usage`] for malformed JSON.
pub fn params_envelope(text: Option<&str>) -> Result<Value, CliError> {
    let Some(text) = text else {
        return Ok(json!({"args": [], "kwargs": {}}));
    };
    let value: Value = serde_json::from_str(text)
        .map_err(|e| usage(format!("--params is not valid JSON ({e}): {text}")))?;
    Ok(match value {
        Value::Object(map)
            if !map.is_empty() && map.keys().all(|k| k == "args" || k == "kwargs") =>
        {
            let mut env = map;
            env.entry("args").or_insert_with(|| json!([]));
            env.entry("kwargs").or_insert_with(|| json!({}));
            Value::Object(env)
        }
        Value::Object(map) => json!({"args": [], "kwargs": map}),
        Value::Array(items) => json!({"args": items, "kwargs": {}}),
        Value::Null => json!({"args": [], "kwargs": {}}),
        other => json!({"args": [other], "kwargs": {}}),
    })
}

fn print_json(v: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| CliError::Failure(e.to_string()))?;
    println!("{text}");
    Ok(())
}

fn parse_uuid(text: &str) -> Result<Uuid, CliError> {
    Uuid::parse_str(text).map_err(|_| usage(format!("{text:?} is not a uuid")))
}

fn time_text(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| "-".into())
}

/// Runs one command.
///
/// # Errors
/// [`CliError`]: usage errors (exit 2) and failures (exit 1).
pub async fn run(global: GlobalArgs, command: Command, registry: Registry) -> Result<(), CliError> {
    let settings = load_settings(&global)?;
    match command {
        Command::Migrate => {
            let jobs = connect(&settings).await?;
            jobs.migrate().await?;
            println!("schema is up to date");
            Ok(())
        }
        Command::Worker(args) => worker(&settings, args, registry).await,
        Command::Enqueue(args) => {
            let params = params_envelope(args.params.as_deref())?;
            let jobs = connect(&settings).await?;
            enqueue(
                &jobs,
                jobs.enqueue_by_name(&args.job_name, params),
                &args.options,
            )
            .await
        }
        Command::EnqueueCommand(args) => {
            let jobs = connect(&settings).await?;
            enqueue(
                &jobs,
                jobs.enqueue(ScheduledCommand(args.command.clone())),
                &args.options,
            )
            .await
        }
        Command::Stats(a) => stats(&settings, a.json).await,
        Command::Results(a) => results(&settings, a).await,
        Command::Show(a) => show(&settings, a).await,
        Command::Retry(a) => retry(&settings, a, &registry).await,
        Command::Clear(a) => {
            let age = match &a.older_than {
                Some(t) => duration_arg("--older-than", t)?,
                None => settings.retention,
            };
            let jobs = connect(&settings).await?;
            let n = jobs.clear_results(age).await?;
            println!("deleted {n} results older than {}s", age.as_secs());
            Ok(())
        }
        Command::Purge(a) => purge(&settings, a).await,
        Command::Run(a) => run_job(&settings, a, &registry).await,
        Command::List(a) => {
            let mut registry = registry;
            registry.register::<ScheduledCommand>();
            let names = registry.names();
            if a.json {
                let list: Vec<Value> = names
                    .iter()
                    .map(|(name, canonical, desc)| json!({"name": name, "canonical": canonical, "description": desc}))
                    .collect();
                return print_json(&list);
            }
            for (name, canonical, desc) in names {
                let alias = if name == canonical {
                    String::new()
                } else {
                    format!(" (alias of {canonical})")
                };
                println!("{name}{alias}  {desc}");
            }
            Ok(())
        }
        Command::Schedule(a) => schedule(&settings, a),
        #[cfg(feature = "admin")]
        Command::Admin(a) => admin(&settings, a, registry).await,
    }
}

/// `plainjobs admin`: the dashboard alone, until Ctrl-C or SIGTERM.
#[cfg(feature = "admin")]
async fn admin(settings: &Settings, a: AdminArgs, registry: Registry) -> Result<(), CliError> {
    let addr: std::net::SocketAddr = a.bind.parse().map_err(|_| {
        usage(format!(
            "--bind {:?} is not an address like 127.0.0.1:8080",
            a.bind
        ))
    })?;
    let jobs = connect(settings).await?;
    jobs.migrate().await?;
    let dashboard = crate::admin::Dashboard::from_settings(jobs, settings)
        .map_err(|e| usage(e.to_string()))?
        .registry(registry);
    let dashboard = if a.read_only {
        dashboard.read_only(true)
    } else {
        dashboard
    };
    crate::admin::serve(dashboard, addr, stop_signal())
        .await
        .map_err(|e| match e {
            crate::admin::ServeError::AuthRequired(_) => usage(e.to_string()),
            other => CliError::Failure(other.to_string()),
        })
}

/// Completes on Ctrl-C or SIGTERM.
#[cfg(feature = "admin")]
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn enqueue(
    _jobs: &Jobs,
    builder: crate::Enqueue<'_>,
    o: &EnqueueOptions,
) -> Result<(), CliError> {
    let mut b = builder.source("plainjobs CLI");
    if let Some(q) = &o.queue {
        b = b.queue(q.clone());
    }
    if let Some(d) = &o.delay {
        b = b.delay(duration_arg("--delay", d)?);
    }
    if let Some(p) = o.priority {
        b = b.priority(p);
    }
    if let Some(r) = o.retries {
        b = b.retries(r);
    }
    if let Some(k) = &o.concurrency_key {
        b = b.concurrency_key(k.clone());
    }
    match b.await? {
        Some(req) => {
            if o.json {
                print_json(&json!({"enqueued": true, "request": req}))
            } else {
                println!(
                    "enqueued {} {} on queue {}",
                    req.job_class, req.uuid, req.queue
                );
                Ok(())
            }
        }
        None => {
            if o.json {
                print_json(&json!({"enqueued": false, "skipped": true}))
            } else {
                println!("skipped: a job with this name and concurrency key is already pending or running");
                Ok(())
            }
        }
    }
}

async fn worker(
    settings: &Settings,
    args: WorkerArgs,
    mut registry: Registry,
) -> Result<(), CliError> {
    let mut config = crate::WorkerConfig::from_settings(settings);
    if let Some(t) = &args.stats_every {
        let d = duration_arg("--stats-every", t)?;
        config.stats_interval = (!d.is_zero()).then_some(d);
    }
    if let Some(t) = &args.shutdown_timeout {
        let d = duration_arg("--shutdown-timeout", t)?;
        config.shutdown_timeout = (!d.is_zero()).then_some(d);
    }
    let queues = if args.queues.is_empty() {
        settings.queues.clone()
    } else {
        args.queues.clone()
    };
    // The standalone worker opts in to shell commands.
    registry.register::<ScheduledCommand>();
    let jobs = connect(settings).await?;
    jobs.migrate().await?;
    let mut worker = Worker::new(jobs)
        .registry(registry)
        .queues(queues)
        .concurrency(args.concurrency.unwrap_or(settings.concurrency))
        .max_pending(args.max_pending.unwrap_or(settings.max_pending))
        .config(config);
    for (target, cron) in &settings.schedules {
        worker = worker.schedule_by_name(target, cron)?;
    }
    worker
        .run()
        .await
        .map_err(|e| CliError::Failure(e.to_string()))
}

async fn stats(settings: &Settings, as_json: bool) -> Result<(), CliError> {
    let jobs = connect(settings).await?;
    let queues = jobs.stats().await?;
    let workers = jobs.workers().await?;
    let cutoff = Utc::now()
        - chrono::Duration::from_std(settings.heartbeat_timeout)
            .unwrap_or_else(|_| chrono::Duration::zero());
    let (stale, active): (Vec<_>, Vec<_>) =
        workers.iter().partition(|w| w.last_heartbeat_at < cutoff);
    if as_json {
        return print_json(&json!({
            "queues": queues,
            "workers": {"active": active.len(), "stale": stale.len(), "list": workers},
        }));
    }
    println!(
        "{:<20} {:>8} {:>10} {:>8} {:>8}  results",
        "queue", "ready", "scheduled", "waiting", "running"
    );
    for q in &queues {
        let results: Vec<String> = q.results.iter().map(|(s, n)| format!("{s}={n}")).collect();
        println!(
            "{:<20} {:>8} {:>10} {:>8} {:>8}  {}",
            q.queue,
            q.ready,
            q.scheduled,
            q.waiting,
            q.running,
            results.join(" ")
        );
    }
    if queues.is_empty() {
        println!("(no jobs)");
    }
    println!("workers: {} active, {} stale", active.len(), stale.len());
    for w in &workers {
        let state = if w.last_heartbeat_at < cutoff {
            "stale"
        } else {
            "active"
        };
        println!(
            "  {} {}:{} queues={} last heartbeat {} ({state})",
            w.worker_id,
            w.hostname,
            w.pid,
            w.queues.join(","),
            time_text(Some(w.last_heartbeat_at))
        );
    }
    Ok(())
}

fn result_line(r: &JobResult) -> String {
    let first_error_line = r.error.lines().next().unwrap_or("");
    format!(
        "{}  {:<10} {:<36} queue={} attempt={}/{} ended={}  {}",
        r.uuid,
        r.status.as_str(),
        r.job_class,
        r.queue,
        r.retry_attempt,
        r.retries,
        time_text(r.ended_at),
        first_error_line
    )
}

async fn results(settings: &Settings, a: ResultsArgs) -> Result<(), CliError> {
    let status = match &a.status {
        Some(s) => Some(s.parse::<JobStatus>().map_err(|e| usage(e.to_string()))?),
        None => None,
    };
    let jobs = connect(settings).await?;
    let list = jobs
        .results(&ResultFilter {
            status,
            queue: a.queue.clone(),
            job_class: a.job.clone(),
            limit: a.limit,
            ..Default::default()
        })
        .await?;
    if a.json {
        return print_json(&list);
    }
    for r in &list {
        println!("{}", result_line(r));
    }
    if list.is_empty() {
        println!("(no results)");
    }
    Ok(())
}

async fn show(settings: &Settings, a: ShowArgs) -> Result<(), CliError> {
    let uuid = parse_uuid(&a.uuid)?;
    let jobs = connect(settings).await?;
    let found = jobs
        .find(uuid)
        .await?
        .ok_or_else(|| CliError::Failure(format!("no job with uuid {uuid}")))?;
    if a.json {
        return print_json(&found);
    }
    let (kind, value) = match &found {
        Found::Request(r) => ("pending request", serde_json::to_value(r)),
        Found::Process(p) => (
            if p.started_at.is_some() {
                "running process"
            } else {
                "claimed process (waiting)"
            },
            serde_json::to_value(p),
        ),
        Found::Result(r) => ("result", serde_json::to_value(r)),
    };
    let value = value.map_err(|e| CliError::Failure(e.to_string()))?;
    println!("{kind}");
    if let Value::Object(map) = value {
        for (k, v) in map {
            if k == "error" {
                continue;
            }
            let text = match v {
                Value::String(s) => s,
                Value::Null => "-".into(),
                other => other.to_string(),
            };
            println!("  {k:<24} {text}");
        }
    }
    if let Found::Result(r) = &found {
        if !r.error.is_empty() {
            println!(
                "  error:\n{}",
                r.error
                    .lines()
                    .map(|l| format!("    {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    Ok(())
}

async fn retry(settings: &Settings, a: RetryArgs, registry: &Registry) -> Result<(), CliError> {
    if a.uuids.is_empty() && !a.failed {
        return Err(usage("give result uuids to retry, or --failed"));
    }
    let ids: Vec<Uuid> = a
        .uuids
        .iter()
        .map(|u| parse_uuid(u))
        .collect::<Result<_, _>>()?;
    let jobs = connect(settings).await?;
    let mut targets = ids;
    if a.failed {
        for status in [JobStatus::Errored, JobStatus::Lost, JobStatus::Cancelled] {
            for r in jobs
                .results(&ResultFilter {
                    status: Some(status),
                    queue: a.queue.clone(),
                    job_class: None,
                    limit: 10_000,
                    ..Default::default()
                })
                .await?
            {
                if r.retry_job_request_uuid.is_none() {
                    targets.push(r.uuid);
                }
            }
        }
    }
    let mut report = Vec::new();
    for uuid in targets {
        let outcome = jobs.retry_result(uuid, registry, true).await?;
        match &outcome {
            Some(req) => {
                if !a.json {
                    println!(
                        "retried {uuid} as {} (attempt {})",
                        req.uuid, req.retry_attempt
                    );
                }
            }
            None => {
                if !a.json {
                    println!("not retried {uuid}: no such failed result, already retried, or refused by its concurrency key");
                }
            }
        }
        report.push(json!({"result": uuid, "retry_request": outcome.map(|r| r.uuid)}));
    }
    if a.json {
        print_json(&report)?;
    }
    Ok(())
}

async fn purge(settings: &Settings, a: PurgeArgs) -> Result<(), CliError> {
    let jobs = connect(settings).await?;
    if !a.yes {
        let stats = jobs.stats().await?;
        let pending: i64 = stats.iter().map(|q| q.ready + q.scheduled).sum();
        let processing: i64 = stats.iter().map(|q| q.waiting + q.running).sum();
        print!(
            "Delete {pending} pending and {processing} processing jobs? Results are kept. [y/N] "
        );
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            println!("nothing deleted");
            return Ok(());
        }
    }
    let crate::Purged {
        requests: r,
        processes: p,
    } = jobs.purge().await?;
    println!("deleted {r} pending and {p} processing jobs");
    Ok(())
}

async fn run_job(settings: &Settings, a: RunArgs, registry: &Registry) -> Result<(), CliError> {
    let mut registry = registry.clone();
    registry.register::<ScheduledCommand>();
    let params = params_envelope(a.params.as_deref())?;
    let job = registry
        .load(&a.job_name, Some(&params))
        .map_err(|e| match e {
            LoadError::Unknown(_) => usage(format!("{e} (see `plainjobs list`)")),
            LoadError::Params(_) => usage(e.to_string()),
        })?;
    let jobs = connect(settings).await?;
    let now = Utc::now();
    let process = JobProcess {
        id: 0,
        uuid: Uuid::new_v4(),
        created_at: now,
        started_at: Some(now),
        job_request_uuid: Uuid::new_v4(),
        requested_at: Some(now),
        job_class: a.job_name.clone(),
        parameters: Some(params),
        priority: 0,
        source: "plainjobs run".into(),
        queue: "default".into(),
        retries: 0,
        retry_attempt: 0,
        concurrency_key: String::new(),
        trace_id: None,
        span_id: None,
        worker_id: Uuid::nil(),
    };
    let ctx = JobContext {
        process,
        state: State::default(),
        jobs,
        shutdown: tokio_util::sync::CancellationToken::new(),
    };
    let began = std::time::Instant::now();
    match job.run(&ctx).await {
        Ok(Outcome::Success) => {
            println!(
                "{} succeeded in {} ms",
                a.job_name,
                began.elapsed().as_millis()
            );
            Ok(())
        }
        Ok(Outcome::Defer { delay, .. }) => {
            println!(
                "{} asked to be deferred for {}s (run it again later)",
                a.job_name,
                delay.as_secs()
            );
            Ok(())
        }
        Err(e) => Err(CliError::Failure(format!(
            "{} failed: {}",
            a.job_name,
            e.report()
        ))),
    }
}

fn schedule(settings: &Settings, a: ScheduleArgs) -> Result<(), CliError> {
    let tz: chrono_tz::Tz = match &a.tz {
        Some(z) => z.parse().map_err(|_| {
            usage(format!(
                "--tz: {z:?} is not an IANA time zone (like Europe/Berlin)"
            ))
        })?,
        None => settings.timezone,
    };
    let schedule = Schedule::parse(&a.cron)
        .map_err(|e| usage(format!("invalid schedule {:?}: {e}", a.cron)))?
        .with_timezone(tz);
    let from = match &a.from {
        Some(t) => crate::params::plain_datetime::parse(t).ok_or_else(|| {
            usage(format!(
                "--from: {t:?} is not a time (use RFC 3339, e.g. 2026-03-08T00:00:00Z)"
            ))
        })?,
        None => Utc::now(),
    };
    let times: Vec<DateTime<Utc>> = schedule.upcoming(from).take(a.count).collect();
    if a.json {
        let list: Vec<BTreeMap<&str, String>> = times
            .iter()
            .map(|t| {
                BTreeMap::from([
                    ("utc", t.to_rfc3339()),
                    ("local", t.with_timezone(&tz).to_rfc3339()),
                    ("unix", t.timestamp().to_string()),
                ])
            })
            .collect();
        return print_json(&list);
    }
    for t in times {
        println!(
            "{}  ({})",
            t.with_timezone(&tz).format("%a %Y-%m-%d %H:%M %Z"),
            t.to_rfc3339()
        );
    }
    Ok(())
}
