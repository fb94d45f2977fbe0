//! One job, reached by any of its uuids: its whole chain — every attempt's request, process
//! and results, linked by retries and deferrals — with parameters, error text, timings and the
//! trace id; retry, delete or run it now from here.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum_csrf::CsrfToken;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::results::status_class;
use crate::admin::cache::Listed;
use crate::admin::error::DashboardError;
use crate::admin::format;
use crate::admin::web::{render, App, Base, Chrome};
use crate::client::{Attempt, Chain};

/// One attempt, as shown.
#[derive(Debug, Clone)]
pub(crate) struct AttemptView {
    pub number: usize,
    pub request_uuid: String,
    /// The uuid asked for is in this attempt.
    pub asked: bool,
    pub requested: String,
    pub pending: Option<String>,
    pub claimed: Option<ClaimView>,
    pub results: Vec<ResultView>,
}

/// A claim (a process row).
#[derive(Debug, Clone)]
pub(crate) struct ClaimView {
    pub uuid: String,
    pub worker: String,
    pub claimed: String,
    pub started: String,
    pub running: bool,
}

/// A result row.
#[derive(Debug, Clone)]
pub(crate) struct ResultView {
    pub uuid: String,
    pub process_uuid: String,
    pub status: &'static str,
    pub status_class: &'static str,
    pub started: String,
    pub ended: String,
    pub took: String,
    pub error: String,
}

/// The page's content.
#[derive(Debug, Clone)]
pub(crate) struct JobView {
    pub job_class: String,
    pub queue: String,
    pub priority: i16,
    pub key: String,
    pub source: String,
    pub trace_id: String,
    pub span_id: String,
    pub retries: i16,
    pub parameters: String,
    pub state: String,
    pub state_class: &'static str,
    pub attempts: Vec<AttemptView>,
    /// The last result, when it may be retried by hand.
    pub retry: Option<String>,
    /// The pending request, when there is one.
    pub pending: Option<String>,
    /// The pending request is scheduled for later.
    pub scheduled: bool,
    /// The process, when a worker holds the job (cancelling it stops the run).
    pub claimed: Option<String>,
    pub this: String,
}

#[derive(Template)]
#[template(path = "admin/job.html")]
struct JobPage<'a> {
    chrome: Chrome,
    base: &'a str,
    v: &'a JobView,
}

/// `GET /jobs/{uuid}`.
pub(crate) async fn page(
    State(app): State<App>,
    base: Base,
    token: CsrfToken,
    Path(uuid): Path<String>,
) -> Result<Response, DashboardError> {
    let uuid = Uuid::parse_str(uuid.trim()).map_err(|_| DashboardError::NotFound)?;
    let jobs = app.jobs.clone();
    let listed = app
        .lists
        .get(format!("chain {uuid}"), async move {
            Ok(Listed::Chain(jobs.chain(uuid).await?))
        })
        .await?;
    let Listed::Chain(Some(chain)) = &*listed else {
        return Err(DashboardError::NotFound);
    };
    let v = view(uuid, chain).ok_or(DashboardError::NotFound)?;
    let prefix = base.0.clone();
    let chrome = Chrome::new(&app, base, &token, "results")?;
    render(
        token,
        &JobPage {
            chrome,
            base: &prefix,
            v: &v,
        },
    )
}

/// The job's identity, from the newest row of its chain.
struct Identity<'a> {
    job_class: &'a str,
    queue: &'a str,
    priority: i16,
    key: &'a str,
    source: &'a str,
    trace_id: Option<&'a str>,
    span_id: Option<&'a str>,
    retries: i16,
    parameters: Option<&'a serde_json::Value>,
}

