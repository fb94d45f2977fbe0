//! The overview: jobs waiting and running, results by status, workers, each queue's depth,
//! age and throughput, and the results chart — all from the shared snapshot (`live.rs`), so
//! it costs the database nothing per viewer.

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum_csrf::CsrfToken;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::admin::chart::{self, BarChart};
use crate::admin::error::DashboardError;
use crate::admin::format;
use crate::admin::live::Snapshot;
use crate::admin::trend::STATUSES;
use crate::admin::web::{fragment, render, App, Base, Chrome};

/// `?range=1h|24h`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OverviewQuery {
    range: Option<String>,
}

/// A number with a label and a link.
#[derive(Debug, Clone)]
pub(crate) struct Card {
    pub label: &'static str,
    pub value: String,
    pub class: &'static str,
    pub href: String,
    pub hint: &'static str,
}

/// One queue's line.
#[derive(Debug, Clone)]
pub(crate) struct QueueRow {
    pub name: String,
    pub href: String,
    pub ready: String,
    pub scheduled: String,
    pub waiting: String,
    pub running: String,
    pub oldest: String,
    /// Oldest ready request waited a minute or more.
    pub late: bool,
    pub per_minute: String,
    pub spark: String,
    pub paused: bool,
}

/// What the overview shows.
#[derive(Debug, Clone)]
pub(crate) struct OverviewView {
    pub taken: String,
    pub failed: bool,
    pub jobs: Vec<Card>,
    pub results: Vec<Card>,
    pub workers: Vec<Card>,
    pub queues: Vec<QueueRow>,
    /// When the depths are older than the snapshot (a big backlog is counted less often).
    pub depths_note: Option<String>,
    pub chart: BarChart,
    pub long_range: bool,
}

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct OverviewPage<'a> {
    chrome: Chrome,
    base: &'a str,
    v: &'a OverviewView,
}

#[derive(Template)]
#[template(path = "admin/overview_body.html")]
struct OverviewBody<'a> {
    v: &'a OverviewView,
}

/// `GET /`.
pub(crate) async fn page(
    State(app): State<App>,
    base: Base,
    token: CsrfToken,
    Query(q): Query<OverviewQuery>,
) -> Result<Response, DashboardError> {
    let v = view(&app, &q, &base.0).await?;
    let prefix = base.0.clone();
    let chrome = Chrome::new(&app, base, &token, "overview")?;
    render(
        token,
        &OverviewPage {
            chrome,
            base: &prefix,
            v: &v,
        },
    )
}

/// `GET /live/overview`: the body alone, for the live refresh.
pub(crate) async fn live(
    State(app): State<App>,
    base: Base,
    Query(q): Query<OverviewQuery>,
) -> Result<Response, DashboardError> {
    let v = view(&app, &q, &base.0).await?;
    fragment(&OverviewBody { v: &v })
}

async fn view(app: &App, q: &OverviewQuery, base: &str) -> Result<OverviewView, DashboardError> {
    let snapshot = app.live.latest().await.ok_or(DashboardError::Unavailable)?;
    let long_range = q.range.as_deref() == Some("24h");
    Ok(build(app, &snapshot, long_range, base))
}

fn card(
    label: &'static str,
    n: i64,
    class: &'static str,
    href: String,
    hint: &'static str,
) -> Card {
    Card {
        label,
        value: format::count(n),
        class,
        href,
        hint,
    }
}

