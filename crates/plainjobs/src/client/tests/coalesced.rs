//! Single enqueues sharing statements (`coalesce/`), end to end: many at once, a bad row among
//! them, a batch whose connection is cut or whose reply is lost, callers that go away.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::client::again::{enqueue_again, is_terminated_connection};
use crate::client::single::enqueue_once;
use crate::error::DbErrorKind;
use crate::model::{new_uuid, JobRequest};
use crate::registry::RawJob;
use crate::store::{NewRequest, Start};
use crate::testing::{conformance, test_db_for, test_jobs, Backend, FaultyStore, Raw};
use crate::{Jobs, Result};

const CLASS: &str = "tests.Coalesced";

fn job() -> RawJob {
    RawJob::new(CLASS, Some(&json!({"args": [], "kwargs": {}})))
}

fn request(tag: &str) -> NewRequest {
    NewRequest {
        uuid: new_uuid(),
        job_class: CLASS.into(),
        parameters: json!({"args": [tag], "kwargs": {}}),
        priority: 0,
        source: "coalesced.rs".into(),
        queue: "default".into(),
        retries: 0,
        retry_attempt: 0,
        concurrency_key: String::new(),
        start: Start::Now,
        trace_id: None,
        span_id: None,
    }
}

/// One enqueue as `Enqueue` runs it: once, and once more after a closed connection.
async fn enqueue(jobs: &Jobs, req: NewRequest) -> Result<JobRequest> {
    let job = job();
    let out = match enqueue_once(jobs, &job, req.clone(), None).await {
        Err(e) if is_terminated_connection(&e) => enqueue_again(jobs, &job, req, None).await,
        other => other,
    };
    Ok(out?.expect("a job without a key is never refused"))
}

/// Enqueues `reqs`, each in a task of its own.
fn spawn_all(
    jobs: &Jobs,
    reqs: Vec<NewRequest>,
) -> Vec<tokio::task::JoinHandle<Result<JobRequest>>> {
    reqs.into_iter()
        .map(|req| {
            let jobs = jobs.clone();
            tokio::spawn(async move { enqueue(&jobs, req).await })
        })
        .collect()
}

/// Enqueues that take every slot for `pause_ms` (the store pauses each insert), so that the
/// callers after them wait in one pending batch.
async fn fill_the_slots(jobs: &Jobs) -> Vec<tokio::task::JoinHandle<Result<JobRequest>>> {
    let n = jobs.coalescer().max_in_flight();
    let fillers = spawn_all(
        jobs,
        (0..n).map(|i| request(&format!("filler{i}"))).collect(),
    );
    // Until each has taken its slot.
    tokio::time::sleep(Duration::from_millis(100)).await;
    fillers
}

async fn join_all(
    handles: Vec<tokio::task::JoinHandle<Result<JobRequest>>>,
) -> Vec<Result<JobRequest>> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("the task ran"));
    }
    out
}

/// The uuids of every request in the database.
async fn stored(jobs: &Jobs) -> Vec<Uuid> {
    let rows = jobs.requests(10_000).await.expect("requests");
    rows.iter().map(|r| r.uuid).collect()
}

fn inserts(faults: &crate::testing::faulty::Faults) -> Vec<usize> {
    faults.inserts.lock().expect("not poisoned").clone()
}

/// 500 enqueues from 50 tasks through one handle: each is inserted once, each caller gets its
/// own row back (its own uuid and parameters), each task's ids increase, and the rows went in
/// far fewer statements than jobs.
async fn concurrent_enqueues_share_statements(backend: Backend) {
    // Through the pooler too, in the pass through one.
    let (jobs, faults) = FaultyStore::wrap(&test_db_for(backend).await.jobs);
    let tasks: Vec<_> = (0..50)
        .map(|t| {
            let jobs = jobs.clone();
            tokio::spawn(async move {
                let mut made = Vec::new();
                for i in 0..10 {
                    let params = json!({"args": [t, i], "kwargs": {}});
                    let row = jobs
                        .enqueue_by_name(CLASS, params.clone())
                        .await
                        .expect("enqueued")
                        .expect("not refused");
                    assert_eq!(row.parameters, Some(params), "the caller's own row");
                    made.push(row);
                }
                made
            })
        })
        .collect();
    let mut returned = HashSet::new();
    for task in tasks {
        let made = task.await.expect("the task ran");
        assert!(
            made.windows(2).all(|w| w[0].id < w[1].id),
            "ids increase in each caller's order: {:?}",
            made.iter().map(|r| r.id).collect::<Vec<_>>()
        );
        returned.extend(made.iter().map(|r| r.uuid));
    }
    assert_eq!(returned.len(), 500, "each caller got its own uuid");
    let stored = stored(&jobs).await;
    assert_eq!(stored.len(), 500, "each job inserted once");
    assert_eq!(stored.into_iter().collect::<HashSet<_>>(), returned);
    let inserts = inserts(&faults);
    assert_eq!(inserts.iter().sum::<usize>(), 500, "{inserts:?}");
    assert!(
        inserts.len() < 250,
        "the enqueues shared statements: {} statements for 500 jobs",
        inserts.len()
    );
}

