//! Claimed jobs: running and waiting (claimed ahead, not started), their worker and age.

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
use crate::admin::web::{fragment, render, App, Base, Chrome};
use crate::model::{JobProcess, WorkerHeartbeat};
use crate::store::{ProcessFilter, ProcessState};

/// Rows per page.
const PAGE: i64 = 50;

/// The query string.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ProcessesQuery {
    state: Option<String>,
    queue: Option<String>,
    worker: Option<String>,
    next: Option<i64>,
    prev: Option<i64>,
    fragment: Option<String>,
}

/// One claimed job's line.
#[derive(Debug, Clone)]
pub(crate) struct ProcessRow {
    pub uuid: String,
    pub short: String,
    pub job_class: String,
    pub queue: String,
    pub running: bool,
    /// Running for, or waiting for.
    pub age: String,
    pub since: String,
    pub worker: String,
    pub worker_short: String,
    /// The worker's host and pid, when it is registered.
    pub host: String,
    pub attempt: i16,
}

/// The page's content.
#[derive(Debug, Clone)]
pub(crate) struct ProcessesView {
    pub state: String,
    pub queue: String,
    pub worker: String,
    pub rows: Vec<ProcessRow>,
    pub pager: Pager,
}

#[derive(Template)]
#[template(path = "admin/processes.html")]
struct ProcessesPage<'a> {
    chrome: Chrome,
    base: &'a str,
    v: &'a ProcessesView,
}

#[derive(Template)]
#[template(path = "admin/processes_table.html")]
struct ProcessesTable<'a> {
    chrome: Chrome,
    base: &'a str,
    v: &'a ProcessesView,
}

/// `GET /processes`.
pub(crate) async fn page(
    State(app): State<App>,
    base: Base,
    token: CsrfToken,
    Query(q): Query<ProcessesQuery>,
) -> Result<Response, DashboardError> {
    let keyset = Keyset {
        next: q.next,
        prev: q.prev,
    };
    let worker = match given(&q.worker) {
        Some(text) => Some(
            Uuid::parse_str(text)
                .map_err(|_| DashboardError::BadRequest(format!("{text:?} is not a worker id")))?,
        ),
        None => None,
    };
    let state = match given(&q.state) {
        Some("running") => Some(ProcessState::Running),
        Some("waiting") => Some(ProcessState::Waiting),
        _ => None,
    };
    let filter = ProcessFilter {
        state,
        queue: given(&q.queue).map(str::to_string),
        worker_id: worker,
        cursor: keyset.cursor(),
        limit: PAGE,
    };
    let key = format!("processes {filter:?}");
    let jobs = app.jobs.clone();
    let listed = app
        .lists
        .get(key, async move {
            Ok(Listed::Processes(jobs.processes_page(&filter).await?))
        })
        .await?;
    let Listed::Processes(page) = &*listed else {
        return Err(DashboardError::NotFound);
    };
    // Hosts from the shared snapshot: no query of their own.
    let workers = app
        .live
        .latest()
        .await
        .map(|s| s.workers.clone())
        .unwrap_or_default();
    let filters = query_string(&[
        ("state", given(&q.state)),
        ("queue", given(&q.queue)),
        ("worker", given(&q.worker)),
    ]);
    let v = ProcessesView {
        state: given(&q.state).unwrap_or("").to_string(),
        queue: given(&q.queue).unwrap_or("").to_string(),
        worker: given(&q.worker).unwrap_or("").to_string(),
        rows: page.items.iter().map(|p| row(p, &workers)).collect(),
        pager: Pager::new("processes", &filters, page, keyset),
    };
    let prefix = base.0.clone();
    let chrome = Chrome::new(&app, base, &token, "processes")?;
    if q.fragment.is_some() {
        return fragment(&ProcessesTable {
            chrome,
            base: &prefix,
            v: &v,
        });
    }
    render(
        token,
        &ProcessesPage {
            chrome,
            base: &prefix,
            v: &v,
        },
    )
}

fn row(p: &JobProcess, workers: &[WorkerHeartbeat]) -> ProcessRow {
    let now = Utc::now();
    let since = p.started_at.unwrap_or(p.created_at);
    let host = workers
        .iter()
        .find(|w| w.worker_id == p.worker_id)
        .map(|w| format!("{} · pid {}", w.hostname, w.pid))
        .unwrap_or_else(|| "not registered".into());
    ProcessRow {
        uuid: p.uuid.to_string(),
        short: format::short(&p.uuid),
        job_class: p.job_class.clone(),
        queue: p.queue.clone(),
        running: p.started_at.is_some(),
        age: format::span((now - since).num_seconds()),
        since: format::time(since),
        worker: p.worker_id.to_string(),
        worker_short: format::short(&p.worker_id),
        host,
        attempt: p.retry_attempt,
    }
}
