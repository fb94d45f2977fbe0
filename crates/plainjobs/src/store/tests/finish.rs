//! The result writer's `finish_many`, and handing jobs back: `hand_back`,
//! `hand_back_unaccounted`.

use std::collections::HashSet;

use chrono::{TimeDelta, Utc};
use uuid::Uuid;

use super::{all_results, pending, request, requests, Bed};
use crate::model::{new_uuid, JobStatus};
use crate::store::{Finish, NewRequest, Start};
use crate::testing::{conformance, Backend};

fn finish(uuid: Uuid, status: JobStatus, error: &str) -> Finish {
    Finish {
        process_uuid: uuid,
        status,
        error: error.into(),
    }
}

/// One call records the starts of jobs claimed ahead and the ends of others, and returns the
/// processes whose results it wrote. A job that began and ended between two writes has its
/// start recorded at its end.
async fn finish_many_writes_starts_and_ends_in_one_call(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let worker_id = bed.worker().await;
    bed.enqueue(requests("job", 4)).await;
    let claimed = bed.claim(worker_id, 1, 3).await;
    let [p0, p1, p2, p3] = &claimed[..] else {
        panic!("four claimed: {claimed:?}");
    };
    let items = [
        finish(p0.uuid, JobStatus::Successful, ""),
        finish(p2.uuid, JobStatus::Errored, "boom"),
    ];
    let written = store
        .finish_many(worker_id, &[p1.uuid], &items, false)
        .await;
    let written: HashSet<Uuid> = written.unwrap().into_iter().collect();
    assert_eq!(written, HashSet::from([p0.uuid, p2.uuid]));

    let results = all_results(store).await;
    let of = |uuid: Uuid| results.iter().find(|r| r.job_process_uuid == uuid).unwrap();
    let (r0, r2) = (of(p0.uuid), of(p2.uuid));
    assert_eq!((r0.status, r0.error.as_str()), (JobStatus::Successful, ""));
    assert_eq!(r0.started_at, p0.started_at, "started by its claim");
    assert_eq!(r0.job_request_uuid, p0.job_request_uuid);
    assert_eq!(r0.requested_at, p0.requested_at);
    assert!(r0.ended_at >= r0.started_at);
    assert_eq!((r2.status, r2.error.as_str()), (JobStatus::Errored, "boom"));
    let (began, ended) = (r2.started_at.unwrap(), r2.ended_at.unwrap());
    assert!(
        began >= p2.created_at && began <= ended,
        "{began} .. {ended}"
    );
    assert!(
        ended - began < TimeDelta::seconds(1),
        "start recorded at its end"
    );

    let left = store.processes(10).await.unwrap();
    assert_eq!(left.len(), 2);
    let p1_started = left[0].started_at;
    assert!(p1_started.is_some(), "its start recorded");
    assert_eq!(left[1].started_at, None);

    // Starts alone; a start already recorded stays as it was.
    let starts = [p1.uuid, p3.uuid];
    let none = store
        .finish_many(worker_id, &starts, &[], false)
        .await
        .unwrap();
    assert!(none.is_empty());
    let left = store.processes(10).await.unwrap();
    assert_eq!(left[0].started_at, p1_started);
    assert!(left[1].started_at.is_some());
    assert!(store
        .finish_many(worker_id, &[], &[], false)
        .await
        .unwrap()
        .is_empty());
}

