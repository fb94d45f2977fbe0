//! `migrate` and `worker`.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use crate::cli::error::{failure, CliError};
use crate::cli::observe::{finish, metrics_of, serve_metrics, Observe};
use crate::cli::output::print_json;
use crate::cli::values::{at_least_one, duration, queue_name};
use crate::cli::Ctx;
use crate::registry::Registry;
use crate::schedule::{ScheduledCommand, ShellCommand};
use crate::telemetry::hooks::Metrics;
use crate::{Worker, WorkerConfig};

/// `worker` options.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Queue to serve (repeatable). Default: the configured queues, else "default".
    #[arg(long = "queue", short = 'q', value_name = "QUEUE", value_parser = queue_name)]
    pub queues: Vec<String>,
    /// Jobs run at once (at least 1). Default: the `concurrency` setting, 10.
    #[arg(long, value_name = "N", value_parser = at_least_one, allow_negative_numbers = true)]
    pub concurrency: Option<usize>,
    /// Jobs claimed ahead of a free slot (handed back on shutdown).
    #[arg(long, value_name = "N")]
    pub max_pending: Option<usize>,
    /// Log a stats line this often when jobs ran (0 = never), e.g. 1m.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub stats_every: Option<Duration>,
    /// After a shutdown request, cancel jobs still running after this long, e.g. 30s.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub shutdown_timeout: Option<Duration>,
    /// Serve plain.jobs' metrics to Prometheus at http://ADDR/metrics, e.g. 127.0.0.1:9464.
    #[cfg(feature = "otel")]
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

pub(crate) async fn migrate(ctx: &Ctx) -> Result<(), CliError> {
    let jobs = ctx.jobs_creating().await?;
    let migrated = jobs.migrate().await?;
    let db = ctx.database();
    if ctx.json {
        return print_json(&json!({
            "database": db,
            "changes": migrated.changes,
            "version": migrated.version,
            "up_to_date": true,
        }));
    }
    if migrated.changes.is_empty() {
        println!(
            "schema is up to date in {db} (version {}): nothing to change",
            migrated.version
        );
    } else {
        println!("migrated {db} to schema version {}:", migrated.version);
        for change in &migrated.changes {
            println!("  {change}");
        }
        println!("schema is up to date");
    }
    Ok(())
}

pub(crate) async fn worker(
    ctx: &Ctx,
    args: WorkerArgs,
    registry: Registry,
    observe: Observe,
) -> Result<(), CliError> {
    #[cfg(feature = "otel")]
    let addr = args.metrics_addr;
    #[cfg(not(feature = "otel"))]
    let addr = None;
    let (observe, _scrape) = serve_metrics(observe, addr).await?;
    let out = run_worker(ctx, args, registry, metrics_of(&observe)).await;
    finish(&observe);
    out
}

async fn run_worker(
    ctx: &Ctx,
    args: WorkerArgs,
    mut registry: Registry,
    metrics: Option<Metrics>,
) -> Result<(), CliError> {
    let settings = &ctx.settings;
    let mut config = WorkerConfig::from_settings(settings);
    if let Some(d) = args.stats_every {
        config.stats_interval = (!d.is_zero()).then_some(d);
    }
    if let Some(d) = args.shutdown_timeout {
        config.shutdown_timeout = (!d.is_zero()).then_some(d);
    }
    let queues = if args.queues.is_empty() {
        settings.queues.clone()
    } else {
        args.queues.clone()
    };
    // The standalone worker opts in to shell commands.
    registry.register::<ScheduledCommand>();
    registry.register::<ShellCommand>();
    let jobs = ctx.jobs_creating().await?.recording(metrics);
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
    worker.run().await.map_err(|e| failure(e.to_string()))
}
