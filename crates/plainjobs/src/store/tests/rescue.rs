//! Workers' rows and rescues: `heartbeat`, `deregister`, `stale_workers`, `rescue_worker`,
//! `rescue_orphans`, `rescue_unowned`.

use std::collections::HashSet;
use std::time::Duration;

use uuid::Uuid;

use super::{all_results, pending, requests, Bed};
use crate::model::{new_uuid, JobResult, JobStatus};
use crate::store::NewHeartbeat;
use crate::testing::{conformance, Backend};

const TIMEOUT: Duration = Duration::from_secs(60);

fn process_uuids(results: &[JobResult]) -> HashSet<Uuid> {
    results.iter().map(|r| r.job_process_uuid).collect()
}

/// The heartbeat registers a worker, refreshes it, and re-creates a row that vanished (true
/// when it (re-)created the row).
async fn heartbeat_creates_refreshes_and_recreates_the_row(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let hb = NewHeartbeat {
        worker_id: new_uuid(),
        hostname: "host-1".into(),
        pid: 42,
        queues: vec!["a".into(), "b".into()],
    };
    assert!(store.heartbeat(&hb).await.unwrap(), "created");
    let first = store.workers().await.unwrap().remove(0);
    assert_eq!(first.worker_id, hb.worker_id);
    assert_eq!((first.hostname.as_str(), first.pid), ("host-1", 42));
    assert_eq!(first.queues, ["a", "b"]);
    assert_eq!(first.started_at, first.last_heartbeat_at);

    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(!store.heartbeat(&hb).await.unwrap(), "refreshed");
    let second = store.workers().await.unwrap().remove(0);
    assert!(second.last_heartbeat_at > first.last_heartbeat_at);
    assert_eq!((second.id, second.started_at), (first.id, first.started_at));

    bed.db.exec("DELETE FROM plainjobs_workerheartbeat").await;
    assert!(store.heartbeat(&hb).await.unwrap(), "re-created");
    assert_eq!(store.workers().await.unwrap().len(), 1);
}

/// A worker deregisters only once it has no processes left (else its heartbeat is left to go
/// stale, so that they are rescued).
async fn deregister_is_refused_while_processes_remain(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let worker_id = bed.worker().await;
    bed.enqueue(requests("job", 1)).await;
    let claimed = bed.claim(worker_id, 1, 0).await;
    assert!(!store.deregister(worker_id).await.unwrap());
    assert_eq!(store.workers().await.unwrap().len(), 1);
    bed.finish(worker_id, claimed[0].uuid, JobStatus::Successful)
        .await;
    assert!(store.deregister(worker_id).await.unwrap());
    assert!(store.workers().await.unwrap().is_empty());
    assert!(!store.deregister(worker_id).await.unwrap(), "gone already");
}

/// Stale workers are those whose last heartbeat is older than the timeout, oldest first.
async fn stale_workers_are_those_past_the_timeout(backend: Backend) {
    let bed = Bed::new(backend).await;
    let (fresh, stale, staler) = (bed.worker().await, bed.worker().await, bed.worker().await);
    bed.age_heartbeat(stale, 120).await;
    bed.age_heartbeat(staler, 300).await;
    let found = bed.store().stale_workers(TIMEOUT).await.unwrap();
    assert_eq!(found, [staler, stale]);
    assert!(!found.contains(&fresh));
}

/// A stale worker is rescued once: its heartbeat row goes, its processes become LOST results
/// saying why. A worker that is not stale is left alone.
async fn rescue_worker_takes_a_stale_worker_once(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let worker_id = bed.worker().await;
    bed.enqueue(requests("job", 2)).await;
    let claimed = bed.claim(worker_id, 1, 1).await;
    assert_eq!(store.rescue_worker(worker_id, TIMEOUT).await.unwrap(), None);
    assert_eq!(store.processes(10).await.unwrap().len(), 2);

    bed.age_heartbeat(worker_id, 120).await;
    let lost = store.rescue_worker(worker_id, TIMEOUT).await.unwrap();
    let lost = lost.expect("rescued");
    assert_eq!(lost.len(), 2);
    for (r, p) in lost.iter().zip(&claimed) {
        assert_eq!((r.job_process_uuid, r.status), (p.uuid, JobStatus::Lost));
        assert_eq!(r.started_at, p.started_at);
        assert_eq!(r.job_request_uuid, p.job_request_uuid);
        assert!(r.error.contains(&worker_id.to_string()), "{}", r.error);
        assert!(r.error.contains("stopped heartbeating"), "{}", r.error);
    }
    assert_eq!(all_results(store).await.len(), 2);
    assert!(store.processes(10).await.unwrap().is_empty());
    assert!(store.workers().await.unwrap().is_empty());
    assert_eq!(store.rescue_worker(worker_id, TIMEOUT).await.unwrap(), None);
}