fn identity(a: &Attempt) -> Option<Identity<'_>> {
    if let Some(r) = a.results.last() {
        return Some(Identity {
            job_class: &r.job_class,
            queue: &r.queue,
            priority: r.priority,
            key: &r.concurrency_key,
            source: &r.source,
            trace_id: r.trace_id.as_deref(),
            span_id: r.span_id.as_deref(),
            retries: r.retries,
            parameters: r.parameters.as_ref(),
        });
    }
    if let Some(p) = &a.process {
        return Some(Identity {
            job_class: &p.job_class,
            queue: &p.queue,
            priority: p.priority,
            key: &p.concurrency_key,
            source: &p.source,
            trace_id: p.trace_id.as_deref(),
            span_id: p.span_id.as_deref(),
            retries: p.retries,
            parameters: p.parameters.as_ref(),
        });
    }
    a.request.as_ref().map(|r| Identity {
        job_class: &r.job_class,
        queue: &r.queue,
        priority: r.priority,
        key: &r.concurrency_key,
        source: &r.source,
        trace_id: r.trace_id.as_deref(),
        span_id: r.span_id.as_deref(),
        retries: r.retries,
        parameters: r.parameters.as_ref(),
    })
}

fn view(asked: Uuid, chain: &Chain) -> Option<JobView> {
    let now = Utc::now();
    let last = chain.attempts.last()?;
    let id = identity(last)?;
    let (state, state_class) = state_of(last, now);
    let last_result = last.results.last();
    Some(JobView {
        job_class: id.job_class.to_string(),
        queue: id.queue.to_string(),
        priority: id.priority,
        key: id.key.to_string(),
        source: id.source.to_string(),
        trace_id: id.trace_id.unwrap_or("").to_string(),
        span_id: id.span_id.unwrap_or("").to_string(),
        retries: id.retries,
        parameters: format::json(id.parameters),
        state,
        state_class,
        attempts: chain
            .attempts
            .iter()
            .enumerate()
            .map(|(i, a)| attempt(i, a, i == chain.found_in, now))
            .collect(),
        retry: last_result
            .filter(|r| r.status.is_failure() && r.retry_job_request_uuid.is_none())
            .map(|r| r.uuid.to_string()),
        pending: last.request.as_ref().map(|r| r.uuid.to_string()),
        scheduled: last
            .request
            .as_ref()
            .is_some_and(|r| r.start_at.is_some_and(|t| t > now)),
        claimed: last.process.as_ref().map(|p| p.uuid.to_string()),
        this: format!("jobs/{asked}"),
    })
}

/// Where the job is now, from its last attempt.
fn state_of(last: &Attempt, now: DateTime<Utc>) -> (String, &'static str) {
    if let Some(r) = &last.request {
        return match r.start_at {
            Some(t) if t > now => (format!("scheduled, {}", format::ago(t, now)), "scheduled"),
            _ => ("ready".into(), "ready"),
        };
    }
    if let Some(p) = &last.process {
        return match p.started_at {
            Some(_) => ("running".into(), "running"),
            None => ("claimed, waiting to start".into(), "waiting"),
        };
    }
    match last.results.last() {
        Some(r) => (r.status.as_str().to_lowercase(), status_class(r.status)),
        None => ("unknown".into(), ""),
    }
}

fn attempt(i: usize, a: &Attempt, asked: bool, now: DateTime<Utc>) -> AttemptView {
    AttemptView {
        number: i + 1,
        request_uuid: a.request_uuid.to_string(),
        asked,
        requested: a
            .requested_at()
            .map(|t| format!("{} ({})", format::time(t), format::ago(t, now)))
            .unwrap_or_else(|| "—".into()),
        pending: a.request.as_ref().map(|r| match r.start_at {
            Some(t) if t > now => format!(
                "scheduled for {} ({})",
                format::time(t),
                format::ago(t, now)
            ),
            _ => "ready, waiting for a worker".into(),
        }),
        claimed: a.process.as_ref().map(|p| ClaimView {
            uuid: p.uuid.to_string(),
            worker: p.worker_id.to_string(),
            claimed: format::time(p.created_at),
            started: p
                .started_at
                .map(|t| {
                    format!(
                        "{} (running for {})",
                        format::time(t),
                        format::span((now - t).num_seconds())
                    )
                })
                .unwrap_or_else(|| "not yet".into()),
            running: p.started_at.is_some(),
        }),
        results: a
            .results
            .iter()
            .map(|r| ResultView {
                uuid: r.uuid.to_string(),
                process_uuid: r.job_process_uuid.to_string(),
                status: r.status.as_str(),
                status_class: status_class(r.status),
                started: format::opt_time(r.started_at),
                ended: format::opt_time(r.ended_at),
                took: format::duration(r.started_at, r.ended_at),
                error: r.error.clone(),
            })
            .collect(),
    }
}
