//! `Store::cancel`, `existing_processes` and the paused queues.

use std::time::Duration;

use chrono::{TimeDelta, Utc};

use super::{request, requests, Bed};
use crate::model::{new_uuid, JobStatus};
use crate::store::{CancelTarget, Heard, JobFilter, NewRequest};
use crate::testing::{conformance, Backend};

/// A pending request cancelled by its uuid: gone, with a CANCELLED result that keeps its
/// request's fields, says why, and is not retryable (its retries set to its attempt).
async fn cancelling_a_pending_job_leaves_a_cancelled_result(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let made = bed
        .enqueue(vec![NewRequest {
            retries: 3,
            retry_attempt: 1,
            queue: "mail".into(),
            ..request("job")
        }])
        .await;
    let target = [made[0].uuid];
    let done = store
        .cancel(CancelTarget::Uuids(&target), "Cancelled by ops")
        .await
        .unwrap();
    assert!(done.claimed.is_empty());
    let [result] = &done.pending[..] else {
        panic!("one result: {:?}", done.pending)
    };
    assert_eq!(result.status, JobStatus::Cancelled);
    assert_eq!(result.error, "Cancelled by ops");
    assert_eq!(result.job_request_uuid, made[0].uuid);
    assert_eq!(
        (result.queue.as_str(), result.job_class.as_str()),
        ("mail", "job")
    );
    assert_eq!((result.retries, result.retry_attempt), (1, 1));
    assert_eq!(result.started_at, None);
    assert_ne!(result.job_process_uuid, made[0].uuid);
    assert!(super::pending(store).await.is_empty());
    assert_eq!(super::all_results(store).await.len(), 1);
    let retryable = store
        .retryable_results(&["mail".to_string()], 0, 10)
        .await
        .unwrap();
    assert!(retryable.is_empty(), "a cancelled job is not retried");
}

/// A claimed job cancelled by its request's uuid or its process's: the process is gone, its
/// result names the worker's process, and a PostgreSQL listener hears about it.
async fn cancelling_a_claimed_job_tells_its_worker(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let mut listener = store.listener().await.unwrap().expect("a listener");
    let worker_id = bed.worker().await;
    bed.enqueue(requests("job", 2)).await;
    let claimed = bed.claim(worker_id, 1, 1).await;
    let watched: Vec<_> = claimed.iter().map(|p| p.uuid).collect();
    drain(&mut *listener).await;

    let by_request = [claimed[0].job_request_uuid];
    let done = store
        .cancel(CancelTarget::Uuids(&by_request), "Cancelled")
        .await
        .unwrap();
    let [(result, worker)] = &done.claimed[..] else {
        panic!("one claimed job: {:?}", done.claimed)
    };
    assert_eq!(*worker, worker_id);
    assert_eq!(result.job_process_uuid, claimed[0].uuid);
    assert_eq!(result.started_at, claimed[0].started_at);
    if backend == Backend::Postgres {
        let heard = tokio::time::timeout(Duration::from_secs(10), listener.wait()).await;
        assert_eq!(heard.expect("a notification").unwrap(), Heard::Control);
    }
    let by_process = [claimed[1].uuid];
    let done = store
        .cancel(CancelTarget::Uuids(&by_process), "Cancelled")
        .await
        .unwrap();
    assert_eq!(done.claimed.len(), 1);
    assert!(store.existing_processes(&watched).await.unwrap().is_empty());
    // Cancelling again finds nothing: the job has its one result.
    let again = store
        .cancel(CancelTarget::Uuids(&by_process), "Cancelled")
        .await
        .unwrap();
    assert!(again.pending.is_empty() && again.claimed.is_empty());
    assert_eq!(super::all_results(store).await.len(), 2);
}

/// Reads what the listener has heard so far (the claim's own notifications).
async fn drain(listener: &mut dyn crate::store::Listener) {
    while tokio::time::timeout(Duration::from_millis(300), listener.wait())
        .await
        .is_ok()
    {}
}

/// `existing_processes` names the processes that are still there.
async fn existing_processes_are_those_still_there(backend: Backend) {
    let bed = Bed::new(backend).await;
    let worker_id = bed.worker().await;
    bed.enqueue(requests("job", 2)).await;
    let claimed = bed.claim(worker_id, 2, 0).await;
    bed.finish(worker_id, claimed[0].uuid, JobStatus::Successful)
        .await;
    let asked = [claimed[0].uuid, claimed[1].uuid, new_uuid()];
    let existing = bed.store().existing_processes(&asked).await.unwrap();
    assert_eq!(existing, vec![claimed[1].uuid]);
}

