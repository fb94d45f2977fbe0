//! Pending requests, oldest first, by queue, job name and concurrency key; delete them or run
//! the scheduled ones now.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum_csrf::CsrfToken;
use chrono::Utc;
use serde::Deserialize;

use super::{given, query_string, Keyset, Pager};
use crate::admin::cache::Listed;
use crate::admin::error::DashboardError;
use crate::admin::format;
use crate::admin::web::{fragment, render, App, Base, Chrome};
use crate::model::JobRequest;
use crate::store::RequestFilter;

/// Rows per page.
const PAGE: i64 = 50;

/// The query string.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RequestsQuery {
    queue: Option<String>,
    job: Option<String>,
    key: Option<String>,
    next: Option<i64>,
    prev: Option<i64>,
    fragment: Option<String>,
}

/// One request's line.
#[derive(Debug, Clone)]
pub(crate) struct RequestRow {
    pub uuid: String,
    pub short: String,
    pub job_class: String,
    pub queue: String,
    pub priority: i16,
    pub key: String,
    pub attempt: i16,
    pub created: String,
    pub created_ago: String,
    pub runs: String,
    pub scheduled: bool,
}

/// The page's content.
#[derive(Debug, Clone)]
pub(crate) struct RequestsView {
    pub queue: String,
    pub job: String,
    pub key: String,
    pub rows: Vec<RequestRow>,
    pub pager: Pager,
    /// The one queue the page is filtered by, with its pause state.
    pub control: Option<QueueControl>,
}

/// A queue that may be paused or resumed from the page filtered by it.
#[derive(Debug, Clone)]
pub(crate) struct QueueControl {
    pub queue: String,
    /// "since 2026-11-30 10:00 UTC, by ops", when it is paused.
    pub paused: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/requests.html")]
struct RequestsPage<'a> {
    chrome: Chrome,
    base: &'a str,
    v: &'a RequestsView,
}

#[derive(Template)]
#[template(path = "admin/requests_table.html")]
struct RequestsTable<'a> {
    chrome: Chrome,
    base: &'a str,
    v: &'a RequestsView,
}

/// `GET /requests`.
pub(crate) async fn page(
    State(app): State<App>,
    base: Base,
    token: CsrfToken,
    Query(q): Query<RequestsQuery>,
) -> Result<Response, DashboardError> {
    let keyset = Keyset {
        next: q.next,
        prev: q.prev,
    };
    let filter = RequestFilter {
        queue: given(&q.queue).map(str::to_string),
        job_class: given(&q.job).map(str::to_string),
        concurrency_key: given(&q.key).map(str::to_string),
        cursor: keyset.cursor(),
        limit: PAGE,
    };
    let key = format!("requests {filter:?}");
    let jobs = app.jobs.clone();
    let listed = app
        .lists
        .get(key, async move {
            Ok(Listed::Requests(jobs.requests_page(&filter).await?))
        })
        .await?;
    let Listed::Requests(page) = &*listed else {
        return Err(DashboardError::NotFound);
    };
    let filters = query_string(&[
        ("queue", given(&q.queue)),
        ("job", given(&q.job)),
        ("key", given(&q.key)),
    ]);
    let v = RequestsView {
        queue: given(&q.queue).unwrap_or("").to_string(),
        job: given(&q.job).unwrap_or("").to_string(),
        key: given(&q.key).unwrap_or("").to_string(),
        rows: page.items.iter().map(row).collect(),
        pager: Pager::new("requests", &filters, page, keyset),
        control: None,
    };
    let prefix = base.0.clone();
    let chrome = Chrome::new(&app, base, &token, "requests")?;
    if q.fragment.is_some() {
        return fragment(&RequestsTable {
            chrome,
            base: &prefix,
            v: &v,
        });
    }
    let v = RequestsView {
        control: queue_control(&app, given(&q.queue)).await,
        ..v
    };
    render(
        token,
        &RequestsPage {
            chrome,
            base: &prefix,
            v: &v,
        },
    )
}

/// The filtered queue's pause state (a failure to read it leaves the control out).
async fn queue_control(app: &App, queue: Option<&str>) -> Option<QueueControl> {
    let queue = queue?;
    let paused = match app.jobs.paused_queues().await {
        Ok(paused) => paused,
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: could not read the paused queues");
            return None;
        }
    };
    let paused = paused.into_iter().find(|p| p.queue == queue).map(|p| {
        let since = p.paused_at.map(format::time).unwrap_or_default();
        match p.paused_by.as_str() {
            "" => format!("since {since} UTC"),
            by => format!("since {since} UTC, by {by}"),
        }
    });
    Some(QueueControl {
        queue: queue.to_string(),
        paused,
    })
}

fn row(r: &JobRequest) -> RequestRow {
    let now = Utc::now();
    let scheduled = r.start_at.is_some_and(|t| t > now);
    RequestRow {
        uuid: r.uuid.to_string(),
        short: format::short(&r.uuid),
        job_class: r.job_class.clone(),
        queue: r.queue.clone(),
        priority: r.priority,
        key: r.concurrency_key.clone(),
        attempt: r.retry_attempt,
        created: format::time(r.created_at),
        created_ago: format::ago(r.created_at, now),
        runs: match r.start_at {
            Some(t) if scheduled => format::ago(t, now),
            _ => "ready".into(),
        },
        scheduled,
    }
}
