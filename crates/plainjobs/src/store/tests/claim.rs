//! `Store::claim`, and what the claim loop asks besides: `next_start_in`, `vacuum_requests`.

use std::time::Duration;

use chrono::{TimeDelta, Utc};

use super::{pending, request, request_uuids, requests, uuids_of, Bed};
use crate::model::new_uuid;
use crate::store::{ClaimHow, NewRequest, Start};
use crate::testing::{conformance, Backend};

/// Priority first (highest first), then the start time (`start_at`, else `created_at`),
/// then the id: jobs enqueued together with the same priority go first in, first out.
async fn claims_in_priority_then_start_time_then_id_order(backend: Backend) {
    let bed = Bed::new(backend).await;
    let worker_id = bed.worker().await;
    let now = Utc::now();
    let ago = |secs| Start::At(now - TimeDelta::seconds(secs));
    let spec = [
        ("a", 0, ago(10)),
        ("b", 5, Start::Now),
        ("c", 0, Start::Now),
        ("d", 0, ago(20)),
        ("e", 5, ago(1)),
        ("f", 0, Start::Now),
    ];
    bed.enqueue(
        spec.into_iter()
            .map(|(name, priority, start)| NewRequest {
                priority,
                start,
                ..request(name)
            })
            .collect(),
    )
    .await;
    let mut order = Vec::new();
    for _ in 0..3 {
        let claimed = bed.claim(worker_id, 2, 0).await;
        assert_eq!(claimed.len(), 2, "two per claim");
        order.extend(claimed.into_iter().map(|p| p.job_class));
    }
    assert_eq!(order, ["e", "b", "d", "a", "c", "f"]);
}

/// A claim takes at most `start + prefetch` jobs, and nothing for no slots or no queues.
async fn claims_at_most_start_plus_prefetch(backend: Backend) {
    let bed = Bed::new(backend).await;
    let worker_id = bed.worker().await;
    bed.enqueue(requests("job", 5)).await;
    assert!(bed.claim(worker_id, 0, 0).await.is_empty());
    let none: [String; 0] = [];
    let claimed = bed
        .store()
        .claim(worker_id, &none, 5, 0, ClaimHow::default())
        .await
        .unwrap();
    assert!(claimed.is_empty(), "no queues, no jobs");
    assert_eq!(bed.claim(worker_id, 1, 2).await.len(), 3);
    assert_eq!(pending(bed.store()).await.len(), 2);
    assert_eq!(bed.claim(worker_id, 10, 0).await.len(), 2);
    assert!(bed.claim(worker_id, 10, 0).await.is_empty());
}

/// The first `start` jobs claimed are stamped as started, with the claim's own time (their
/// `created_at`); the ones claimed ahead are not. Every process carries its request.
async fn stamps_started_at_only_for_the_jobs_it_starts(backend: Backend) {
    let bed = Bed::new(backend).await;
    let worker_id = bed.worker().await;
    let made = bed.enqueue(requests("job", 5)).await;
    let claimed = bed.claim(worker_id, 2, 3).await;
    assert_eq!(request_uuids(&claimed), uuids_of(&made));
    for (i, (p, r)) in claimed.iter().zip(&made).enumerate() {
        let expected = (i < 2).then_some(p.created_at);
        assert_eq!(p.started_at, expected, "job {i}");
        assert_eq!(p.worker_id, worker_id);
        assert_eq!(p.requested_at, Some(r.created_at));
        assert_eq!(
            (&p.job_class, &p.parameters, &p.queue, &p.source),
            (&r.job_class, &r.parameters, &r.queue, &r.source)
        );
        assert_eq!((p.priority, p.retries, p.retry_attempt), (0, 0, 0));
    }
    let stored = bed.store().processes(10).await.unwrap();
    assert_eq!(stored, claimed, "what the claim returned is what it stored");
}

