//! What operators read (`Inspect`), `purge`, and the database's clock.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeDelta, Utc};

use super::{request, requests, uuids_of, Bed};
use crate::model::{new_uuid, JobStatus};
use crate::store::{NewHeartbeat, NewRequest, QueueStats, ResultFilter, Start};
use crate::testing::{conformance, Backend};

/// Pending requests in claim order, processes by id, each up to a limit.
async fn lists_requests_and_processes(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let worker_id = bed.worker().await;
    let urgent = NewRequest {
        priority: 9,
        ..request("urgent")
    };
    let made = bed.enqueue(vec![request("a"), urgent, request("b")]).await;
    let listed = store.requests(10).await.unwrap();
    assert_eq!(
        uuids_of(&listed),
        [made[1].uuid, made[0].uuid, made[2].uuid]
    );
    assert_eq!(listed[0], made[1]);
    assert_eq!(store.requests(1).await.unwrap(), [made[1].clone()]);

    let claimed = bed.claim(worker_id, 3, 0).await;
    assert_eq!(store.processes(10).await.unwrap(), claimed);
    assert_eq!(store.processes(2).await.unwrap(), claimed[..2]);
}

/// Lookups by uuid: a request; a process by its own uuid or its request's; a result by its
/// own uuid (`result_by_uuid`), or else by its process's uuid or as the newest result of a
/// request (`find_result`).
async fn finds_rows_by_uuid(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let results = bed
        .results_of(vec![
            (request("older"), JobStatus::Errored),
            (request("newer"), JobStatus::Successful),
        ])
        .await;
    let (older, newer) = (&results[0], &results[1]);
    // Two results of one request (a retry chain keeps the request uuid only in plain.jobs'
    // own rows): the newer one is found by the request's uuid.
    let sql = format!(
        "UPDATE plainjobs_jobresult SET job_request_uuid = '{}' WHERE uuid = '{}'",
        older.job_request_uuid, newer.uuid
    );
    bed.db.exec(&sql).await;
    let by_request = store.find_result(older.job_request_uuid).await.unwrap();
    assert_eq!(by_request.map(|r| r.uuid), Some(newer.uuid));
    let by_own = store.find_result(older.uuid).await.unwrap();
    assert_eq!(by_own.as_ref(), Some(older));
    // The process uuid a worker logged finds the result once the process row is gone.
    let by_process = store.find_result(older.job_process_uuid).await.unwrap();
    assert_eq!(by_process.as_ref(), Some(older));
    assert_eq!(
        store.result_by_uuid(older.job_process_uuid).await.unwrap(),
        None
    );
    assert_eq!(
        store.result_by_uuid(older.uuid).await.unwrap().as_ref(),
        Some(older)
    );
    assert_eq!(
        store.result_by_uuid(older.job_request_uuid).await.unwrap(),
        None
    );
    assert_eq!(store.find_result(new_uuid()).await.unwrap(), None);

    let worker_id = bed.worker().await;
    let made = bed.enqueue(requests("job", 3)).await;
    assert_eq!(
        store.request_by_uuid(made[0].uuid).await.unwrap(),
        Some(made[0].clone())
    );
    assert_eq!(store.request_by_uuid(new_uuid()).await.unwrap(), None);
    let p = bed.claim(worker_id, 1, 0).await.remove(0);
    for uuid in [p.uuid, p.job_request_uuid] {
        assert_eq!(store.process_by_uuid(uuid).await.unwrap(), Some(p.clone()));
    }
    assert_eq!(store.process_by_uuid(new_uuid()).await.unwrap(), None);
}

/// Results newest first, filtered by status, queue and class, up to a limit.
async fn filters_results(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let on = |class: &str, queue: &str| NewRequest {
        queue: queue.into(),
        ..request(class)
    };
    let made = bed
        .results_of(vec![
            (on("X", "default"), JobStatus::Successful),
            (on("X", "default"), JobStatus::Errored),
            (on("Y", "default"), JobStatus::Errored),
        ])
        .await;
    let results = |status, queue: Option<&str>, class: Option<&str>, limit| {
        let filter = ResultFilter {
            status,
            queue: queue.map(str::to_string),
            job_class: class.map(str::to_string),
            limit,
            ..Default::default()
        };
        async move {
            let found = store.results(&filter).await.unwrap();
            found.iter().map(|r| r.uuid).collect::<Vec<_>>()
        }
    };
    let [s, e1, e2] = [made[0].uuid, made[1].uuid, made[2].uuid];
    assert_eq!(results(None, None, None, 10).await, [e2, e1, s]);
    assert_eq!(results(None, None, None, 1).await, [e2]);
    assert_eq!(
        results(Some(JobStatus::Errored), None, None, 10).await,
        [e2, e1]
    );
    assert_eq!(results(None, None, Some("X"), 10).await, [e1, s]);
    assert_eq!(results(None, Some("default"), Some("Y"), 10).await, [e2]);
    assert!(results(None, Some("other"), None, 10).await.is_empty());

    // By when they were written: the first is moved an hour back.
    let sql = format!(
        "UPDATE plainjobs_jobresult SET created_at = {} WHERE uuid = '{s}'",
        bed.earlier("created_at", 3600)
    );
    bed.db.exec(&sql).await;
    let half_an_hour_ago = Utc::now() - TimeDelta::minutes(30);
    let window = |filter: ResultFilter| async move {
        let found = store.results(&filter).await.unwrap();
        found.iter().map(|r| r.uuid).collect::<Vec<_>>()
    };
    assert_eq!(
        window(ResultFilter::new().since(half_an_hour_ago)).await,
        [e2, e1]
    );
    assert_eq!(
        window(ResultFilter::new().until(half_an_hour_ago)).await,
        [s]
    );
    let since = half_an_hour_ago - TimeDelta::hours(1);
    let filter = ResultFilter::new().since(since).until(half_an_hour_ago);
    assert_eq!(window(filter.status(JobStatus::Successful)).await, [s]);
}

