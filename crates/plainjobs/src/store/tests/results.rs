//! Results: written in a transaction (`StoreTx`), retried (`lock_retryable`, `link_retry`,
//! `retryable_results`, `bump_retry_attempt`) and kept for a while (`delete_results_before`).

use std::time::Duration;

use uuid::Uuid;

use super::{all_results, request, requests, sql_list, Bed};
use crate::model::{new_uuid, JobResult, JobStatus};
use crate::store::NewRequest;
use crate::testing::{conformance, Backend};

fn with_retries(name: &str, retries: i16, retry_attempt: i16) -> NewRequest {
    NewRequest {
        retries,
        retry_attempt,
        ..request(name)
    }
}

fn uuids(results: &[JobResult]) -> Vec<Uuid> {
    results.iter().map(|r| r.uuid).collect()
}

/// In one transaction, as a retry is written: the process is deleted (only by its worker),
/// its result inserted from it, locked as retryable and linked to its retry; all visible once
/// committed.
async fn a_transaction_moves_a_process_to_a_result_and_links_its_retry(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let worker_id = bed.worker().await;
    bed.enqueue(vec![with_retries("job", 2, 0)]).await;
    let p = bed.claim(worker_id, 1, 0).await.remove(0);

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.delete_process(p.uuid, new_uuid()).await.unwrap(), None);
    let gone = tx.delete_process(p.uuid, worker_id).await.unwrap();
    assert_eq!(gone.as_ref(), Some(&p));
    let result = tx
        .insert_result(&p, JobStatus::Errored, "boom", None)
        .await
        .unwrap();
    assert_eq!(
        (result.status, result.error.as_str()),
        (JobStatus::Errored, "boom")
    );
    assert_eq!(result.job_process_uuid, p.uuid);
    assert_eq!(result.job_request_uuid, p.job_request_uuid);
    assert_eq!(
        (result.started_at, result.requested_at),
        (p.started_at, p.requested_at)
    );
    assert_eq!((result.retries, result.retry_attempt), (2, 0));
    assert_eq!(result.retry_job_request_uuid, None);
    let locked = tx.lock_retryable(result.uuid, false).await.unwrap();
    assert_eq!(locked.as_ref(), Some(&result));
    let retry = new_uuid();
    tx.link_retry(result.uuid, retry).await.unwrap();
    let linked = tx.lock_retryable(result.uuid, true).await.unwrap();
    assert_eq!(linked, None, "retried already, even with force");
    tx.commit().await.unwrap();

    let stored = store.result_by_uuid(result.uuid).await.unwrap().unwrap();
    assert_eq!(stored.retry_job_request_uuid, Some(retry));
    assert!(store.processes(10).await.unwrap().is_empty());
}

/// A transaction dropped without a commit leaves everything as it was.
async fn an_uncommitted_transaction_changes_nothing(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let worker_id = bed.worker().await;
    bed.enqueue(requests("job", 1)).await;
    let p = bed.claim(worker_id, 1, 0).await.remove(0);
    let mut tx = store.begin().await.unwrap();
    tx.delete_process(p.uuid, worker_id).await.unwrap().unwrap();
    tx.insert_result(&p, JobStatus::Successful, "", None)
        .await
        .unwrap();
    tx.insert_requests(requests("follow-up", 1)).await.unwrap();
    drop(tx);
    assert_eq!(store.processes(10).await.unwrap(), [p]);
    assert!(all_results(store).await.is_empty());
    assert!(store.requests(10).await.unwrap().is_empty());
}

/// `lock_retryable` takes a failed result with retries left; with `force`, any failed result
/// not yet retried whatever its attempts; never a success. On PostgreSQL another transaction
/// skips a result one holds.
async fn lock_retryable_takes_retryable_results_or_with_force_any_failed(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let results = bed
        .results_of(vec![
            (with_retries("no-retries", 0, 0), JobStatus::Errored),
            (with_retries("used-up", 2, 2), JobStatus::Lost),
            (with_retries("left", 1, 0), JobStatus::Cancelled),
            (with_retries("success", 1, 0), JobStatus::Successful),
        ])
        .await;
    let mut tx = store.begin().await.unwrap();
    for (r, unforced, forced) in [
        (&results[0], false, true),
        (&results[1], false, true),
        (&results[2], true, true),
        (&results[3], false, false),
    ] {
        let found = tx.lock_retryable(r.uuid, false).await.unwrap();
        assert_eq!(found.is_some(), unforced, "{} without force", r.job_class);
        let found = tx.lock_retryable(r.uuid, true).await.unwrap();
        assert_eq!(found.is_some(), forced, "{} with force", r.job_class);
    }
    if backend == Backend::Postgres {
        let mut other = store.begin().await.unwrap();
        let skipped = other.lock_retryable(results[2].uuid, false).await.unwrap();
        assert_eq!(skipped, None, "locked by the first transaction");
    }
    tx.commit().await.unwrap();
}

