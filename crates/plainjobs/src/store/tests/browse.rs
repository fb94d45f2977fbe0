//! Browsing (`browse.rs`, `counts.rs`): keyset pages with their filters, the links of a retry
//! chain, scheduled runs, queue depths, results counted per minute, and the operator's edits.

use std::time::Duration;

use chrono::{TimeDelta, Utc};

use super::{request, requests, uuids_of, Bed};
use crate::model::{new_uuid, JobStatus};
use crate::store::{
    Cursor, NewRequest, ProcessFilter, ProcessState, RequestFilter, ResultFilter, Start,
};
use crate::testing::{conformance, Backend};

fn ids<T>(rows: &[T], id: fn(&T) -> i64) -> Vec<i64> {
    rows.iter().map(id).collect()
}

/// Requests oldest first, a page at a time in both directions, filtered by queue, name and key.
async fn pages_requests_by_keyset(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let mut batch = requests("job", 5);
    batch[1].queue = "other".into();
    batch[2].concurrency_key = "k".into();
    let made = bed.enqueue(batch).await;
    let all: Vec<i64> = made.iter().map(|r| r.id).collect();
    let page = |filter: RequestFilter| async move {
        let rows = store.requests_page(&filter).await.unwrap();
        ids(&rows, |r| r.id)
    };
    // A page of two fetches three: the third tells there is more.
    assert_eq!(page(RequestFilter::new().limit(2)).await, all[..3]);
    let next = RequestFilter::new().limit(2).cursor(Cursor::Next(all[1]));
    assert_eq!(page(next).await, all[2..5]);
    let prev = RequestFilter::new().limit(2).cursor(Cursor::Prev(all[3]));
    assert_eq!(
        page(prev).await,
        all[..3],
        "in list order, the extra row first"
    );
    assert_eq!(page(RequestFilter::new().queue("other")).await, [all[1]]);
    assert_eq!(page(RequestFilter::new().job_class("job4")).await, [all[4]]);
    assert_eq!(
        page(RequestFilter::new().concurrency_key("k")).await,
        [all[2]]
    );
    assert!(page(RequestFilter::new().concurrency_key("none"))
        .await
        .is_empty());
}

/// Processes oldest first, by state (waiting: claimed ahead, not started), queue and worker.
async fn pages_processes_by_state_and_worker(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let worker_id = bed.worker().await;
    bed.enqueue(requests("job", 3)).await;
    let claimed = bed.claim(worker_id, 1, 2).await;
    let page = |filter: ProcessFilter| async move {
        let rows = store.processes_page(&filter).await.unwrap();
        ids(&rows, |p| p.id)
    };
    let all = ids(&claimed, |p| p.id);
    assert_eq!(page(ProcessFilter::new()).await, all);
    assert_eq!(
        page(ProcessFilter::new().state(ProcessState::Running)).await,
        all[..1]
    );
    assert_eq!(
        page(ProcessFilter::new().state(ProcessState::Waiting)).await,
        all[1..]
    );
    assert_eq!(page(ProcessFilter::new().worker(worker_id)).await, all);
    assert!(page(ProcessFilter::new().worker(new_uuid()))
        .await
        .is_empty());
    let next = ProcessFilter::new().limit(1).cursor(Cursor::Next(all[0]));
    assert_eq!(page(next).await, all[1..]);
}

/// Results newest first by keyset; "retried" is retried or a retry; a uuid finds the result by
/// its own, its process's or its request's uuid.
async fn pages_and_searches_results(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let made = bed
        .results_of(vec![
            (request("a"), JobStatus::Successful),
            (request("b"), JobStatus::Errored),
            (
                NewRequest {
                    retry_attempt: 1,
                    ..request("c")
                },
                JobStatus::Successful,
            ),
            (request("d"), JobStatus::Lost),
        ])
        .await;
    let all: Vec<i64> = made.iter().rev().map(|r| r.id).collect();
    let linked = format!(
        "UPDATE plainjobs_jobresult SET retry_job_request_uuid = '{}' WHERE uuid = '{}'",
        new_uuid(),
        made[1].uuid
    );
    bed.db.exec(&linked).await;
    let page = |filter: ResultFilter| async move {
        let rows = store.results(&filter).await.unwrap();
        ids(&rows, |r| r.id)
    };
    assert_eq!(page(ResultFilter::new().limit(2)).await, all[..2]);
    let next = ResultFilter::new().limit(2).cursor(Cursor::Next(all[1]));
    assert_eq!(page(next).await, all[2..]);
    let prev = ResultFilter::new().limit(2).cursor(Cursor::Prev(all[2]));
    assert_eq!(page(prev).await, all[..2]);
    assert_eq!(
        page(ResultFilter::new().retried()).await,
        [made[2].id, made[1].id]
    );
    assert_eq!(
        page(ResultFilter::new().retried().status(JobStatus::Errored)).await,
        [made[1].id]
    );
    for uuid in [
        made[3].uuid,
        made[3].job_process_uuid,
        made[3].job_request_uuid,
    ] {
        assert_eq!(page(ResultFilter::new().uuid(uuid)).await, [made[3].id]);
    }
    assert!(page(ResultFilter::new().uuid(new_uuid())).await.is_empty());
}

