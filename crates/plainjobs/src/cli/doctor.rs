//! `doctor`: is everything in place — the database, the schema, live workers for the queues
//! that have work, nothing stuck. Exit 1 when a check fails; warnings do not fail.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::cli::error::CliError;
use crate::cli::output::print_json;
use crate::cli::stats::{worker_state, WorkerState};
use crate::cli::Ctx;
use crate::model::WorkerHeartbeat;
use crate::settings::approximate_duration;
use crate::Jobs;

/// A ready job waiting longer than this is worth a warning.
const LONG_WAIT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, serde::Serialize)]
struct Check {
    name: &'static str,
    status: Status,
    detail: String,
}

struct Report(Vec<Check>);

impl Report {
    fn add(&mut self, name: &'static str, status: Status, detail: impl Into<String>) {
        self.0.push(Check {
            name,
            status,
            detail: detail.into(),
        });
    }
}

pub(crate) async fn doctor(ctx: &Ctx) -> Result<(), CliError> {
    let mut report = Report(Vec::new());
    let file = ctx
        .settings
        .file()
        .map_or_else(|| "no file".into(), |f| f.display().to_string());
    report.add(
        "configuration",
        Status::Ok,
        format!(
            "loaded ({file}); database URL from {}",
            ctx.settings.origin("database_url")
        ),
    );
    if let Some(jobs) = check_connection(ctx, &mut report).await {
        if check_schema(&jobs, &mut report).await? {
            check_work(ctx, &jobs, &mut report).await?;
        }
    }
    let failed = report.0.iter().any(|c| c.status == Status::Fail);
    if ctx.json {
        print_json(&json!({"ok": !failed, "checks": report.0}))?;
        return if failed {
            Err(CliError::Reported)
        } else {
            Ok(())
        };
    }
    for c in &report.0 {
        let status = match c.status {
            Status::Ok => "ok  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        println!("{status}  {:<13} {}", c.name, c.detail);
    }
    if failed {
        return Err(CliError::Failure(
            "doctor found problems (FAIL above)".into(),
        ));
    }
    Ok(())
}

async fn check_connection(ctx: &Ctx, report: &mut Report) -> Option<Jobs> {
    let began = Instant::now();
    // Connects without creating anything and without the tables check `jobs()` makes: the
    // schema check below reports that.
    let opened = ctx.jobs_as_they_are().await;
    match opened {
        Ok(jobs) => {
            let took = approximate_duration(began.elapsed());
            report.add(
                "database",
                Status::Ok,
                format!("connected to {} in {took}", ctx.database()),
            );
            Some(jobs)
        }
        Err(e) => {
            report.add("database", Status::Fail, e.to_string());
            None
        }
    }
}

/// False when the tables are missing (nothing else can be checked).
async fn check_schema(jobs: &Jobs, report: &mut Report) -> Result<bool, CliError> {
    let schema = jobs.check_schema().await?;
    if !schema.tables {
        report.add(
            "schema",
            Status::Fail,
            "the job tables do not exist: run `plainjobs migrate`",
        );
        return Ok(false);
    }
    let version = schema
        .version
        .map_or_else(|| "none recorded".into(), |v| v.to_string());
    if schema.is_newer() {
        report.add("schema", Status::Fail, format!(
            "migrated by a newer plainjobs (version {version}, this one knows {}): upgrade this command",
            schema.known_version
        ));
    } else if schema.is_current() {
        report.add("schema", Status::Ok, format!("current (version {version})"));
    } else {
        let shown: Vec<&str> = schema.problems.iter().take(5).map(String::as_str).collect();
        let more = schema.problems.len().saturating_sub(shown.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        report.add(
            "schema",
            Status::Fail,
            format!(
                "{} differences ({}{more}): run `plainjobs migrate`",
                schema.problems.len(),
                shown.join("; ")
            ),
        );
    }
    if schema.claim_index {
        report.add("indexes", Status::Ok, "the claim index is in place");
    } else {
        report.add("indexes", Status::Fail, "the claim index is missing or invalid (every claim sorts the queue): run `plainjobs migrate`");
    }
    Ok(true)
}

/// Workers, queues with work and no live worker, jobs held by dead workers, long waits.
async fn check_work(ctx: &Ctx, jobs: &Jobs, report: &mut Report) -> Result<(), CliError> {
    let now = Utc::now();
    let workers = jobs.workers().await?;
    let alive = check_workers(ctx, &workers, now, report);
    check_queues(jobs, &alive, report).await?;
    check_stuck(ctx, jobs, &alive, now, report).await
}

/// Says which workers are alive and which are not; returns the live ones.
fn check_workers<'a>(
    ctx: &Ctx,
    workers: &'a [WorkerHeartbeat],
    now: DateTime<Utc>,
    report: &mut Report,
) -> Vec<&'a WorkerHeartbeat> {
    let mut alive = Vec::new();
    let mut not_alive = Vec::new();
    for w in workers {
        match worker_state(w, &ctx.settings, now) {
            WorkerState::Alive => alive.push(w),
            state => not_alive.push(format!(
                "{} on {} pid {} ({})",
                w.worker_id,
                w.hostname,
                w.pid,
                state.as_str()
            )),
        }
    }
    let status = if alive.is_empty() || !not_alive.is_empty() {
        Status::Warn
    } else {
        Status::Ok
    };
    let mut detail = format!("{} alive", alive.len());
    if !not_alive.is_empty() {
        detail.push_str(&format!("; not alive: {}", not_alive.join(", ")));
    }
    report.add("workers", status, detail);
    alive
}