/// The pending and running jobs holding a key, by job name and key; oldest first.
async fn finds_the_jobs_holding_a_key(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let keyed = |class: &str, key: &str| NewRequest {
        concurrency_key: key.into(),
        ..request(class)
    };
    let worker_id = bed.worker().await;
    let made = bed
        .enqueue(vec![keyed("X", "k"), keyed("X", "k"), keyed("X", "other")])
        .await;
    bed.enqueue(vec![keyed("Y", "k")]).await;
    let claimed = bed.claim(worker_id, 1, 0).await;
    assert_eq!(claimed[0].job_request_uuid, made[0].uuid);
    let (requests, processes) = store.holding_key("X", "k", 10).await.unwrap();
    assert_eq!(uuids_of(&requests), [made[1].uuid]);
    assert_eq!(processes, claimed);
    let (requests, processes) = store.holding_key("X", "none", 10).await.unwrap();
    assert!(requests.is_empty() && processes.is_empty());
    let (requests, _) = store.holding_key("Y", "k", 10).await.unwrap();
    assert_eq!(requests.len(), 1);
}

/// Registered workers, oldest registration first.
async fn lists_workers(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let first = bed.worker().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let hb = NewHeartbeat {
        worker_id: new_uuid(),
        hostname: "host-2".into(),
        pid: 7,
        queues: vec!["q".into()],
    };
    store.heartbeat(&hb).await.unwrap();
    let workers = store.workers().await.unwrap();
    let ids: Vec<_> = workers.iter().map(|w| w.worker_id).collect();
    assert_eq!(ids, [first, hb.worker_id]);
    assert_eq!(
        (workers[1].hostname.as_str(), workers[1].pid),
        ("host-2", 7)
    );
    assert_eq!(workers[1].queues, ["q"]);
}

/// Counts per queue: ready and scheduled requests, waiting and running processes, results by
/// status.
async fn counts_per_queue(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let on = |queue: &str, start| NewRequest {
        queue: queue.into(),
        start,
        ..request(queue)
    };
    bed.results_of(vec![
        (on("a", Start::Now), JobStatus::Successful),
        (on("a", Start::Now), JobStatus::Errored),
    ])
    .await;
    let later = Start::At(Utc::now() + TimeDelta::hours(1));
    bed.enqueue(vec![
        on("a", Start::Now),
        on("a", Start::Now),
        on("a", later),
    ])
    .await;
    let worker_id = bed.worker().await;
    bed.enqueue(vec![on("b", Start::Now), on("b", Start::Now)])
        .await;
    let queues = ["b".to_string()];
    let how = Default::default();
    store.claim(worker_id, &queues, 1, 1, how).await.unwrap();

    let stats = store.stats().await.unwrap();
    let expected = [
        QueueStats {
            queue: "a".into(),
            ready: 2,
            scheduled: 1,
            results: BTreeMap::from([("ERRORED".into(), 1), ("SUCCESSFUL".into(), 1)]),
            ..Default::default()
        },
        QueueStats {
            queue: "b".into(),
            waiting: 1,
            running: 1,
            ..Default::default()
        },
    ];
    let key = |s: &QueueStats| {
        let results: Vec<_> = s.results.iter().map(|(k, v)| (k.clone(), *v)).collect();
        (
            s.queue.clone(),
            s.ready,
            s.scheduled,
            s.waiting,
            s.running,
            results,
        )
    };
    let got: Vec<_> = stats.iter().map(key).collect();
    let want: Vec<_> = expected.iter().map(key).collect();
    assert_eq!(got, want);
}

/// The database's clock (the host's, for SQLite), which every time comparison uses.
async fn now_is_the_databases_clock(backend: Backend) {
    let bed = Bed::new(backend).await;
    let now = bed.store().now().await.unwrap();
    let off = now - Utc::now();
    assert!(off.abs() < TimeDelta::seconds(5), "{off}");
}

conformance!(
    lists_requests_and_processes,
    finds_rows_by_uuid,
    filters_results,
    finds_the_jobs_holding_a_key,
    lists_workers,
    counts_per_queue,
    now_is_the_databases_clock,
);