/// The retry pass walks the retryable results by id, a page at a time.
async fn retryable_results_pages_by_id(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let results = bed
        .results_of(vec![
            (with_retries("a", 1, 0), JobStatus::Errored),
            (with_retries("success", 1, 0), JobStatus::Successful),
            (with_retries("c", 2, 1), JobStatus::Lost),
            (with_retries("no-retries", 0, 0), JobStatus::Errored),
            (with_retries("e", 1, 0), JobStatus::Cancelled),
            (with_retries("deferred", 1, 0), JobStatus::Deferred),
            (with_retries("linked", 1, 0), JobStatus::Errored),
        ])
        .await;
    let mut tx = store.begin().await.unwrap();
    tx.link_retry(results[6].uuid, new_uuid()).await.unwrap();
    tx.commit().await.unwrap();

    let default = ["default".to_string()];
    let page = store.retryable_results(&default, 0, 2).await.unwrap();
    assert_eq!(uuids(&page), [results[0].uuid, results[2].uuid]);
    let page = store
        .retryable_results(&default, page[1].id, 2)
        .await
        .unwrap();
    assert_eq!(uuids(&page), [results[4].uuid]);
    assert!(store
        .retryable_results(&default, page[0].id, 2)
        .await
        .unwrap()
        .is_empty());
    // Only the queues asked for.
    let elsewhere = ["other".to_string(), "more".to_string()];
    assert!(store
        .retryable_results(&elsewhere, 0, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Bumping a result's attempt spends one of its retries (an unbuildable retry is not tried
/// forever); a result already retried is left alone.
async fn bump_retry_attempt_spends_one_retry(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let results = bed
        .results_of(vec![
            (with_retries("two", 2, 0), JobStatus::Errored),
            (with_retries("linked", 2, 0), JobStatus::Errored),
        ])
        .await;
    let (two, linked) = (&results[0], &results[1]);
    let mut tx = store.begin().await.unwrap();
    tx.link_retry(linked.uuid, new_uuid()).await.unwrap();
    tx.commit().await.unwrap();
    let attempt = |uuid| async move {
        let r = store.result_by_uuid(uuid).await.unwrap().unwrap();
        r.retry_attempt
    };

    store.bump_retry_attempt(two.uuid).await.unwrap();
    assert_eq!(attempt(two.uuid).await, 1);
    let default = ["default".to_string()];
    assert_eq!(
        store
            .retryable_results(&default, 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    store.bump_retry_attempt(two.uuid).await.unwrap();
    assert_eq!(attempt(two.uuid).await, 2);
    assert!(store
        .retryable_results(&default, 0, 10)
        .await
        .unwrap()
        .is_empty());
    store.bump_retry_attempt(linked.uuid).await.unwrap();
    assert_eq!(attempt(linked.uuid).await, 0);
}

/// Retention deletes results older than its age, oldest first, at most a batch at a time.
async fn delete_results_before_deletes_old_results_in_batches(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let results = bed
        .results_of(
            (0..5)
                .map(|i| (request(&format!("r{i}")), JobStatus::Successful))
                .collect(),
        )
        .await;
    for (r, hours) in results.iter().zip([3, 4, 2]) {
        let sql = format!(
            "UPDATE plainjobs_jobresult SET created_at = {} WHERE uuid IN ({})",
            bed.earlier("created_at", hours * 3600),
            sql_list(&[r.uuid])
        );
        bed.db.exec(&sql).await;
    }
    let hour = Duration::from_secs(3600);
    assert_eq!(store.delete_results_before(hour, 2).await.unwrap(), 2);
    let left = uuids(&all_results(store).await);
    let expected: Vec<Uuid> = [4, 3, 2].iter().map(|&i| results[i].uuid).collect();
    assert_eq!(left, expected, "the two oldest went first");
    assert_eq!(store.delete_results_before(hour, 2).await.unwrap(), 1);
    assert_eq!(store.delete_results_before(hour, 2).await.unwrap(), 0);
    assert_eq!(all_results(store).await.len(), 2);
}

conformance!(
    a_transaction_moves_a_process_to_a_result_and_links_its_retry,
    an_uncommitted_transaction_changes_nothing,
    lock_retryable_takes_retryable_results_or_with_force_any_failed,
    retryable_results_pages_by_id,
    bump_retry_attempt_spends_one_retry,
    delete_results_before_deletes_old_results_in_batches,
);
