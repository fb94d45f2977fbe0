//! What watching the dashboard costs the database: one set of queries per refresh interval,
//! however many browsers watch; nothing while nobody does. Counted through a wrapper store.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::Dashboard;
use crate::testing::{conformance, test_jobs, Backend, FaultyStore};

/// `browsers` browsers polling `path` every 100 ms for `secs` seconds; the store calls made.
async fn watched_by(backend: Backend, browsers: usize, path: &'static str, secs: u64) -> u64 {
    let (jobs, faults) = FaultyStore::wrap(&test_jobs(backend).await);
    let router = Dashboard::new(jobs)
        .refresh_every(Duration::from_millis(500))
        .router();
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..browsers {
        let router = router.clone();
        tasks.push(tokio::spawn(async move {
            while tokio::time::Instant::now() < until {
                let request = Request::get(path).body(Body::empty()).expect("a request");
                let response = router.clone().oneshot(request).await.expect("an answer");
                assert_eq!(response.status(), StatusCode::OK);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("a browser");
    }
    faults.calls.load(Ordering::Acquire)
}

/// Fifty browsers on the overview cost what one does: a pass per interval (depths, workers,
/// new results: a handful of calls), about four passes in two seconds.
async fn the_overview_costs_one_pass_per_interval(backend: Backend) {
    let one = watched_by(backend, 1, "/live/overview", 2).await;
    let fifty = watched_by(backend, 50, "/live/overview", 2).await;
    // 2 s at 500 ms: up to 5 passes of at most 4 calls (plus the first pass's start).
    assert!(one <= 25, "one browser: {one} calls");
    assert!(fifty <= 25, "fifty browsers: {fifty} calls");
    assert!(fifty > 0, "the overview reads the database");
}

/// Fifty browsers on one list share one query per interval.
async fn a_list_costs_one_query_per_interval(backend: Backend) {
    let fifty = watched_by(backend, 50, "/results?fragment=1", 2).await;
    // The list (one call per 500 ms, about 5) and the workers' snapshot for hosts is not read
    // by the results page: nothing else.
    assert!((1..=8).contains(&fifty), "fifty browsers: {fifty} calls");
}

/// Nobody watching: no queries at all.
async fn nobody_watching_costs_nothing(backend: Backend) {
    let (jobs, faults) = FaultyStore::wrap(&test_jobs(backend).await);
    let router = Dashboard::new(jobs)
        .refresh_every(Duration::from_millis(500))
        .router();
    let request = Request::get("/live/overview")
        .body(Body::empty())
        .expect("a request");
    let response = router.oneshot(request).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    // The task stops refreshing after three intervals without a viewer.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let settled = faults.calls.load(Ordering::Acquire);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(faults.calls.load(Ordering::Acquire), settled, "asleep");
}

/// A big backlog's depths (a slow scan of the request table) are read less often than the
/// overview refreshes — at most 1 % of a core — and the overview says when they were counted;
/// cheap depths are read every pass.
async fn a_slow_depth_count_is_read_less_often(backend: Backend) {
    let (jobs, faults) = FaultyStore::wrap(&test_jobs(backend).await);
    let router = Dashboard::new(jobs)
        .refresh_every(Duration::from_millis(500))
        .router();
    let watch = |secs: u64| {
        let router = router.clone();
        async move {
            let until = tokio::time::Instant::now() + Duration::from_secs(secs);
            let mut body = String::new();
            while tokio::time::Instant::now() < until {
                let request = Request::get("/live/overview")
                    .body(Body::empty())
                    .expect("a request");
                let response = router.clone().oneshot(request).await.expect("an answer");
                assert_eq!(response.status(), StatusCode::OK);
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .expect("a body");
                body = String::from_utf8_lossy(&bytes).into_owned();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            body
        }
    };
    let body = watch(3).await;
    let cheap = faults.depths_reads.swap(0, Ordering::AcqRel);
    // Every 500 ms pass while a read takes under 5 ms; a loaded machine may make them rarer.
    assert!(cheap >= 2, "cheap depths read on {cheap} passes in 3 s");
    assert!(!body.contains("data-depths-note"), "no note while fresh");
    // 100 ms a read: the next one no sooner than 10 s later.
    faults.depths_delay_ms.store(100, Ordering::Release);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    faults.depths_reads.store(0, Ordering::Release);
    let body = watch(3).await;
    let slow = faults.depths_reads.load(Ordering::Acquire);
    assert!(slow <= 1, "slow depths read {slow} times in 3 s");
    assert!(
        body.contains("data-depths-note"),
        "the overview says when the depths were counted: {body}"
    );
}

conformance!(
    a_slow_depth_count_is_read_less_often,
    the_overview_costs_one_pass_per_interval,
    a_list_costs_one_query_per_interval,
    nobody_watching_costs_nothing,
);