/// Cancel by queue, job name and time of enqueue: only the matching pending and running jobs,
/// each with a CANCELLED result.
async fn cancelling_by_filter_takes_only_what_it_matches(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let on = |class: &str, queue: &str| NewRequest {
        queue: queue.into(),
        ..request(class)
    };
    let worker_id = bed.worker().await;
    bed.enqueue(vec![on("X", "default"), on("X", "mail"), on("Y", "mail")])
        .await;
    let running = bed.claim(worker_id, 1, 0).await;
    assert_eq!(running.len(), 1);
    let cancel = |filter: JobFilter| async move {
        store
            .cancel(CancelTarget::Matching(&filter), "purged")
            .await
            .unwrap()
    };
    let done = cancel(JobFilter::new().queue("mail").job_class("Y")).await;
    assert_eq!((done.pending.len(), done.claimed.len()), (1, 0));
    // Enqueued in the future: nothing yet.
    let done = cancel(JobFilter::new().since(Utc::now() + TimeDelta::hours(1))).await;
    assert_eq!((done.pending.len(), done.claimed.len()), (0, 0));
    let sql = format!(
        "UPDATE plainjobs_jobprocess SET requested_at = {}",
        bed.earlier("requested_at", 3600)
    );
    bed.db.exec(&sql).await;
    let done = cancel(JobFilter::new().until(Utc::now() - TimeDelta::minutes(30))).await;
    assert_eq!((done.pending.len(), done.claimed.len()), (0, 1));
    assert!(store.processes(10).await.unwrap().is_empty());
    let left = store.requests(10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].queue, "mail");
    let done = cancel(JobFilter::new()).await;
    assert_eq!((done.pending.len(), done.claimed.len()), (1, 0));
    let results = super::all_results(store).await;
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r.status == JobStatus::Cancelled));
}

/// Pause and resume: each says whether it changed anything; the list shows who paused what.
async fn queues_pause_and_resume(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    assert!(store.paused_queues().await.unwrap().is_empty());
    assert!(store.pause_queue("mail", "ops").await.unwrap());
    assert!(!store.pause_queue("mail", "someone else").await.unwrap());
    // A name that needs quoting everywhere it goes.
    let odd = "it's $$ {\"q\"} \\ 'x'";
    assert!(store.pause_queue(odd, "ops").await.unwrap());
    let paused = store.paused_queues().await.unwrap();
    let names: Vec<&str> = paused.iter().map(|p| p.queue.as_str()).collect();
    assert_eq!(names, vec![odd, "mail"]);
    let mail = &paused[1];
    assert_eq!(mail.paused_by, "ops");
    let at = mail.paused_at.expect("a time");
    assert!((Utc::now() - at).abs() < TimeDelta::seconds(30), "{at}");
    assert!(store.resume_queue("mail").await.unwrap());
    assert!(!store.resume_queue("mail").await.unwrap());
    let paused = store.paused_queues().await.unwrap();
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0].queue, odd);
}

/// Pausing tells a PostgreSQL listener of the same schema, not one of another schema.
async fn pausing_is_heard_by_its_own_schema_only(backend: Backend) {
    if backend != Backend::Postgres {
        return; // SQLite workers find pauses by looking every poll interval.
    }
    let bed = Bed::new(backend).await;
    let other = Bed::new(backend).await;
    let mut listener = bed.store().listener().await.unwrap().expect("a listener");
    let quiet = Duration::from_millis(500);
    other.store().pause_queue("mail", "ops").await.unwrap();
    let heard = tokio::time::timeout(quiet, listener.wait()).await;
    assert!(heard.is_err(), "heard another schema's pause: {heard:?}");
    bed.store().pause_queue("mail", "ops").await.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(10), listener.wait()).await;
    assert_eq!(heard.expect("a notification").unwrap(), Heard::Control);
}

conformance!(
    cancelling_a_pending_job_leaves_a_cancelled_result,
    cancelling_a_claimed_job_tells_its_worker,
    existing_processes_are_those_still_there,
    cancelling_by_filter_takes_only_what_it_matches,
    queues_pause_and_resume,
    pausing_is_heard_by_its_own_schema_only,
);
