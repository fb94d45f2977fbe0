//! Commands that need no worker: `run` (one job in the foreground), `list`, `schedule`.

use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::cli::enqueue::params_envelope;
use crate::cli::error::{failure, usage, CliError};
use crate::cli::output::print_json;
use crate::cli::Ctx;
use crate::job::{JobContext, Outcome, State};
use crate::model::JobProcess;
use crate::registry::{LoadError, Registry};
use crate::schedule::{Schedule, ScheduledCommand, ShellCommand};
use crate::settings::{approximate_duration, format_duration};

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
}

pub(crate) async fn run_job(ctx: &Ctx, a: RunArgs, registry: &Registry) -> Result<(), CliError> {
    let mut registry = registry.clone();
    registry.register::<ScheduledCommand>();
    registry.register::<ShellCommand>();
    let params = params_envelope(a.params.as_deref())?;
    let job = registry
        .load(&a.job_name, Some(&params))
        .map_err(|e| match e {
            LoadError::Unknown(_) => usage(format!("{e} (see `plainjobs list`)")),
            LoadError::Params(_) => usage(e.to_string()),
        })?;
    let jobs = ctx.jobs_creating().await?;
    let process = foreground_process(&a.job_name, params);
    let ctx_job = JobContext {
        process,
        state: State::default(),
        jobs,
        shutdown: tokio_util::sync::CancellationToken::new(),
    };
    let began = std::time::Instant::now();
    let outcome = job.run(&ctx_job).await;
    let took = began.elapsed();
    let name = &a.job_name;
    match outcome {
        Ok(Outcome::Success) => {
            if ctx.json {
                return print_json(
                    &json!({"job": name, "outcome": "succeeded", "duration_ms": took.as_millis() as u64}),
                );
            }
            println!("{name} succeeded in {}", approximate_duration(took));
            Ok(())
        }
        Ok(Outcome::Defer { delay, .. }) => {
            if ctx.json {
                return print_json(
                    &json!({"job": name, "outcome": "deferred", "delay": format_duration(delay)}),
                );
            }
            println!(
                "{name} asked to be deferred for {} (run it again later)",
                format_duration(delay)
            );
            Ok(())
        }
        Err(e) => Err(failure(format!("{name} failed: {}", e.report()))),
    }
}

/// The process row a foreground run pretends to be (never stored).
fn foreground_process(job_name: &str, params: Value) -> JobProcess {
    let now = Utc::now();
    JobProcess {
        id: 0,
        uuid: Uuid::new_v4(),
        created_at: now,
        started_at: Some(now),
        job_request_uuid: Uuid::new_v4(),
        requested_at: Some(now),
        job_class: job_name.to_string(),
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
    }
}

pub(crate) fn list(ctx: &Ctx, mut registry: Registry) -> Result<(), CliError> {
    registry.register::<ScheduledCommand>();
    registry.register::<ShellCommand>();
    let names = registry.names();
    if ctx.json {
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

pub(crate) fn schedule(ctx: &Ctx, a: ScheduleArgs) -> Result<(), CliError> {
    let tz: chrono_tz::Tz = match &a.tz {
        Some(z) => z.parse().map_err(|_| {
            usage(format!(
                "--tz: {z:?} is not an IANA time zone (like Europe/Berlin)"
            ))
        })?,
        None => ctx.settings.timezone,
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
    if ctx.json {
        let list: Vec<Value> = times
            .iter()
            .map(|t| {
                json!({
                    "utc": t.to_rfc3339(),
                    "local": t.with_timezone(&tz).to_rfc3339(),
                    "unix": t.timestamp().to_string(),
                })
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