/// A worker claims nothing while it has no heartbeat row (a rescuer may have deleted it).
async fn claims_nothing_without_the_workers_heartbeat(backend: Backend) {
    let bed = Bed::new(backend).await;
    let worker_id = new_uuid();
    bed.enqueue(requests("job", 2)).await;
    assert!(bed.claim(worker_id, 2, 0).await.is_empty());
    assert_eq!(pending(bed.store()).await.len(), 2);
    bed.register(worker_id).await;
    assert_eq!(bed.claim(worker_id, 2, 0).await.len(), 2);
}

/// Only the queues asked for, one or several.
async fn claims_only_from_the_queues_asked_for(backend: Backend) {
    let bed = Bed::new(backend).await;
    let worker_id = bed.worker().await;
    let on = |name: &str, queue: &str| NewRequest {
        queue: queue.into(),
        ..request(name)
    };
    bed.enqueue(vec![
        on("a1", "a"),
        on("b1", "b"),
        on("c1", "c"),
        on("a2", "a"),
    ])
    .await;
    let how = ClaimHow::default();
    let queues = |names: &[&str]| names.iter().map(|q| q.to_string()).collect::<Vec<_>>();
    let store = bed.store();
    let two = store
        .claim(worker_id, &queues(&["a", "b"]), 10, 0, how.clone())
        .await
        .unwrap();
    let names: Vec<&str> = two.iter().map(|p| p.job_class.as_str()).collect();
    assert_eq!(names, ["a1", "b1", "a2"]);
    let none = store
        .claim(worker_id, &queues(&["other"]), 10, 0, how.clone())
        .await
        .unwrap();
    assert!(none.is_empty());
    let one = store
        .claim(worker_id, &queues(&["c"]), 10, 0, how.clone())
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].job_class, "c1");
}

/// Requests whose start is later stay; `next_start_in` tells when the first becomes ready.
async fn leaves_requests_whose_start_is_later(backend: Backend) {
    let bed = Bed::new(backend).await;
    let worker_id = bed.worker().await;
    let store = bed.store();
    let default = ["default".to_string()];
    assert_eq!(store.next_start_in(&default).await.unwrap(), None);
    let now = Utc::now();
    let starting = |name: &str, start| NewRequest {
        start,
        ..request(name)
    };
    bed.enqueue(vec![
        starting("in-an-hour", Start::After(Duration::from_secs(3600))),
        starting("in-two-hours", Start::At(now + TimeDelta::hours(2))),
        starting("due", Start::At(now - TimeDelta::seconds(1))),
        starting("now", Start::Now),
    ])
    .await;
    let claimed = bed.claim(worker_id, 10, 0).await;
    let names: Vec<&str> = claimed.iter().map(|p| p.job_class.as_str()).collect();
    assert_eq!(names, ["due", "now"]);
    let next = store.next_start_in(&default).await.unwrap().unwrap();
    assert!(
        next > Duration::from_secs(3590) && next <= Duration::from_secs(3600),
        "{next:?}"
    );
    let other = ["other".to_string()];
    assert_eq!(store.next_start_in(&other).await.unwrap(), None);
    assert_eq!(pending(store).await.len(), 2);
}

/// The claim loop's vacuum runs on its own connection, outside any transaction.
async fn vacuums_the_request_tables(backend: Backend) {
    let bed = Bed::new(backend).await;
    let worker_id = bed.worker().await;
    bed.enqueue(requests("job", 3)).await;
    bed.claim(worker_id, 3, 0).await;
    bed.store().vacuum_requests().await.unwrap();
}

conformance!(
    claims_in_priority_then_start_time_then_id_order,
    claims_at_most_start_plus_prefetch,
    stamps_started_at_only_for_the_jobs_it_starts,
    claims_nothing_without_the_workers_heartbeat,
    claims_only_from_the_queues_asked_for,
    leaves_requests_whose_start_is_later,
    vacuums_the_request_tables,
);