/// A finish writes only processes that still exist and belong to the worker: one rescued in
/// the meantime, one of another worker, one already finished are left alone.
async fn a_late_finish_writes_nothing(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let (worker_id, other) = (bed.worker().await, bed.worker().await);
    bed.enqueue(requests("job", 3)).await;
    let mine = bed.claim(worker_id, 2, 0).await;
    let theirs = bed.claim(other, 1, 0).await;

    let done = bed.finish(worker_id, mine[0].uuid, JobStatus::Successful);
    assert_eq!(done.await, [mine[0].uuid]);
    let again = bed.finish(worker_id, mine[0].uuid, JobStatus::Errored);
    assert!(again.await.is_empty(), "finished already");
    let not_mine = bed.finish(worker_id, theirs[0].uuid, JobStatus::Successful);
    assert!(not_mine.await.is_empty(), "another worker's");

    bed.age_heartbeat(worker_id, 120).await;
    let rescued = store.rescue_worker(worker_id, std::time::Duration::from_secs(60));
    assert_eq!(rescued.await.unwrap().map(|r| r.len()), Some(1));
    let late = bed.finish(worker_id, mine[1].uuid, JobStatus::Successful);
    assert!(late.await.is_empty(), "rescued meanwhile");

    let results = all_results(store).await;
    let statuses: Vec<(Uuid, JobStatus)> = results
        .iter()
        .map(|r| (r.job_process_uuid, r.status))
        .collect();
    assert_eq!(
        statuses,
        [
            (mine[1].uuid, JobStatus::Lost),
            (mine[0].uuid, JobStatus::Successful)
        ]
    );
    assert_eq!(store.processes(10).await.unwrap(), theirs);
}

/// Unstarted jobs go back to the queue as they were enqueued: the same uuid and `created_at`,
/// no retry spent, due now. A started job, or another worker's, stays.
async fn hand_back_returns_unstarted_jobs_as_enqueued(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let worker_id = bed.worker().await;
    let now = Utc::now();
    let at = |name: &str, secs| NewRequest {
        start: Start::At(now - TimeDelta::seconds(secs)),
        retries: 3,
        retry_attempt: 1,
        ..request(name)
    };
    let made = bed
        .enqueue(vec![at("first", 30), at("second", 20), request("third")])
        .await;
    let claimed = bed.claim(worker_id, 1, 2).await;
    let all: Vec<Uuid> = claimed.iter().map(|p| p.uuid).collect();
    assert_eq!(store.hand_back(new_uuid(), &all).await.unwrap(), 0);
    assert_eq!(store.hand_back(worker_id, &[]).await.unwrap(), 0);
    assert_eq!(store.hand_back(worker_id, &all).await.unwrap(), 2);

    let back = pending(store).await;
    assert_eq!(back.len(), 2);
    for (r, sent) in back.iter().zip(&made[1..]) {
        assert_eq!(r.uuid, sent.uuid);
        assert_eq!(r.created_at, sent.created_at);
        assert_eq!(r.start_at, None, "due now");
        assert_eq!(
            (r.retries, r.retry_attempt),
            (sent.retries, sent.retry_attempt)
        );
        assert_eq!(
            (&r.parameters, &r.job_class),
            (&sent.parameters, &sent.job_class)
        );
    }
    let left = store.processes(10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].job_request_uuid, made[0].uuid);
}

/// After a claim's reply was lost: the worker's processes that it does not account for and
/// that never began (not started, or started by the claim itself) go back; the ones it
/// accounts for, and the ones that began later, stay.
async fn hand_back_unaccounted_takes_only_never_begun_unaccounted_jobs(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let worker_id = bed.worker().await;
    bed.enqueue(requests("job", 4)).await;
    let stamped = bed.claim(worker_id, 1, 0).await.remove(0);
    let ahead = bed.claim(worker_id, 0, 3).await;
    let (unstarted, held, began) = (&ahead[0], &ahead[1], &ahead[2]);
    store
        .finish_many(worker_id, &[began.uuid], &[], false)
        .await
        .unwrap();

    assert_eq!(
        store.hand_back_unaccounted(new_uuid(), &[]).await.unwrap(),
        0
    );
    let n = store.hand_back_unaccounted(worker_id, &[held.uuid]).await;
    assert_eq!(n.unwrap(), 2);
    let back: HashSet<Uuid> = pending(store).await.iter().map(|r| r.uuid).collect();
    assert_eq!(
        back,
        HashSet::from([stamped.job_request_uuid, unstarted.job_request_uuid])
    );
    let left: Vec<Uuid> = store
        .processes(10)
        .await
        .unwrap()
        .iter()
        .map(|p| p.uuid)
        .collect();
    assert_eq!(left, [held.uuid, began.uuid]);
}

conformance!(
    finish_many_writes_starts_and_ends_in_one_call,
    a_late_finish_writes_nothing,
    hand_back_returns_unstarted_jobs_as_enqueued,
    hand_back_unaccounted_takes_only_never_begun_unaccounted_jobs,
);