/// A row the database refuses (a uuid that exists) in a batch of good ones: the batch's
/// statement rolls back, each row is inserted alone, and only the bad one's enqueue fails.
async fn a_bad_row_fails_only_its_own_enqueue(backend: Backend) {
    let (jobs, faults) = FaultyStore::wrap(&test_db_for(backend).await.jobs);
    let existing = enqueue(&jobs, request("existing")).await.expect("inserted");
    faults.insert_pause_ms.store(300, Ordering::Release);
    let fillers = fill_the_slots(&jobs).await;
    let mut batch: Vec<NewRequest> = (0..10).map(|i| request(&format!("good{i}"))).collect();
    batch.push(NewRequest {
        uuid: existing.uuid,
        ..request("bad")
    });
    let good: Vec<Uuid> = batch.iter().take(10).map(|r| r.uuid).collect();
    let outs = join_all(spawn_all(&jobs, batch)).await;
    for r in join_all(fillers).await {
        r.expect("a filler");
    }
    for (out, uuid) in outs.iter().zip(&good) {
        assert_eq!(out.as_ref().expect("a good row").uuid, *uuid);
    }
    let refused = outs
        .last()
        .expect("the bad row's")
        .as_ref()
        .expect_err("refused");
    assert_eq!(refused.db_kind(), Some(DbErrorKind::DuplicateRequestUuid));
    let inserts = inserts(&faults);
    assert!(
        inserts.contains(&11),
        "one batch of all eleven: {inserts:?}"
    );
    let stored = stored(&jobs).await;
    assert_eq!(stored.len(), 1 + jobs.coalescer().max_in_flight() + 10);
    assert!(good.iter().all(|u| stored.contains(u)));
}

/// A batch commits, but its reply is lost as when the server closes the connection: every
/// caller of it is told so, and each one's retry finds its row (nothing inserted twice).
async fn a_batch_whose_reply_is_lost_is_retried_without_duplicates(backend: Backend) {
    let (jobs, faults) = FaultyStore::wrap(&test_jobs(backend).await);
    faults.insert_pause_ms.store(300, Ordering::Release);
    faults.lose_insert_replies.store(1, Ordering::Release);
    let fillers = fill_the_slots(&jobs).await;
    let batch: Vec<NewRequest> = (0..10).map(|i| request(&format!("r{i}"))).collect();
    let sent: Vec<Uuid> = batch.iter().map(|r| r.uuid).collect();
    let outs = join_all(spawn_all(&jobs, batch)).await;
    join_all(fillers).await;
    for (out, uuid) in outs.iter().zip(&sent) {
        assert_eq!(out.as_ref().expect("enqueued").uuid, *uuid);
    }
    assert_eq!(faults.lose_insert_replies.load(Ordering::Acquire), 0);
    let inserts = inserts(&faults);
    assert!(inserts.contains(&10), "{inserts:?}");
    let stored = stored(&jobs).await;
    let n = jobs.coalescer().max_in_flight() + 10;
    assert_eq!(stored.len(), n, "nothing twice");
    assert_eq!(stored.iter().collect::<HashSet<_>>().len(), n);
}

