//! `enqueue` and `enqueue-command`.

use std::time::Duration;

use chrono::Utc;
use clap::Args;
use serde_json::{json, Value};

use crate::cli::error::{usage, CliError};
use crate::cli::output::{ago, job_label, print_json};
use crate::cli::values::{duration, queue_name};
use crate::cli::Ctx;
use crate::schedule::{ScheduledCommand, ShellCommand};
use crate::settings::format_duration;
use crate::{Enqueue, Found, Job, Jobs};

/// Options shared by the enqueue commands.
#[derive(Debug, Clone, Args)]
pub struct EnqueueOptions {
    /// Queue (default: the job's, "default" for shell commands).
    #[arg(long, value_parser = queue_name)]
    pub queue: Option<String>,
    /// Run no earlier than this from now, e.g. 90s, 5m, 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub delay: Option<Duration>,
    /// Priority (higher runs first).
    #[arg(long, allow_negative_numbers = true)]
    pub priority: Option<i16>,
    /// Retries after a failure.
    #[arg(long)]
    pub retries: Option<i16>,
    /// Uniqueness key: refused while a job of this name with this key is pending or running
    /// ("" for none).
    #[arg(long, value_name = "KEY")]
    pub concurrency_key: Option<String>,
    /// Stop the job if it runs longer than this, e.g. 30s, 10m (recorded ERRORED, "Timed
    /// out", and retried when it has retries left).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub timeout: Option<Duration>,
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
    /// The shell command (run with sh -c). Its default concurrency key is the command itself
    /// (a command over 255 characters: its start and a hash), so the same command is not
    /// enqueued twice while one is pending or running.
    pub command: String,
    /// Run it in this directory (then it is a plainjobs.ShellCommand job, which plain.jobs
    /// does not know; without --cwd and --env it is plain.jobs' ScheduledCommand).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Set this variable for it, NAME=VALUE (repeatable; a plainjobs.ShellCommand job).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = variable)]
    pub env: Vec<(String, String)>,
    /// Enqueue options.
    #[command(flatten)]
    pub options: EnqueueOptions,
}

pub(crate) async fn enqueue(ctx: &Ctx, args: EnqueueArgs) -> Result<(), CliError> {
    let params = params_envelope(args.params.as_deref())?;
    if args.job_name.trim().is_empty() {
        return Err(usage(
            "the job name is empty: give a registered name (see `plainjobs list`)",
        ));
    }
    let jobs = ctx.jobs().await?;
    let key = args.options.concurrency_key.clone().unwrap_or_default();
    let builder = jobs.enqueue_by_name(&args.job_name, params);
    submit(ctx, &jobs, builder, &args.options, &args.job_name, &key).await
}

pub(crate) async fn enqueue_command(ctx: &Ctx, args: EnqueueCommandArgs) -> Result<(), CliError> {
    if args.command.trim().is_empty() {
        return Err(usage(
            "the command is empty: give the shell command to run, e.g. plainjobs enqueue-command 'echo hi'",
        ));
    }
    let jobs = ctx.jobs().await?;
    let chosen_key = args.options.concurrency_key.clone();
    if args.cwd.is_none() && args.env.is_empty() {
        let job = ScheduledCommand(args.command.clone());
        let key = chosen_key.unwrap_or_else(|| job.default_concurrency_key());
        let builder = jobs.enqueue(job);
        return submit(
            ctx,
            &jobs,
            builder,
            &args.options,
            ScheduledCommand::NAME,
            &key,
        )
        .await;
    }
    let mut job = ShellCommand::new(args.command.clone());
    job.cwd = args.cwd.clone();
    job.env = args.env.iter().cloned().collect();
    let key = chosen_key.unwrap_or_else(|| job.default_concurrency_key());
    let builder = jobs.enqueue(job);
    submit(ctx, &jobs, builder, &args.options, ShellCommand::NAME, &key).await
}

/// `NAME=VALUE`, NAME a shell variable name.
fn variable(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "{name:?} is not a variable name (letters, digits and _, not starting with a digit)"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// Applies the options, enqueues, and reports the request — or which job refused it.
async fn submit(
    ctx: &Ctx,
    jobs: &Jobs,
    builder: Enqueue<'_>,
    o: &EnqueueOptions,
    job_class: &str,
    key: &str,
) -> Result<(), CliError> {
    let mut b = builder.source("plainjobs CLI");
    if let Some(q) = &o.queue {
        b = b.queue(q.clone());
    }
    if let Some(d) = o.delay {
        b = b.delay(d);
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
    if let Some(t) = o.timeout {
        b = b.timeout(t);
    }
    let Some(req) = b.await? else {
        return report_skip(ctx, jobs, job_class, key).await;
    };
    if ctx.json {
        return print_json(&json!({"enqueued": true, "request": req}));
    }
    let mut line = format!(
        "enqueued {} {} on queue {}",
        req.job_class, req.uuid, req.queue
    );
    if let Some(start) = req.start_at {
        line.push_str(&format!(", starting {}", ago(start, Utc::now())));
    }
    if let Some(t) = o.timeout {
        line.push_str(&format!(", time limit {}", format_duration(t)));
    }
    println!("{line}");
    Ok(())
}

/// A duplicate refused by its concurrency key: which job holds the key, and how to enqueue
/// anyway. Not an error (exit 0): refusing duplicates is what the key is for.
async fn report_skip(ctx: &Ctx, jobs: &Jobs, job_class: &str, key: &str) -> Result<(), CliError> {
    let holders = jobs.holding_key(job_class, key).await?;
    let how =
        "to enqueue it anyway, give it another key with --concurrency-key KEY (\"\" for none)";
    if ctx.json {
        return print_json(&json!({
            "enqueued": false,
            "skipped": true,
            "reason": format!("a {job_class} job with concurrency key {key:?} is pending or running"),
            "concurrency_key": key,
            "held_by": holders,
            "hint": how,
        }));
    }
    println!(
        "skipped: a job with this name and concurrency key {key:?} is already pending or running"
    );
    let now = Utc::now();
    for holder in holders.iter().take(3) {
        let text = match holder {
            Found::Request(r) => format!(
                "pending: request {} ({}, queue {}, enqueued {})",
                r.uuid,
                job_label(&r.job_class, r.parameters.as_ref()),
                r.queue,
                ago(r.created_at, now)
            ),
            Found::Process(p) => format!(
                "{}: process {} ({}, queue {}, claimed {})",
                if p.started_at.is_some() {
                    "running"
                } else {
                    "claimed"
                },
                p.uuid,
                job_label(&p.job_class, p.parameters.as_ref()),
                p.queue,
                ago(p.created_at, now)
            ),
            Found::Result(_) => continue,
        };
        println!("  {text}");
    }
    println!("  {how}");
    Ok(())
}

/// Reads `--params`: an object (kwargs), an array (args), or a full envelope.
pub(crate) fn params_envelope(text: Option<&str>) -> Result<Value, CliError> {
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
