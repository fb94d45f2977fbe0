//! The configured cron schedules: each one's next fire times, its occurrence waiting to run,
//! and its last runs (results whose concurrency key is the schedule's
//! `"{key}:scheduled:{unix seconds}"`).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum_csrf::CsrfToken;
use chrono::Utc;

use super::results::status_class;
use crate::admin::error::DashboardError;
use crate::admin::format;
use crate::admin::web::{render, App, Base, Chrome};
use crate::admin::ScheduleEntry;
use crate::registry::Registry;
use crate::schedule::ScheduledCommand;
use crate::Job;

/// Fire times and runs shown per schedule.
const SHOWN: usize = 5;

/// One schedule, as shown.
#[derive(Debug, Clone)]
pub(crate) struct ScheduleView {
    pub target: String,
    pub cron: String,
    pub job_class: String,
    pub problem: String,
    pub next: Vec<String>,
    pub pending: Vec<RunView>,
    pub runs: Vec<RunView>,
}

/// An occurrence: enqueued or run.
#[derive(Debug, Clone)]
pub(crate) struct RunView {
    pub uuid: String,
    pub at: String,
    pub status: &'static str,
    pub status_class: &'static str,
    pub took: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "admin/schedules.html")]
struct SchedulesPage<'a> {
    chrome: Chrome,
    base: &'a str,
    schedules: &'a [ScheduleView],
    timezone: String,
}

/// `GET /schedules`.
pub(crate) async fn page(
    State(app): State<App>,
    base: Base,
    token: CsrfToken,
) -> Result<Response, DashboardError> {
    let mut schedules = Vec::new();
    for entry in &app.schedules {
        schedules.push(schedule(&app, entry).await?);
    }
    let prefix = base.0.clone();
    let chrome = Chrome::new(&app, base, &token, "schedules")?;
    let page = SchedulesPage {
        chrome,
        base: &prefix,
        schedules: &schedules,
        timezone: app.timezone.to_string(),
    };
    render(token, &page)
}

/// The job class and key prefix of a schedule's occurrences: `cmd:` schedules run
/// `ScheduledCommand` keyed by the command; a job name is keyed by its default key when the
/// registry knows it (else any `:scheduled:` key of the class).
fn occurrences(target: &str, registry: &Registry) -> (String, Option<String>) {
    if let Some(cmd) = target.strip_prefix("cmd:") {
        return (
            ScheduledCommand::NAME.to_string(),
            Some(format!("{}:scheduled:", cmd.trim())),
        );
    }
    match registry.load(target, None) {
        Ok(job) => (
            job.job_class().to_string(),
            Some(format!("{}:scheduled:", job.default_concurrency_key())),
        ),
        Err(_) => (target.to_string(), None),
    }
}

async fn schedule(app: &App, entry: &ScheduleEntry) -> Result<ScheduleView, DashboardError> {
    let now = Utc::now();
    let (job_class, prefix) = occurrences(&entry.target, &app.registry);
    let (next, problem) = match &entry.schedule {
        Ok(schedule) => {
            let zoned = schedule.clone().with_timezone(app.timezone);
            let times = zoned
                .upcoming(now)
                .take(SHOWN)
                .map(|t| format!("{} ({})", format::time(t), format::ago(t, now)))
                .collect();
            (times, String::new())
        }
        Err(e) => (Vec::new(), e.clone()),
    };
    let (requests, results) = app
        .jobs
        .store()
        .scheduled_runs(&job_class, prefix.as_deref().unwrap_or(""), 50)
        .await?;
    let scheduled = |key: &str| key.contains(":scheduled:");
    let pending = requests
        .iter()
        .filter(|r| scheduled(&r.concurrency_key))
        .take(SHOWN)
        .map(|r| RunView {
            uuid: r.uuid.to_string(),
            at: r
                .start_at
                .map(|t| format!("{} ({})", format::time(t), format::ago(t, now)))
                .unwrap_or_else(|| "ready".into()),
            status: "PENDING",
            status_class: "scheduled",
            took: String::new(),
            error: String::new(),
        })
        .collect();
    let runs = results
        .iter()
        .filter(|r| scheduled(&r.concurrency_key))
        .take(SHOWN)
        .map(|r| RunView {
            uuid: r.uuid.to_string(),
            at: format::opt_time(r.ended_at.or(Some(r.created_at))),
            status: r.status.as_str(),
            status_class: status_class(r.status),
            took: format::duration(r.started_at, r.ended_at),
            error: format::first_line(&r.error, 120),
        })
        .collect();
    Ok(ScheduleView {
        target: entry.target.clone(),
        cron: entry.cron.clone(),
        job_class,
        problem,
        next,
        pending,
        runs,
    })
}
