//! `purge` (pending and running jobs, after a confirmation) and `clear` (old results).

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use clap::Args;
use serde_json::json;

use crate::cli::error::{usage, CliError};
use crate::cli::output::print_json;
use crate::cli::values::{duration, queue_name, TimeRange};
use crate::cli::{operator, Ctx};
use crate::settings::format_duration;
use crate::{JobFilter, Purged};

/// `purge` arguments.
#[derive(Debug, Clone, Args)]
pub struct PurgeArgs {
    /// Do not ask for confirmation (needed when stdin is not a terminal, and with --json).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Only jobs of this queue.
    #[arg(long, value_parser = queue_name)]
    pub queue: Option<String>,
    /// Only jobs of this job name.
    #[arg(long = "job", value_name = "NAME")]
    pub job: Option<String>,
    /// When the jobs were enqueued.
    #[command(flatten)]
    pub range: TimeRange,
}

/// `clear` arguments.
#[derive(Debug, Clone, Args)]
pub struct ClearArgs {
    /// Delete results older than this, e.g. 7d, 12h (default: the retention setting).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub older_than: Option<Duration>,
}

pub(crate) async fn purge(ctx: &Ctx, a: PurgeArgs) -> Result<(), CliError> {
    let mut filter = JobFilter::new();
    filter.queue = a.queue.clone();
    filter.job_class = a.job.clone();
    filter.since = a.range.since;
    filter.until = a.range.until;
    let what = describe(&filter);
    if !a.yes {
        if ctx.json || !std::io::stdin().is_terminal() {
            return Err(usage(format!(
                "purge cancels {what} and asks first, but there is no terminal to ask on: run it in a terminal, or add --yes"
            )));
        }
        if !confirm(&format!(
            "Cancel {what}? Each gets a CANCELLED result; running ones are stopped. [y/N] "
        )) {
            println!("nothing cancelled");
            return Ok(());
        }
    }
    let jobs = ctx.jobs().await?;
    let Purged {
        requests,
        processes,
    } = jobs
        .cancel_where(&filter, &operator("plainjobs purge"))
        .await?;
    if ctx.json {
        return print_json(&json!({"cancelled": {"pending": requests, "running": processes}}));
    }
    println!(
        "cancelled {requests} pending and {processes} running jobs (each has a CANCELLED result; their workers stop the running ones)"
    );
    Ok(())
}

/// `every pending and running job`, `the pending and running jobs of queue emails, …`.
fn describe(f: &JobFilter) -> String {
    let mut parts = Vec::new();
    if let Some(q) = &f.queue {
        parts.push(format!("of queue {q}"));
    }
    if let Some(j) = &f.job_class {
        parts.push(format!("named {j}"));
    }
    if let Some(t) = f.since {
        parts.push(format!("enqueued since {}", t.to_rfc3339()));
    }
    if let Some(t) = f.until {
        parts.push(format!("enqueued before {}", t.to_rfc3339()));
    }
    if parts.is_empty() {
        "every pending and running job".into()
    } else {
        format!("the pending and running jobs {}", parts.join(", "))
    }
}

/// Asks on the terminal; true for y or yes.
fn confirm(question: &str) -> bool {
    print!("{question}");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

pub(crate) async fn clear(ctx: &Ctx, a: ClearArgs) -> Result<(), CliError> {
    let age = a.older_than.unwrap_or(ctx.settings.retention);
    let jobs = ctx.jobs().await?;
    let n = jobs.clear_results(age).await?;
    let age_text = format_duration(age);
    if ctx.json {
        return print_json(
            &json!({"deleted": n, "older_than": age_text, "older_than_seconds": age.as_secs_f64()}),
        );
    }
    println!("deleted {n} results older than {age_text}");
    Ok(())
}