/// The links of a chain: the results of requests, and the result a request retried.
async fn finds_the_links_of_a_retry_chain(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let made = bed
        .results_of(vec![
            (request("first"), JobStatus::Errored),
            (request("retry"), JobStatus::Successful),
        ])
        .await;
    let (first, retry) = (&made[0], &made[1]);
    let link = format!(
        "UPDATE plainjobs_jobresult SET retry_job_request_uuid = '{}' WHERE uuid = '{}'",
        retry.job_request_uuid, first.uuid
    );
    bed.db.exec(&link).await;
    let of = store
        .results_of_requests(&[retry.job_request_uuid, first.job_request_uuid])
        .await
        .unwrap();
    assert_eq!(ids(&of, |r| r.id), [first.id, retry.id]);
    assert!(store.results_of_requests(&[]).await.unwrap().is_empty());
    let now = Utc::now() + TimeDelta::seconds(1);
    let parent = store
        .result_retried_by(retry.job_request_uuid, now)
        .await
        .unwrap();
    assert_eq!(parent.map(|r| r.uuid), Some(first.uuid));
    let before = first.created_at - TimeDelta::seconds(1);
    let too_early = store
        .result_retried_by(retry.job_request_uuid, before)
        .await
        .unwrap();
    assert_eq!(too_early, None, "written after the request was made");
    let none = store.result_retried_by(new_uuid(), now).await.unwrap();
    assert_eq!(none, None);
}

/// A schedule's runs: rows of the class whose key starts with the prefix, newest key first.
async fn lists_the_runs_of_a_schedule(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let keyed = |key: &str| NewRequest {
        concurrency_key: key.into(),
        ..request("cron")
    };
    let made = bed
        .results_of(vec![
            (keyed("nightly:scheduled:1700000000"), JobStatus::Successful),
            (keyed("nightly:scheduled:1700086400"), JobStatus::Errored),
            (keyed("other:scheduled:1700000000"), JobStatus::Successful),
            (keyed(""), JobStatus::Successful),
        ])
        .await;
    let pending = bed
        .enqueue(vec![NewRequest {
            start: Start::At(Utc::now() + TimeDelta::hours(1)),
            ..keyed("nightly:scheduled:1700172800")
        }])
        .await;
    let (requests, results) = store
        .scheduled_runs("cron", "nightly:scheduled:", 10)
        .await
        .unwrap();
    assert_eq!(uuids_of(&requests), [pending[0].uuid]);
    let got: Vec<_> = results.iter().map(|r| r.uuid).collect();
    assert_eq!(got, [made[1].uuid, made[0].uuid]);
    let (_, one) = store
        .scheduled_runs("cron", "nightly:scheduled:", 1)
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    let (none, nothing) = store
        .scheduled_runs("other-class", "nightly:scheduled:", 10)
        .await
        .unwrap();
    assert!(none.is_empty() && nothing.is_empty());
}

/// Per queue: ready and scheduled requests, waiting and running processes, and the oldest
/// ready request's time.
async fn measures_queue_depths(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let on = |queue: &str, start| NewRequest {
        queue: queue.into(),
        start,
        ..request(queue)
    };
    let later = Start::At(Utc::now() + TimeDelta::hours(1));
    let made = bed
        .enqueue(vec![
            on("a", Start::Now),
            on("a", Start::Now),
            on("a", later),
        ])
        .await;
    let worker_id = bed.worker().await;
    bed.enqueue(vec![on("b", Start::Now), on("b", Start::Now)])
        .await;
    let queues = ["b".to_string()];
    store
        .claim(worker_id, &queues, 1, 1, Default::default())
        .await
        .unwrap();
    let depths = store.queue_depths().await.unwrap();
    let got: Vec<_> = depths
        .iter()
        .map(|d| (d.queue.as_str(), d.ready, d.scheduled, d.waiting, d.running))
        .collect();
    assert_eq!(got, [("a", 2, 1, 0, 0), ("b", 0, 0, 1, 1)]);
    assert_eq!(depths[0].oldest_ready, Some(made[0].created_at));
    assert_eq!(depths[1].oldest_ready, None);
}