/// Callers that go away: those still waiting take their rows out (no job), a leader dropped
/// while inserting leaves its batch to finish (every taken row in, its last caller answered),
/// and the handle enqueues as before afterwards (no slot lost).
async fn callers_that_go_away_break_nobody_else(backend: Backend) {
    let (jobs, faults) = FaultyStore::wrap(&test_jobs(backend).await);
    faults.insert_pause_ms.store(300, Ordering::Release);
    let slots = jobs.coalescer().max_in_flight();

    // Dropped while waiting.
    let fillers = fill_the_slots(&jobs).await;
    let waiting: Vec<NewRequest> = (0..10).map(|i| request(&format!("w{i}"))).collect();
    let uuids: Vec<Uuid> = waiting.iter().map(|r| r.uuid).collect();
    let mut handles = spawn_all(&jobs, waiting);
    tokio::time::sleep(Duration::from_millis(50)).await;
    for h in handles.drain(..5) {
        h.abort();
    }
    for r in join_all(handles).await {
        r.expect("a caller still there");
    }
    join_all(fillers).await;
    let stored_now = stored(&jobs).await;
    assert_eq!(stored_now.len(), slots + 5);
    assert!(uuids[..5].iter().all(|u| !stored_now.contains(u)));

    // The leader dropped while its batch is being inserted.
    let fillers = fill_the_slots(&jobs).await;
    let batch: Vec<NewRequest> = (0..10).map(|i| request(&format!("b{i}"))).collect();
    let uuids: Vec<Uuid> = batch.iter().map(|r| r.uuid).collect();
    let mut handles = spawn_all(&jobs, batch);
    // The fillers end at 300 ms; the batch is inserted from then for 300 ms more.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let last = handles.pop().expect("ten");
    for h in handles {
        h.abort();
    }
    join_all(fillers).await;
    let made = last.await.expect("the task ran").expect("answered");
    assert_eq!(made.uuid, uuids[9]);
    let stored_now = stored(&jobs).await;
    assert!(
        uuids.iter().all(|u| stored_now.contains(u)),
        "taken rows are in"
    );
    assert_eq!(stored_now.len(), 2 * slots + 5 + 10);

    // Nothing is stuck.
    faults.insert_pause_ms.store(0, Ordering::Release);
    let more = join_all(spawn_all(
        &jobs,
        (0..30).map(|i| request(&format!("m{i}"))).collect(),
    ))
    .await;
    assert!(more.iter().all(Result::is_ok));
    assert_eq!(jobs.coalescer().in_flight(), 0);
}

/// PostgreSQL: the server ends the session of a batch while its statement waits (here, on a
/// row of its batch that another transaction holds): each caller retries on its own, and
/// every job is inserted once.
async fn a_batch_whose_connection_is_cut_loses_and_doubles_nothing(backend: Backend) {
    if backend != Backend::Postgres || crate::testing::transaction_pooling() {
        // Nothing to cut on SQLite; behind a transaction pooler the cut would reach whichever
        // client's transaction holds the session. The lost reply is tested on both above.
        return;
    }
    let db = test_db_for(backend).await;
    let Raw::Pg(raw) = &db.raw else {
        unreachable!("a PostgreSQL database")
    };
    let (jobs, faults) = FaultyStore::wrap(&db.jobs);
    faults.insert_pause_ms.store(200, Ordering::Release);
    // Another transaction inserts one of the batch's rows and holds it: the batch's insert
    // waits on it.
    let held = request("held");
    let mut holder = db.jobs.store().begin().await.expect("begin");
    holder
        .insert_requests(vec![held.clone()])
        .await
        .expect("held");
    let fillers = fill_the_slots(&jobs).await;
    let mut batch: Vec<NewRequest> = (0..10).map(|i| request(&format!("c{i}"))).collect();
    batch.push(held.clone());
    let sent: Vec<Uuid> = batch.iter().map(|r| r.uuid).collect();
    let handles = spawn_all(&jobs, batch);
    let mut cut = 0;
    for _ in 0..200 {
        let waiting: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1
             AND wait_event_type = 'Lock' AND query LIKE '%unnest%'",
        )
        .bind(&db.schema)
        .fetch_all(raw)
        .await
        .expect("activity");
        if let Some(pid) = waiting.first() {
            sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .execute(raw)
                .await
                .expect("terminate");
            cut += 1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cut, 1, "a batch was cut while it waited");
    // The retries wait on the held row in turn. It commits: the retry batch holding it is
    // refused (a duplicate uuid), its rows go in alone, and the held one's caller finds its
    // row there (what the retry does after a duplicate uuid).
    tokio::time::sleep(Duration::from_millis(300)).await;
    holder.commit().await.expect("commit");
    let outs = join_all(handles).await;
    join_all(fillers).await;
    for (out, uuid) in outs.iter().zip(&sent) {
        assert_eq!(out.as_ref().expect("enqueued after the cut").uuid, *uuid);
    }
    let stored = stored(&jobs).await;
    let n = jobs.coalescer().max_in_flight() + 11;
    assert_eq!(stored.len(), n, "nothing lost, nothing twice");
    assert_eq!(stored.iter().collect::<HashSet<_>>().len(), n);
}

conformance!(
    concurrent_enqueues_share_statements,
    a_bad_row_fails_only_its_own_enqueue,
    a_batch_whose_reply_is_lost_is_retried_without_duplicates,
    callers_that_go_away_break_nobody_else,
    a_batch_whose_connection_is_cut_loses_and_doubles_nothing,
);
