//! Workers: active and stale, host, pid, queues, last heartbeat — from the shared snapshot.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum_csrf::CsrfToken;
use serde::Deserialize;

use super::given;
use crate::admin::error::DashboardError;
use crate::admin::format;
use crate::admin::web::{fragment, render, App, Base, Chrome};

/// The query string.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WorkersQuery {
    state: Option<String>,
    fragment: Option<String>,
}

/// One worker's line.
#[derive(Debug, Clone)]
pub(crate) struct WorkerRow {
    pub id: String,
    pub short: String,
    pub host: String,
    pub pid: i32,
    pub queues: String,
    pub started: String,
    pub up: String,
    pub heartbeat: String,
    pub heartbeat_ago: String,
    pub stale: bool,
}

/// The page's content.
#[derive(Debug, Clone)]
pub(crate) struct WorkersView {
    pub state: String,
    pub rows: Vec<WorkerRow>,
    pub active: usize,
    pub stale: usize,
    pub timeout: String,
}

#[derive(Template)]
#[template(path = "admin/workers.html")]
struct WorkersPage<'a> {
    chrome: Chrome,
    base: &'a str,
    v: &'a WorkersView,
}

#[derive(Template)]
#[template(path = "admin/workers_table.html")]
struct WorkersTable<'a> {
    base: &'a str,
    v: &'a WorkersView,
}

/// `GET /workers`.
pub(crate) async fn page(
    State(app): State<App>,
    base: Base,
    token: CsrfToken,
    Query(q): Query<WorkersQuery>,
) -> Result<Response, DashboardError> {
    let snapshot = app.live.latest().await.ok_or(DashboardError::Unavailable)?;
    let now = snapshot.taken_at;
    let cutoff = now - chrono::Duration::from_std(app.heartbeat_timeout).unwrap_or_default();
    let all: Vec<WorkerRow> = snapshot
        .workers
        .iter()
        .map(|w| WorkerRow {
            id: w.worker_id.to_string(),
            short: format::short(&w.worker_id),
            host: w.hostname.clone(),
            pid: w.pid,
            queues: w.queues.join(", "),
            started: format::time(w.started_at),
            up: format::span((now - w.started_at).num_seconds()),
            heartbeat: format::time(w.last_heartbeat_at),
            heartbeat_ago: format::ago(w.last_heartbeat_at, now),
            stale: w.last_heartbeat_at < cutoff,
        })
        .collect();
    let stale = all.iter().filter(|w| w.stale).count();
    let state = given(&q.state).unwrap_or("").to_string();
    let rows = all
        .iter()
        .filter(|w| match state.as_str() {
            "active" => !w.stale,
            "stale" => w.stale,
            _ => true,
        })
        .cloned()
        .collect();
    let v = WorkersView {
        state,
        rows,
        active: all.len() - stale,
        stale,
        timeout: format::span(app.heartbeat_timeout.as_secs() as i64),
    };
    let prefix = base.0.clone();
    if q.fragment.is_some() {
        return fragment(&WorkersTable {
            base: &prefix,
            v: &v,
        });
    }
    let chrome = Chrome::new(&app, base, &token, "workers")?;
    render(
        token,
        &WorkersPage {
            chrome,
            base: &prefix,
            v: &v,
        },
    )
}