/// Results are counted per minute, queue and status from an id on; a result written less than
/// `settle` ago stops the count there, and the next call starts at it.
async fn counts_results_per_minute_from_an_id(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let made = bed
        .results_of(vec![
            (request("a"), JobStatus::Successful),
            (request("b"), JobStatus::Successful),
            (
                NewRequest {
                    retry_attempt: 1,
                    ..request("c")
                },
                JobStatus::Errored,
            ),
        ])
        .await;
    let settled = Duration::ZERO;
    let counted = store.count_results_after(0, 1000, settled).await.unwrap();
    assert_eq!(counted.through_id, made[2].id);
    let mut got: Vec<_> = counted
        .counts
        .iter()
        .map(|c| (c.status.as_str(), c.count, c.retried))
        .collect();
    got.sort();
    assert_eq!(got, [("ERRORED", 1, 1), ("SUCCESSFUL", 2, 0)]);
    let minute = made[0].created_at.timestamp() / 60 * 60;
    assert!(counted
        .counts
        .iter()
        .all(|c| c.minute == minute || c.minute == minute + 60));

    let after_first = store
        .count_results_after(made[0].id, 1000, settled)
        .await
        .unwrap();
    let total: i64 = after_first.counts.iter().map(|c| c.count).sum();
    assert_eq!(total, 2, "only results after the id");

    let unsettled = store
        .count_results_after(0, 1000, Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(unsettled.counts.is_empty());
    assert_eq!(
        unsettled.through_id,
        made[0].id - 1,
        "stops before the first unsettled"
    );

    let span = store.count_results_after(0, 1, settled).await.unwrap();
    assert!(span.through_id <= 1);
    let past_the_end = store
        .count_results_after(made[2].id, 1000, settled)
        .await
        .unwrap();
    assert_eq!(
        past_the_end.through_id, made[2].id,
        "does not skip ids not yet written"
    );

    let hour = Duration::from_secs(3600);
    assert_eq!(store.results_start(hour).await.unwrap(), made[0].id - 1);
    let ago = format!(
        "UPDATE plainjobs_jobresult SET created_at = {}",
        bed.db.ago_sql(7200)
    );
    bed.db.exec(&ago).await;
    let none_since = store.results_start(hour).await.unwrap();
    assert_eq!(none_since, made[2].id, "none in the hour: after the newest");
    bed.db.exec("DELETE FROM plainjobs_jobresult").await;
    assert_eq!(store.results_start(hour).await.unwrap(), 0);
}

/// The operator's edits: delete requests, make scheduled ones ready, delete results.
async fn deletes_and_runs_requests_now(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let later = Start::At(Utc::now() + TimeDelta::hours(1));
    let made = bed
        .enqueue(vec![
            request("a"),
            NewRequest {
                start: later,
                ..request("b")
            },
            request("c"),
        ])
        .await;
    assert_eq!(
        store
            .run_requests_now(&[made[1].uuid, made[0].uuid])
            .await
            .unwrap(),
        1
    );
    let b = store.request_by_uuid(made[1].uuid).await.unwrap();
    assert_eq!(b.map(|r| r.start_at), Some(None));

    let results = bed
        .results_of(vec![(
            NewRequest {
                queue: "done".into(),
                ..request("done")
            },
            JobStatus::Successful,
        )])
        .await;
    assert_eq!(store.delete_results(&[results[0].uuid]).await.unwrap(), 1);
    assert!(super::all_results(store).await.is_empty());
}

/// A page that may read only so many results stops there with fewer matches, and its cursors
/// go on searching: a rare job name is found page by page, in both directions, and the walk
/// ends at the oldest and the newest result.
async fn a_scan_limited_page_stops_and_goes_on(backend: Backend) {
    let bed = Bed::new(backend).await;
    let ends = (0..12)
        .map(|i| {
            let name = if i == 1 || i == 10 { "rare" } else { "common" };
            (request(name), JobStatus::Successful)
        })
        .collect();
    let results = bed.results_of(ends).await;
    let (rare_old, rare_new) = (results[1].id, results[10].id);
    let jobs = &bed.db.jobs;
    let filter = ResultFilter::new()
        .job_class("rare")
        .limit(5)
        .scan_at_most(4);
    let page = |cursor: Cursor| {
        let filter = filter.clone().cursor(cursor);
        async move { jobs.results_page(&filter).await.unwrap() }
    };
    // Newest first: ids 12..9 (rare_new is the 11th), then 8..5, 4..1.
    let mut found = Vec::new();
    let mut cursor = Cursor::First;
    let mut pages = Vec::new();
    loop {
        let p = page(cursor).await;
        assert!(p.items.len() <= 1, "at most one rare result in four");
        found.extend(p.items.iter().map(|r| r.id));
        pages.push(cursor);
        match p.next {
            Some(next) => cursor = next,
            None => break,
        }
        assert!(pages.len() < 10, "the walk ends");
    }
    assert_eq!(found, vec![rare_new, rare_old], "both found, newest first");
    assert_eq!(pages.len(), 3, "12 results, 4 a page: {pages:?}");
    // And back up from the last page: the previous pages go on to the newest.
    let mut back = Vec::new();
    let mut p = page(cursor).await;
    while let Some(prev) = p.prev {
        p = page(prev).await;
        back.extend(p.items.iter().map(|r| r.id));
        assert!(back.len() < 5, "the walk back ends");
    }
    assert_eq!(back, vec![rare_new], "the newer rare result, once");
    // Without a scan limit the first page finds both at once.
    let all = jobs
        .results_page(&ResultFilter::new().job_class("rare").limit(5))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);
}

conformance!(
    a_scan_limited_page_stops_and_goes_on,
    pages_requests_by_keyset,
    pages_processes_by_state_and_worker,
    pages_and_searches_results,
    finds_the_links_of_a_retry_chain,
    lists_the_runs_of_a_schedule,
    measures_queue_depths,
    counts_results_per_minute_from_an_id,
    deletes_and_runs_requests_now,
);