fn build(app: &App, s: &Snapshot, long_range: bool, base: &str) -> OverviewView {
    let now = s.taken_at;
    let now_minute = now.timestamp() / 60 * 60;
    let sum = |f: fn(&crate::store::QueueDepth) -> i64| s.depths.iter().map(f).sum::<i64>();
    let jobs = vec![
        card(
            "Ready",
            sum(|d| d.ready),
            "ready",
            format!("{base}/requests"),
            "Requests a worker may take now",
        ),
        card(
            "Scheduled",
            sum(|d| d.scheduled),
            "scheduled",
            format!("{base}/requests"),
            "Requests waiting for their start time",
        ),
        card(
            "Waiting",
            sum(|d| d.waiting),
            "waiting",
            format!("{base}/processes?state=waiting"),
            "Claimed by a worker, not started",
        ),
        card(
            "Running",
            sum(|d| d.running),
            "running",
            format!("{base}/processes?state=running"),
            "Running now",
        ),
    ];
    let window_start = now_minute - 24 * 3600;
    let totals = s.trend.total_since(window_start);
    let mut results: Vec<Card> = [
        ("SUCCESSFUL", "Successful"),
        ("ERRORED", "Errored"),
        ("LOST", "Lost"),
        ("CANCELLED", "Cancelled"),
        ("DEFERRED", "Deferred"),
    ]
    .into_iter()
    .map(|(status, label)| {
        let class = STATUSES
            .iter()
            .find(|(s, _)| *s == status)
            .map_or("", |(_, c)| *c);
        card(
            label,
            totals.of(status),
            class,
            format!("{base}/results?status={status}"),
            "Results written in the last 24 hours",
        )
    })
    .collect();
    results.push(card(
        "Retried",
        totals.retried,
        "retried",
        format!("{base}/results?status=RETRIED"),
        "Results of the last 24 hours that were retried or are retries",
    ));
    let cutoff = now - chrono::Duration::from_std(app.heartbeat_timeout).unwrap_or_default();
    let stale = s
        .workers
        .iter()
        .filter(|w| w.last_heartbeat_at < cutoff)
        .count() as i64;
    let workers = vec![
        card(
            "Active workers",
            s.workers.len() as i64 - stale,
            "active",
            format!("{base}/workers?state=active"),
            "Heartbeat within the timeout",
        ),
        card(
            "Stale workers",
            stale,
            if stale > 0 { "stale" } else { "" },
            format!("{base}/workers?state=stale"),
            "No heartbeat within the timeout: their jobs will be rescued as lost",
        ),
    ];
    let chart = if long_range {
        let first = now_minute / 900 * 900 - 95 * 900;
        chart::bars(&s.trend.buckets(first, 15, 96, None), 15)
    } else {
        chart::bars(&s.trend.buckets(now_minute - 59 * 60, 1, 60, None), 1)
    };
    OverviewView {
        taken: format::time(now),
        failed: s.failed,
        jobs,
        results,
        workers,
        queues: queue_rows(s, now, now_minute, base),
        depths_note: depths_note(s, app.live.interval()),
        chart,
        long_range,
    }
}

fn queue_rows(s: &Snapshot, now: DateTime<Utc>, now_minute: i64, base: &str) -> Vec<QueueRow> {
    let mut names: BTreeSet<String> = s.depths.iter().map(|d| d.queue.clone()).collect();
    names.extend(s.trend.queues());
    names.extend(s.paused.iter().cloned());
    names
        .into_iter()
        .map(|name| {
            let depth = s
                .depths
                .iter()
                .find(|d| d.queue == name)
                .cloned()
                .unwrap_or_default();
            let last_30 = s.trend.buckets(now_minute - 30 * 60, 1, 30, Some(&name));
            let totals: Vec<i64> = last_30.iter().map(|(_, t)| t.total()).collect();
            let last_5: i64 = totals[totals.len().saturating_sub(5)..].iter().sum();
            let waited = depth.oldest_ready.map(|t| (now - t).num_seconds());
            QueueRow {
                href: format!(
                    "{base}/requests?{}",
                    super::query_string(&[("queue", Some(&name))])
                ),
                ready: format::count(depth.ready),
                scheduled: format::count(depth.scheduled),
                waiting: format::count(depth.waiting),
                running: format::count(depth.running),
                oldest: waited.map(format::span).unwrap_or_else(|| "—".into()),
                late: waited.is_some_and(|w| w >= 60),
                per_minute: per_minute(last_5),
                spark: chart::sparkline(&totals),
                paused: s.paused.contains(&name),
                name,
            }
        })
        .collect()
}

/// Says when the depths were counted, if that was a few refreshes ago: on a big backlog they
/// are counted less often (`live.rs`). Depths a refresh or two old are not worth a note.
fn depths_note(s: &Snapshot, interval: std::time::Duration) -> Option<String> {
    let taken = s.depths_taken_at?;
    let age = (s.taken_at - taken).to_std().ok()?;
    (age > interval * 3).then(|| {
        format!(
            "ready, scheduled, waiting and running as counted at {} UTC: a large backlog is counted less often",
            format::time(taken)
        )
    })
}

/// Results of the last five whole minutes, per minute.
fn per_minute(last_5: i64) -> String {
    let rate = last_5 as f64 / 5.0;
    if rate >= 100.0 || rate == 0.0 {
        format::count(rate.round() as i64)
    } else {
        format!("{rate:.1}")
    }
}
