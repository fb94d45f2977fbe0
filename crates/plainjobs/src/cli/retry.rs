//! `retry`: failed results now, by any uuid of the job, or every failed one a filter matches.

use clap::Args;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::cli::error::{failure, usage, CliError};
use crate::cli::output::print_json;
use crate::cli::show::parse_uuid;
use crate::cli::values::{queue_name, TimeRange};
use crate::cli::Ctx;
use crate::model::{JobResult, JobStatus};
use crate::registry::Registry;
use crate::{Found, Jobs, ResultFilter};

/// `retry` arguments.
#[derive(Debug, Clone, Args)]
pub struct RetryArgs {
    /// Jobs to retry: any uuid of each (its request, process or result); the job's latest
    /// result must be a failure (ERRORED, LOST or CANCELLED) not retried yet.
    pub uuids: Vec<String>,
    /// Retry every failed result not yet retried (narrowed by --queue, --job, --status and
    /// the time range; those imply --failed).
    #[arg(long)]
    pub failed: bool,
    /// Only results of this queue.
    #[arg(long, value_parser = queue_name)]
    pub queue: Option<String>,
    /// Only results of this job name.
    #[arg(long = "job", value_name = "NAME")]
    pub job: Option<String>,
    /// Only results with this status (ERRORED, LOST or CANCELLED).
    #[arg(long)]
    pub status: Option<String>,
    /// When the results were written.
    #[command(flatten)]
    pub range: TimeRange,
}

impl RetryArgs {
    fn bulk(&self) -> bool {
        self.failed
            || self.queue.is_some()
            || self.job.is_some()
            || self.status.is_some()
            || self.range.is_set()
    }
}

/// What happened to one target.
struct Outcome {
    target: Uuid,
    retried_as: Option<Uuid>,
    problem: Option<String>,
}

pub(crate) async fn retry(ctx: &Ctx, a: RetryArgs, registry: &Registry) -> Result<(), CliError> {
    if a.uuids.is_empty() && !a.bulk() {
        return Err(usage(
            "say what to retry: uuids, or --failed (optionally with --queue, --job, --status, --since, --until)",
        ));
    }
    let ids: Vec<Uuid> = a
        .uuids
        .iter()
        .map(|u| parse_uuid(u))
        .collect::<Result<_, _>>()?;
    let statuses = failure_statuses(a.status.as_deref())?;
    let jobs = ctx.jobs().await?;
    let mut outcomes = Vec::new();
    for id in ids {
        outcomes.push(retry_one(&jobs, registry, id).await?);
    }
    if a.bulk() {
        for r in failed_results(&jobs, &a, &statuses).await? {
            let retried_as = jobs
                .retry_result(r.uuid, registry, true)
                .await?
                .map(|q| q.uuid);
            let problem = retried_as.is_none().then(|| refused(&r));
            outcomes.push(Outcome {
                target: r.uuid,
                retried_as,
                problem,
            });
        }
    }
    report(ctx, &outcomes)
}

fn failure_statuses(status: Option<&str>) -> Result<Vec<JobStatus>, CliError> {
    let Some(text) = status else {
        return Ok(vec![
            JobStatus::Errored,
            JobStatus::Lost,
            JobStatus::Cancelled,
        ]);
    };
    let status: JobStatus = text
        .parse()
        .map_err(|e: crate::model::UnknownStatus| usage(e.to_string()))?;
    if !status.is_failure() {
        return Err(usage(format!(
            "--status {status}: only failures are retried (ERRORED, LOST or CANCELLED)"
        )));
    }
    Ok(vec![status])
}

async fn failed_results(
    jobs: &Jobs,
    a: &RetryArgs,
    statuses: &[JobStatus],
) -> Result<Vec<JobResult>, CliError> {
    let mut found = Vec::new();
    for status in statuses {
        let mut filter = ResultFilter::new().status(*status).limit(100_000);
        filter.queue = a.queue.clone();
        filter.job_class = a.job.clone();
        filter.since = a.range.since;
        filter.until = a.range.until;
        let results = jobs.results(&filter).await?;
        found.extend(
            results
                .into_iter()
                .filter(|r| r.retry_job_request_uuid.is_none()),
        );
    }
    found.sort_by_key(|r| r.id);
    Ok(found)
}

/// Retries the job with this uuid when its latest result is a failure not yet retried; says
/// why not otherwise.
async fn retry_one(jobs: &Jobs, registry: &Registry, id: Uuid) -> Result<Outcome, CliError> {
    let problem = |text: String| Outcome {
        target: id,
        retried_as: None,
        problem: Some(text),
    };
    let result = match jobs.find(id).await? {
        None => return Ok(problem(format!("{id}: no job has this uuid"))),
        Some(Found::Request(r)) => {
            return Ok(problem(format!(
                "{id}: the job is pending (queue {}), not failed: nothing to retry",
                r.queue
            )))
        }
        Some(Found::Process(_)) => {
            return Ok(problem(format!(
                "{id}: the job is running: nothing to retry"
            )))
        }
        Some(Found::Result(r)) => r,
    };
    if !result.status.is_failure() {
        return Ok(problem(format!(
            "{id}: the job ended {}: only ERRORED, LOST and CANCELLED results are retried",
            result.status
        )));
    }
    if let Some(next) = result.retry_job_request_uuid {
        return Ok(problem(format!("{id}: retried already, as request {next}")));
    }
    let retried_as = jobs
        .retry_result(result.uuid, registry, true)
        .await?
        .map(|q| q.uuid);
    Ok(Outcome {
        target: id,
        retried_as,
        problem: retried_as.is_none().then(|| refused(&result)),
    })
}

fn refused(r: &JobResult) -> String {
    format!(
        "{}: not retried: a {} job with concurrency key {:?} is pending or running",
        r.uuid, r.job_class, r.concurrency_key
    )
}

/// Prints what was retried and what was not; fails (exit 1) when anything was not.
fn report(ctx: &Ctx, outcomes: &[Outcome]) -> Result<(), CliError> {
    let problems: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| o.problem.as_deref())
        .collect();
    if ctx.json {
        let list: Vec<Value> = outcomes
            .iter()
            .map(|o| json!({"target": o.target, "result": o.target, "retry_request": o.retried_as, "problem": o.problem}))
            .collect();
        print_json(&list)?;
        return if problems.is_empty() {
            Ok(())
        } else {
            Err(CliError::Reported)
        };
    }
    for o in outcomes {
        if let Some(new) = o.retried_as {
            println!("retried {} as {new}", o.target);
        }
    }
    let retried = outcomes.len() - problems.len();
    if outcomes.is_empty() {
        println!("nothing to retry: no failed result matches");
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(failure(format!(
        "{} of {} not retried:\n  {}",
        problems.len(),
        retried + problems.len(),
        problems.join("\n  ")
    )))
}
