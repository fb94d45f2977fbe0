//! Results, newest first: by status (or retried), queue, job name, and a search box that takes
//! any uuid of a job or a job name; retry or delete one or many.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum_csrf::CsrfToken;
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use super::{given, query_string, Keyset, Pager};
use crate::admin::cache::Listed;
use crate::admin::error::DashboardError;
use crate::admin::format;
use crate::admin::trend::STATUSES;
use crate::admin::web::{fragment, render, App, Base, Chrome};
use crate::model::{JobResult, JobStatus};
use crate::store::ResultFilter;

/// Rows per page.
const PAGE: i64 = 50;
/// Results a filtered page reads at most: no index serves a job name or a queue, so a rare one
/// would otherwise walk the whole table (~2 s at 10,000,000 results).
const SCAN: i64 = 100_000;

/// The statuses offered by the filter, "RETRIED" last.
pub(crate) const FILTERS: [&str; 6] = [
    "SUCCESSFUL",
    "ERRORED",
    "LOST",
    "CANCELLED",
    "DEFERRED",
    "RETRIED",
];

/// The query string.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResultsQuery {
    status: Option<String>,
    q: Option<String>,
    queue: Option<String>,
    job: Option<String>,
    next: Option<i64>,
    prev: Option<i64>,
    fragment: Option<String>,
}

/// One result's line.
#[derive(Debug, Clone)]
pub(crate) struct ResultRow {
    pub uuid: String,
    pub short: String,
    pub job_class: String,
    pub queue: String,
    pub status: &'static str,
    pub status_class: &'static str,
    /// Retried already (a later attempt exists).
    pub retried: bool,
    /// "retry 2 of 3" when this is a retry.
    pub attempt: String,
    pub ended: String,
    pub ended_ago: String,
    pub took: String,
    pub error: String,
}

/// The page's content.
#[derive(Debug, Clone)]
pub(crate) struct ResultsView {
    pub status: String,
    pub q: String,
    pub queue: String,
    pub job: String,
    pub statuses: [&'static str; 6],
    pub rows: Vec<ResultRow>,
    /// The page stopped at its scan limit with fewer matches than a page: says so.
    pub scan_note: Option<String>,
    pub pager: Pager,
}

#[derive(Template)]
#[template(path = "admin/results.html")]
struct ResultsPage<'a> {
    chrome: Chrome,
    base: &'a str,
    v: &'a ResultsView,
}

#[derive(Template)]
#[template(path = "admin/results_table.html")]
struct ResultsTable<'a> {
    chrome: Chrome,
    base: &'a str,
    v: &'a ResultsView,
}

/// The filter a query string asks for; an unknown status is a bad request.
fn filter(q: &ResultsQuery, keyset: Keyset) -> Result<ResultFilter, DashboardError> {
    let mut filter = ResultFilter::new().limit(PAGE).cursor(keyset.cursor());
    match given(&q.status) {
        None => {}
        Some(s) if s.eq_ignore_ascii_case("RETRIED") => filter = filter.retried(),
        Some(s) => {
            let status = s
                .parse::<JobStatus>()
                .map_err(|e| DashboardError::BadRequest(e.to_string()))?;
            filter = filter.status(status);
        }
    }
    if let Some(queue) = given(&q.queue) {
        filter = filter.queue(queue);
    }
    if let Some(job) = given(&q.job) {
        filter = filter.job_class(job);
    }
    // The search box: a uuid of any row of a job, else a job name.
    if let Some(text) = given(&q.q) {
        match Uuid::parse_str(text) {
            Ok(uuid) => filter = filter.uuid(uuid),
            Err(_) if filter.job_class.is_none() => filter = filter.job_class(text),
            Err(_) => {}
        }
    }
    let filtered = filter.status.is_some()
        || filter.retried
        || filter.queue.is_some()
        || filter.job_class.is_some();
    if filtered && filter.uuid.is_none() {
        filter = filter.scan_at_most(SCAN);
    }
    Ok(filter)
}

/// `GET /results`.
pub(crate) async fn page(
    State(app): State<App>,
    base: Base,
    token: CsrfToken,
    Query(q): Query<ResultsQuery>,
) -> Result<Response, DashboardError> {
    let keyset = Keyset {
        next: q.next,
        prev: q.prev,
    };
    let filter = filter(&q, keyset)?;
    let filter_used = filter.clone();
    let key = format!("results {filter:?}");
    let jobs = app.jobs.clone();
    let listed = app
        .lists
        .get(key, async move {
            Ok(Listed::Results(jobs.results_page(&filter).await?))
        })
        .await?;
    let Listed::Results(page) = &*listed else {
        return Err(DashboardError::NotFound);
    };
    let filters = query_string(&[
        ("status", given(&q.status)),
        ("q", given(&q.q)),
        ("queue", given(&q.queue)),
        ("job", given(&q.job)),
    ]);
    let v = ResultsView {
        status: given(&q.status).unwrap_or("").to_ascii_uppercase(),
        q: given(&q.q).unwrap_or("").to_string(),
        queue: given(&q.queue).unwrap_or("").to_string(),
        job: given(&q.job).unwrap_or("").to_string(),
        statuses: FILTERS,
        rows: page.items.iter().map(row).collect(),
        scan_note: scan_note(&filter_used, page.items.len()),
        pager: Pager::new("results", &filters, page, keyset),
    };
    let prefix = base.0.clone();
    let chrome = Chrome::new(&app, base, &token, "results")?;
    if q.fragment.is_some() {
        return fragment(&ResultsTable {
            chrome,
            base: &prefix,
            v: &v,
        });
    }
    render(
        token,
        &ResultsPage {
            chrome,
            base: &prefix,
            v: &v,
        },
    )
}

/// Why a filtered page holds fewer than a page of results although there may be more.
fn scan_note(filter: &ResultFilter, found: usize) -> Option<String> {
    let scan = filter.scan_limit?;
    (found < PAGE as usize).then(|| {
        format!(
            "A filtered page reads at most {} results, newest first; Next searches older ones.",
            format::count(scan)
        )
    })
}

/// The CSS name of a status.
pub(crate) fn status_class(status: JobStatus) -> &'static str {
    STATUSES
        .iter()
        .find(|(s, _)| *s == status.as_str())
        .map_or("", |(_, c)| *c)
}

fn row(r: &JobResult) -> ResultRow {
    let now = Utc::now();
    let ended = r.ended_at.unwrap_or(r.created_at);
    ResultRow {
        uuid: r.uuid.to_string(),
        short: format::short(&r.uuid),
        job_class: r.job_class.clone(),
        queue: r.queue.clone(),
        status: r.status.as_str(),
        status_class: status_class(r.status),
        retried: r.retry_job_request_uuid.is_some(),
        attempt: if r.retry_attempt > 0 {
            format!("retry {} of {}", r.retry_attempt, r.retries)
        } else {
            String::new()
        },
        ended: format::time(ended),
        ended_ago: format::ago(ended, now),
        took: format::duration(r.started_at, r.ended_at),
        error: format::first_line(&r.error, 160),
    }
}