/// Queues with ready jobs that no live worker serves.
async fn check_queues(
    jobs: &Jobs,
    alive: &[&WorkerHeartbeat],
    report: &mut Report,
) -> Result<(), CliError> {
    let served: BTreeSet<&str> = alive
        .iter()
        .flat_map(|w| w.queues.iter().map(String::as_str))
        .collect();
    let unserved: Vec<String> = jobs
        .stats()
        .await?
        .iter()
        .filter(|q| q.ready > 0 && !served.contains(q.queue.as_str()))
        .map(|q| format!("{} ({} ready)", q.queue, q.ready))
        .collect();
    if unserved.is_empty() {
        let detail = "every queue with ready jobs has a live worker";
        report.add("queues", Status::Ok, detail);
    } else {
        let detail = format!("no live worker serves {}", unserved.join(", "));
        report.add("queues", Status::Warn, detail);
    }
    Ok(())
}

/// Jobs held by workers that are not alive, and ready jobs that have waited long.
async fn check_stuck(
    ctx: &Ctx,
    jobs: &Jobs,
    alive: &[&WorkerHeartbeat],
    now: DateTime<Utc>,
    report: &mut Report,
) -> Result<(), CliError> {
    let live_ids: BTreeSet<_> = alive.iter().map(|w| w.worker_id).collect();
    let orphaned = jobs
        .processes(100_000)
        .await?
        .iter()
        .filter(|p| !live_ids.contains(&p.worker_id))
        .count();
    let longest_wait = jobs
        .requests(1000)
        .await?
        .into_iter()
        .filter(|r| r.start_at.is_none_or(|s| s <= now))
        .map(|r| {
            (now - r.start_at.unwrap_or(r.created_at))
                .to_std()
                .unwrap_or_default()
        })
        .max();
    let mut stuck = Vec::new();
    if orphaned > 0 {
        let timeout = approximate_duration(ctx.settings.heartbeat_timeout);
        stuck.push(format!(
            "{orphaned} jobs held by workers that are not alive (a running worker turns them LOST once their heartbeat is {timeout} old)"
        ));
    }
    if let Some(wait) = longest_wait.filter(|w| *w > LONG_WAIT) {
        stuck.push(format!(
            "a ready job has waited {}",
            approximate_duration(wait)
        ));
    }
    if stuck.is_empty() {
        report.add("stuck jobs", Status::Ok, "none");
    } else {
        report.add("stuck jobs", Status::Warn, stuck.join("; "));
    }
    Ok(())
}
