//! `results`: recent results as a table (newest first); `--watch` to follow them.

use std::time::Duration;

use chrono::Utc;
use clap::Args;
use serde_json::json;

use crate::cli::error::{usage, CliError};
use crate::cli::output::{ago, clip, job_label, render, table, took};
use crate::cli::values::{duration, queue_name, TimeRange};
use crate::cli::watch::{show_or_watch, View};
use crate::cli::Ctx;
use crate::model::{JobResult, JobStatus};
use crate::{Jobs, ResultFilter};

/// `results` arguments.
#[derive(Debug, Clone, Args)]
pub struct ResultsArgs {
    /// Only this status (SUCCESSFUL, ERRORED, CANCELLED, DEFERRED, LOST).
    #[arg(long)]
    pub status: Option<String>,
    /// Only this queue.
    #[arg(long, value_parser = queue_name)]
    pub queue: Option<String>,
    /// Only this job name.
    #[arg(long = "job", value_name = "NAME")]
    pub job: Option<String>,
    /// When the results were written.
    #[command(flatten)]
    pub range: TimeRange,
    /// How many (newest first).
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    /// Show the results again every DURATION (default 2s) until Ctrl-C.
    #[arg(long, value_name = "DURATION", value_parser = duration, num_args = 0..=1,
          default_missing_value = "2s")]
    pub watch: Option<Duration>,
}

/// The widest error shown in the table (`plainjobs show UUID` has all of it).
const ERROR_WIDTH: usize = 60;

pub(crate) async fn results(ctx: &Ctx, a: ResultsArgs) -> Result<(), CliError> {
    let mut filter = ResultFilter::new().limit(a.limit);
    filter.status = match &a.status {
        Some(s) => Some(s.parse::<JobStatus>().map_err(|e| usage(e.to_string()))?),
        None => None,
    };
    filter.queue = a.queue.clone();
    filter.job_class = a.job.clone();
    filter.since = a.range.since;
    filter.until = a.range.until;
    let jobs = ctx.jobs().await?;
    show_or_watch(ctx.json, a.watch, || view(&jobs, &filter)).await
}

async fn view(jobs: &Jobs, filter: &ResultFilter) -> Result<View, CliError> {
    let list = jobs.results(filter).await?;
    Ok(View {
        text: result_table(&list),
        json: json!(list),
    })
}

/// Newest first: what ran, how it ended, how long it took, when, what follows, the error.
pub(crate) fn result_table(list: &[JobResult]) -> String {
    if list.is_empty() {
        return "(no results)".into();
    }
    let now = Utc::now();
    let mut t = table(
        &[
            "RESULT", "STATUS", "JOB", "QUEUE", "ATTEMPT", "TOOK", "ENDED", "NEXT", "ERROR",
        ],
        &["ATTEMPT", "TOOK"],
    );
    for r in list {
        let next = match (r.retry_job_request_uuid, r.status) {
            (None, _) => "-",
            (Some(_), JobStatus::Deferred) => "deferred",
            (Some(_), _) => "retried",
        };
        t.add_row(vec![
            r.uuid.to_string(),
            r.status.as_str().to_string(),
            clip(&job_label(&r.job_class, r.parameters.as_ref()), 40),
            r.queue.clone(),
            format!("{}/{}", r.retry_attempt, r.retries),
            took(r.started_at, r.ended_at),
            r.ended_at.map_or_else(|| "-".into(), |t| ago(t, now)),
            next.into(),
            clip(&r.error, ERROR_WIDTH),
        ]);
    }
    render(&t)
}