/// A live worker's own processes older than the timeout that it does not hold: those that
/// never began (not started, or started by their claim) go back to the queue; those that
/// began, or that it says began, become LOST. Held and young processes stay.
async fn rescue_orphans_hands_back_the_never_begun_and_loses_the_rest(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let worker_id = bed.worker().await;
    bed.enqueue(requests("job", 5)).await;
    let stamped = bed.claim(worker_id, 1, 0).await.remove(0);
    let ahead = bed.claim(worker_id, 0, 4).await;
    let (unstarted, began, held, said_began) = (&ahead[0], &ahead[1], &ahead[2], &ahead[3]);
    store
        .finish_many(worker_id, &[began.uuid], &[], false)
        .await
        .unwrap();
    let mut old: Vec<Uuid> = ahead.iter().map(|p| p.uuid).collect();
    old.push(stamped.uuid);
    bed.age_processes(&old, 120).await;
    bed.enqueue(requests("young", 1)).await;
    let young = bed.claim(worker_id, 0, 1).await.remove(0);

    let orphans = store
        .rescue_orphans(worker_id, TIMEOUT, &[held.uuid], &[said_began.uuid])
        .await
        .unwrap();
    assert_eq!(orphans.handed_back, 2);
    let back: HashSet<Uuid> = pending(store).await.iter().map(|r| r.uuid).collect();
    assert_eq!(
        back,
        HashSet::from([stamped.job_request_uuid, unstarted.job_request_uuid])
    );
    assert_eq!(
        process_uuids(&orphans.lost),
        HashSet::from([began.uuid, said_began.uuid])
    );
    assert!(orphans.lost.iter().all(|r| r.status == JobStatus::Lost));
    let left: Vec<Uuid> = store
        .processes(10)
        .await
        .unwrap()
        .iter()
        .map(|p| p.uuid)
        .collect();
    assert_eq!(left, [held.uuid, young.uuid]);
}

/// Processes older than the timeout whose worker has no heartbeat row become LOST; those of a
/// registered worker, and young ones, stay.
async fn rescue_unowned_loses_old_processes_of_no_worker(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let (owned, gone) = (bed.worker().await, bed.worker().await);
    bed.enqueue(requests("job", 3)).await;
    let a = bed.claim(owned, 1, 0).await.remove(0);
    let of_gone = bed.claim(gone, 0, 2).await;
    let (b, c) = (&of_gone[0], &of_gone[1]);
    bed.age_processes(&[a.uuid, b.uuid], 120).await;
    bed.db
        .exec(&format!(
            "DELETE FROM plainjobs_workerheartbeat WHERE worker_id = '{gone}'"
        ))
        .await;

    let lost = store.rescue_unowned(TIMEOUT).await.unwrap();
    assert_eq!(process_uuids(&lost), HashSet::from([b.uuid]));
    assert_eq!(lost[0].status, JobStatus::Lost);
    assert!(
        lost[0].error.contains("no heartbeat row"),
        "{}",
        lost[0].error
    );
    let left: Vec<Uuid> = store
        .processes(10)
        .await
        .unwrap()
        .iter()
        .map(|p| p.uuid)
        .collect();
    assert_eq!(left, [a.uuid, c.uuid]);
    assert!(store.rescue_unowned(TIMEOUT).await.unwrap().is_empty());
}

conformance!(
    heartbeat_creates_refreshes_and_recreates_the_row,
    deregister_is_refused_while_processes_remain,
    stale_workers_are_those_past_the_timeout,
    rescue_worker_takes_a_stale_worker_once,
    rescue_orphans_hands_back_the_never_begun_and_loses_the_rest,
    rescue_unowned_loses_old_processes_of_no_worker,
);
