//! The job lifecycle against a real PostgreSQL: every transition and status.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use plainjobs::{Error, Job, JobContext, JobError, JobStatus, Jobs, Outcome, Worker};
use serde::{Deserialize, Serialize};
use serde_json::json;

const T: Duration = Duration::from_secs(20);

fn worker(db: &TestDb, rec: &Arc<Recorder>) -> Worker {
    Worker::new(db.jobs.clone())
        .register::<Probe>()
        .state(rec.clone())
        .config(fast_config())
        .concurrency(4)
}

async fn wait_results(db: &TestDb, n: usize) -> Vec<plainjobs::JobResult> {
    let ok = wait_until(T, || async { db.results().await.len() >= n }).await;
    let results = db.results().await;
    assert!(ok, "expected {n} results, got {results:#?}");
    results
}

async fn success_moves_request_to_process_to_result(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let req = db
        .jobs
        .enqueue(Probe::new("a", Action::Succeed))
        .await
        .unwrap()
        .expect("enqueued");
    assert_eq!(req.job_class, "tests.Probe");
    assert_eq!(req.queue, "default");
    assert_eq!(req.priority, 0);
    assert_eq!(req.start_at, None);
    assert!(
        req.source.contains("lifecycle.rs:"),
        "source is the caller's file:line, got {}",
        req.source
    );
    assert_eq!(
        req.parameters,
        Some(
            json!({"args": [], "kwargs": {"id": "a", "action": "Succeed", "retries": 0, "key": ""}})
        )
    );
    assert_eq!(db.requests().await, 1);

    let w = worker(&db, &rec).spawn();
    let results = wait_results(&db, 1).await;
    w.stop().await.unwrap();

    let r = &results[0];
    assert_eq!(r.status, JobStatus::Successful);
    assert_eq!(r.error, "");
    assert_eq!(r.job_request_uuid, req.uuid);
    assert_eq!(r.requested_at, Some(req.created_at));
    assert!(r.started_at.is_some() && r.ended_at.is_some());
    assert!(r.started_at <= r.ended_at);
    assert_eq!(rec.run_ids(), vec!["a"]);
    assert_eq!(db.requests().await, 0);
    assert_eq!(db.processes().await, 0);
    // The worker deregistered on clean shutdown.
    assert_eq!(
        db.count("SELECT count(*) FROM plainjobs_workerheartbeat")
            .await,
        0
    );
}

async fn errors_and_panics_are_errored_and_the_worker_carries_on(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    db.jobs
        .enqueue(Probe::new("fails", Action::Fail))
        .await
        .unwrap();
    db.jobs
        .enqueue(Probe::new("panics", Action::Panic))
        .await
        .unwrap();
    let w = worker(&db, &rec).concurrency(1).spawn();
    wait_results(&db, 2).await;
    // Still alive after a panic: a later job runs.
    db.jobs
        .enqueue(Probe::new("after", Action::Succeed))
        .await
        .unwrap();
    let results = wait_results(&db, 3).await;
    w.stop().await.unwrap();

    let by_id = |id: &str| {
        results
            .iter()
            .find(|r| r.parameters.as_ref().unwrap()["kwargs"]["id"] == id)
            .unwrap_or_else(|| panic!("no result for {id}"))
            .clone()
    };
    let failed = by_id("fails");
    assert_eq!(failed.status, JobStatus::Errored);
    assert!(failed.error.contains("while probing"), "{}", failed.error);
    assert!(
        failed
            .error
            .contains("Caused by: probe fails failed on purpose"),
        "{}",
        failed.error
    );
    let panicked = by_id("panics");
    assert_eq!(panicked.status, JobStatus::Errored);
    assert!(
        panicked
            .error
            .contains("panicked: probe panics panicked on purpose"),
        "{}",
        panicked.error
    );
    assert_eq!(by_id("after").status, JobStatus::Successful);
    // No retries were allowed: nothing follows.
    assert!(results.iter().all(|r| r.retry_job_request_uuid.is_none()));
    assert_eq!(db.requests().await, 0);
}

async fn deferral_makes_a_deferred_result_and_a_linked_request(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    db.jobs
        .enqueue(Probe::new(
            "d",
            Action::Defer {
                secs: 3600,
                increment_retries: false,
            },
        ))
        .priority(5)
        .queue("default")
        .await
        .unwrap();
    db.jobs
        .enqueue(
            Probe::new(
                "d2",
                Action::Defer {
                    secs: 3600,
                    increment_retries: true,
                },
            )
            .retries(2),
        )
        .await
        .unwrap();
    let w = worker(&db, &rec).spawn();
    let results = wait_results(&db, 2).await;
    w.stop().await.unwrap();

    for r in &results {
        assert_eq!(r.status, JobStatus::Deferred);
        assert_eq!(r.error, "Deferred for 3600 seconds");
        let link = r.retry_job_request_uuid.expect("linked to the new request");
        let Some(plainjobs::Found::Request(next)) = db.jobs.find(link).await.unwrap() else {
            panic!("the linked request exists")
        };
        let (attempt, prio) = (next.retry_attempt, next.priority);
        let secs = (next.start_at.unwrap() - chrono::Utc::now()).num_milliseconds() as f64 / 1000.0;
        let id = r.parameters.as_ref().unwrap()["kwargs"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        if id == "d" {
            assert_eq!((attempt, prio), (0, 5), "same priority, same attempt");
        } else {
            assert_eq!(attempt, 1, "increment_retries bumps the attempt");
        }
        assert!(
            secs > 3500.0 && secs <= 3600.0,
            "start_at is now + delay, got {secs}"
        );
    }
    assert_eq!(db.requests().await, 2);
}

async fn deferral_whose_re_enqueue_is_refused_is_still_deferred_without_link(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    db.jobs
        .enqueue(
            Probe::new(
                "d",
                Action::Defer {
                    secs: 60,
                    increment_retries: false,
                },
            )
            .key("k1"),
        )
        .await
        .unwrap()
        .expect("first enqueue");
    // A second request with the same key, as a raw insert would make it, so the re-enqueue is
    // refused by the default uniqueness rule.
    db.insert_raw_request(
        "tests.Probe",
        r#"{"args": [], "kwargs": {"id": "other", "action": "Succeed"}}"#,
        "k1",
        Some(db.ago_sql(-3600)),
    )
    .await;
    let w = worker(&db, &rec).spawn();
    let results = wait_results(&db, 1).await;
    w.stop().await.unwrap();
    let r = &results[0];
    assert_eq!(r.status, JobStatus::Deferred);
    assert_eq!(r.retry_job_request_uuid, None);
    assert!(
        r.error
            .starts_with("Deferred for 60 seconds (re-enqueue skipped"),
        "{}",
        r.error
    );
    assert!(r.error.contains("'k1'"), "{}", r.error);
    assert_eq!(db.requests().await, 1, "only the other request");
}

async fn retry_chain_reaches_retries_and_stops(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    db.jobs
        .enqueue(Probe::new("r", Action::Fail).retries(2))
        .await
        .unwrap();
    let w = worker(&db, &rec).spawn();
    let results = wait_results(&db, 3).await;
    // Give a wrongly continuing chain the chance to show itself.
    tokio::time::sleep(Duration::from_millis(700)).await;
    w.stop().await.unwrap();
    let results_after = db.results().await;
    assert_eq!(results_after.len(), 3, "{results_after:#?}");
    let attempts: Vec<i16> = results.iter().map(|r| r.retry_attempt).collect();
    assert_eq!(attempts, vec![0, 1, 2]);
    assert!(results
        .iter()
        .all(|r| r.status == JobStatus::Errored && r.retries == 2));
    // Each failed attempt links to the next; the last is not retryable.
    assert!(results[0].retry_job_request_uuid.is_some());
    assert_eq!(
        results[0].retry_job_request_uuid,
        Some(results[1].job_request_uuid)
    );
    assert_eq!(
        results[1].retry_job_request_uuid,
        Some(results[2].job_request_uuid)
    );
    assert_eq!(results[2].retry_job_request_uuid, None);
    assert!(!results[2].is_retryable());
    assert_eq!(
        rec.runs(),
        vec![("r".into(), 0), ("r".into(), 1), ("r".into(), 2)]
    );
    assert_eq!(db.requests().await, 0);
}

async fn retry_succeeds_after_failures(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    db.jobs
        .enqueue(Probe::new("r", Action::FailUntilAttempt(1)).retries(3))
        .await
        .unwrap();
    let w = worker(&db, &rec).spawn();
    let results = wait_results(&db, 2).await;
    w.stop().await.unwrap();
    assert_eq!(results[0].status, JobStatus::Errored);
    assert_eq!(results[1].status, JobStatus::Successful);
    assert_eq!(results[1].retry_attempt, 1);
}

async fn uniqueness_under_fifty_concurrent_enqueuers(backend: Backend) {
    let db = test_db_for(backend).await;
    let jobs = Jobs::connect_with(
        &db.url,
        plainjobs::ConnectOptions {
            max_connections: 50,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let jobs = jobs.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            jobs.enqueue(Probe::new(format!("u{i}"), Action::Succeed).key("the-key"))
                .await
        }));
    }
    let mut enqueued = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().is_some() {
            enqueued += 1;
        }
    }
    assert_eq!(enqueued, 1, "exactly one enqueue wins");
    assert_eq!(
        db.count("SELECT count(*) FROM plainjobs_jobrequest WHERE concurrency_key = 'the-key'")
            .await,
        1
    );
    // An empty key never deduplicates.
    for _ in 0..3 {
        assert!(jobs
            .enqueue(Probe::new("e", Action::Succeed))
            .await
            .unwrap()
            .is_some());
    }
    // A processing job with the key still blocks a new one.
    db.exec("DELETE FROM plainjobs_jobrequest").await;
    let rec = Recorder::new();
    db.jobs
        .enqueue(Probe::new("blocker", Action::Block).key("k"))
        .await
        .unwrap()
        .unwrap();
    let w = worker(&db, &rec).spawn();
    assert!(wait_until(T, || async { db.processes().await == 1 }).await);
    assert!(db
        .jobs
        .enqueue(Probe::new("dup", Action::Succeed).key("k"))
        .await
        .unwrap()
        .is_none());
    rec.open_gate();
    assert!(wait_until(T, || async { db.processes().await == 0 }).await);
    w.stop().await.unwrap();
    assert!(db
        .jobs
        .enqueue(Probe::new("dup", Action::Succeed).key("k"))
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn advisory_lock_id_matches_plain_jobs() {
    // md5("tests.Probe::k") = 0x…; plain.jobs: int.from_bytes(digest[:8], "big", signed=True).
    let db = test_db().await;
    let expected: i64 = db
        .count("SELECT ('x' || substr(md5('tests.Probe::k'), 1, 16))::bit(64)::bigint")
        .await;
    assert_eq!(plainjobs::advisory_lock_id("tests.Probe", "k"), expected);
}

async fn enqueue_in_the_callers_transaction(backend: Backend) {
    let db = test_db_for(backend).await;
    // The same steps on each backend's own transaction type.
    macro_rules! steps {
        ($begin:expr) => {{
            let mut tx = $begin.await.unwrap();
            db.jobs
                .enqueue(Probe::new("rolled-back", Action::Succeed))
                .in_transaction(&mut tx)
                .await
                .unwrap();
            db.jobs
                .enqueue(Probe::new("rolled-back-keyed", Action::Succeed).key("k"))
                .in_transaction(&mut tx)
                .await
                .unwrap();
            tx.rollback().await.unwrap();
            assert_eq!(
                db.requests().await,
                0,
                "a rolled-back transaction leaves no job"
            );

            let mut tx = $begin.await.unwrap();
            sqlx::query("CREATE TABLE app_users (id int)")
                .execute(&mut *tx)
                .await
                .unwrap();
            db.jobs
                .enqueue(Probe::new("committed", Action::Succeed))
                .in_transaction(&mut tx)
                .await
                .unwrap()
                .unwrap();
            let many = db
                .jobs
                .enqueue_many((0..5).map(|i| Probe::new(format!("m{i}"), Action::Succeed)))
                .in_transaction(&mut tx)
                .await
                .unwrap();
            assert_eq!(many.len(), 5);
            // A bulk enqueue that fails (a job in its third statement cannot be encoded)
            // leaves the caller's transaction as it was: committing it commits none of those.
            db.jobs
                .enqueue_many((0..5_000).map(|n| Picky { n }))
                .in_transaction(&mut tx)
                .await
                .unwrap_err();
            tx.commit().await.unwrap();
            assert_eq!(db.requests().await, 6);
        }};
    }
    match backend {
        Backend::Postgres => {
            let pool = db.jobs.pg_pool().unwrap().clone();
            steps!(pool.begin());
            // Not visible outside until commit.
            let mut tx = pool.begin().await.unwrap();
            db.jobs
                .enqueue(Probe::new("invisible", Action::Succeed))
                .in_transaction(&mut tx)
                .await
                .unwrap();
            assert_eq!(db.requests().await, 6);
            tx.commit().await.unwrap();
            assert_eq!(db.requests().await, 7);
        }
        Backend::Sqlite => {
            let pool = db.jobs.sqlite_pool().unwrap().clone();
            steps!(pool.begin_with("BEGIN IMMEDIATE"));
        }
    }
}

async fn bulk_enqueue_in_one_call(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let made = db
        .jobs
        .enqueue_many((0..1000).map(|i| Probe::new(format!("b{i}"), Action::Succeed)))
        .priority(3)
        .await
        .unwrap();
    assert_eq!(made.len(), 1000);
    assert!(made.iter().all(|r| r.priority == 3));
    // Keyed jobs in a bulk go through uniqueness: two with the same key make one row.
    let keyed = db
        .jobs
        .enqueue_many(vec![
            Probe::new("k1", Action::Succeed).key("same"),
            Probe::new("k2", Action::Succeed).key("same"),
        ])
        .await
        .unwrap();
    assert_eq!(keyed.len(), 1);
    let w = worker(&db, &rec).concurrency(8).spawn();
    wait_results(&db, 1001).await;
    w.stop().await.unwrap();
    let mut ids = rec.run_ids();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1001, "every job ran exactly once");
    assert_eq!(rec.runs().len(), 1001);
}

/// A job whose parameters cannot be encoded when `n` is the poisoned value.
#[derive(Serialize, Deserialize)]
struct Picky {
    #[serde(serialize_with = "refuse_poison")]
    n: u32,
}

const POISON: u32 = 4_100;

fn refuse_poison<S: serde::Serializer>(n: &u32, s: S) -> Result<S::Ok, S::Error> {
    if *n == POISON {
        return Err(serde::ser::Error::custom("this value is refused"));
    }
    s.serialize_u32(*n)
}

impl Job for Picky {
    const NAME: &'static str = "tests.Picky";
    async fn run(&self, _ctx: &JobContext) -> Result<Outcome, JobError> {
        Ok(Outcome::Success)
    }
}

/// A bulk enqueue larger than one insert statement: every job is inserted once with what was
/// sent, keyed jobs still go through uniqueness, and every uuid the library makes is
/// time-ordered (version 7). A job that fails to encode in a later statement undoes the whole
/// call.
async fn bulk_enqueue_across_statements(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let total = 4_500;
    let made = db
        .jobs
        .enqueue_many((0..total).map(|i| {
            let p = Probe::new(format!("x{i}"), Action::Succeed);
            // Keyed jobs in the first, second and last statement's range; two share a key.
            match i {
                10 | 2_500 => p.key("k-shared"),
                4_400 => p.key("k-own"),
                _ => p,
            }
        }))
        .await
        .unwrap();
    assert_eq!(
        made.len(),
        total - 1,
        "the second job with the shared key is refused"
    );
    let mut uuids: Vec<_> = made.iter().map(|r| r.uuid).collect();
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), total - 1, "uuids are unique");
    assert!(made.iter().all(|r| r.uuid.get_version_num() == 7));
    let sent: std::collections::HashSet<String> = made
        .iter()
        .map(|r| {
            r.parameters.as_ref().unwrap()["kwargs"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(sent.len(), total - 1);
    assert!(!sent.contains("x2500"));
    assert_eq!(db.requests().await, (total - 1) as i64);
    // What came back is what the table holds, row by row.
    let id_sum: i64 = made.iter().map(|r| r.id).sum();
    assert_eq!(
        db.count("SELECT CAST(COALESCE(SUM(id), 0) AS BIGINT) FROM plainjobs_jobrequest")
            .await,
        id_sum
    );

    // A delayed bulk: each returned start is the database's own, as stored.
    let delayed = db
        .jobs
        .enqueue_many((0..3).map(|i| Probe::new(format!("later{i}"), Action::Succeed)))
        .delay(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(delayed.len(), 3);
    for r in &delayed {
        let start = r.start_at.expect("a delayed request has a start");
        assert_eq!(start - r.created_at, chrono::TimeDelta::seconds(3600));
    }
    let stored = db
        .jobs
        .find(delayed[0].uuid)
        .await
        .unwrap()
        .expect("the delayed request");
    let plainjobs::Found::Request(stored) = stored else {
        panic!("still pending: {stored:?}")
    };
    assert_eq!(stored.start_at, delayed[0].start_at);
    assert_eq!(stored.created_at, delayed[0].created_at);
    assert_eq!(stored.id, delayed[0].id);
    db.exec(&format!(
        "DELETE FROM plainjobs_jobrequest WHERE uuid IN ('{}', '{}', '{}')",
        delayed[0].uuid, delayed[1].uuid, delayed[2].uuid
    ))
    .await;

    // A job that cannot be encoded, in the third statement's range: nothing is inserted.
    let err = db
        .jobs
        .enqueue_many((0..5_000).map(|n| Picky { n }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    assert_eq!(
        db.count("SELECT count(*) FROM plainjobs_jobrequest WHERE job_class = 'tests.Picky'")
            .await,
        0,
        "the failed bulk enqueue left no rows"
    );

    let w = worker(&db, &rec).concurrency(8).spawn();
    wait_results(&db, total - 1).await;
    w.stop().await.unwrap();
    let results = db.results().await;
    assert_eq!(results.len(), total - 1);
    assert!(results.iter().all(|r| r.uuid.get_version_num() == 7
        && r.job_process_uuid.get_version_num() == 7
        && r.job_request_uuid.get_version_num() == 7));
    let mut ids = rec.run_ids();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total - 1, "every job ran exactly once");
    assert_eq!(rec.runs().len(), total - 1);
}

async fn priority_then_fifo_order(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    for (id, prio) in [
        ("low1", -5),
        ("mid1", 0),
        ("high1", 10),
        ("mid2", 0),
        ("high2", 10),
        ("low2", -5),
        ("mid3", 0),
    ] {
        db.jobs
            .enqueue(Probe::new(id, Action::Succeed))
            .priority(prio)
            .await
            .unwrap();
    }
    // A job whose start_at has passed ranks by start_at, before younger requests.
    db.jobs
        .enqueue(Probe::new("mid0-scheduled-earlier", Action::Succeed))
        .start_at(chrono::Utc::now() - chrono::Duration::hours(1))
        .await
        .unwrap();
    // A job not ready yet is not taken.
    db.jobs
        .enqueue(Probe::new("future", Action::Succeed))
        .priority(100)
        .delay(Duration::from_secs(3600))
        .await
        .unwrap();
    let w = worker(&db, &rec).concurrency(1).spawn();
    wait_results(&db, 8).await;
    w.stop().await.unwrap();
    assert_eq!(
        rec.run_ids(),
        vec![
            "high1",
            "high2",
            "mid0-scheduled-earlier",
            "mid1",
            "mid2",
            "mid3",
            "low1",
            "low2"
        ]
    );
    assert_eq!(db.requests().await, 1, "the future job waits");
}

async fn delayed_job_runs_when_due_without_polling(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let mut cfg = fast_config();
    cfg.poll_interval = Duration::from_secs(30); // only the next start_at can wake it in time
    let w = worker(&db, &rec).config(cfg).spawn();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let req = db
        .jobs
        .enqueue(Probe::new("later", Action::Succeed))
        .delay(Duration::from_millis(1500))
        .await
        .unwrap()
        .unwrap();
    assert!(req.start_at.is_some());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(rec.runs().is_empty(), "not before its time");
    let results = wait_results(&db, 1).await;
    w.stop().await.unwrap();
    assert!(results[0].started_at.unwrap() >= req.start_at.unwrap());
}

async fn notify_wakes_an_idle_worker_for_rows_written_by_any_producer(backend: Backend) {
    if backend == Backend::Postgres && plainjobs::testing::transaction_pooling() {
        // Nothing to test: behind a transaction pooler only this process's own inserts wake
        // its workers (no LISTEN); another producer's rows are found by polling.
        eprintln!("skipped: no LISTEN behind a transaction-mode pooler");
        return;
    }
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let mut cfg = fast_config();
    cfg.poll_interval = Duration::from_secs(60);
    let w = worker(&db, &rec).config(cfg).spawn();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Raw SQL, as a Python producer writes it: the trigger's NOTIFY wakes the worker.
    db.insert_raw_request(
        "tests.Probe",
        r#"{"args": [], "kwargs": {"id": "raw", "action": "Succeed"}}"#,
        "",
        None,
    )
    .await;
    assert!(
        wait_until(Duration::from_secs(10), || async { rec.runs().len() == 1 }).await,
        "woken long before the 60 s poll"
    );
    w.stop().await.unwrap();
}

async fn a_row_written_by_plain_jobs_runs_on_a_rust_worker(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    // Exactly as plain.jobs' run_in_worker writes it (Python class path as job_class, the
    // args/kwargs envelope, Python's source format, no trace).
    db.insert_raw_request(
        "app.jobs.SendReport",
        r#"{"args": [42, "__plain://date/2024-01-15"], "kwargs": {}}"#,
        "",
        None,
    )
    .await;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct SendReport(
        i64,
        #[serde(with = "plainjobs::params::plain_date")] chrono::NaiveDate,
    );
    impl Job for SendReport {
        const NAME: &'static str = "app.jobs.SendReport";
        async fn run(
            &self,
            ctx: &plainjobs::JobContext,
        ) -> Result<plainjobs::Outcome, plainjobs::JobError> {
            let rec = ctx.state::<Arc<Recorder>>()?;
            rec.runs
                .lock()
                .unwrap()
                .push((format!("{}:{}", self.0, self.1), 0));
            Ok(plainjobs::Outcome::Success)
        }
    }
    let w = Worker::new(db.jobs.clone())
        .register::<SendReport>()
        .state(rec.clone())
        .config(fast_config())
        .spawn();
    let results = wait_results(&db, 1).await;
    w.stop().await.unwrap();
    assert_eq!(
        results[0].status,
        JobStatus::Successful,
        "{}",
        results[0].error
    );
    assert_eq!(rec.run_ids(), vec!["42:2024-01-15"]);
}

async fn bad_input_gets_clear_errors_and_loses_nothing(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    // Unknown job name and parameters that do not fit: ERRORED with an exact message.
    db.insert_raw_request(
        "app.jobs.NoSuchJob",
        r#"{"args": [], "kwargs": {}}"#,
        "",
        None,
    )
    .await;
    db.insert_raw_request(
        "tests.Probe",
        r#"{"args": [], "kwargs": {"id": 5}}"#,
        "",
        None,
    )
    .await;
    db.insert_raw_request("tests.Probe", "[1, 2, 3]", "", None)
        .await;
    let w = worker(&db, &rec).spawn();
    let results = wait_results(&db, 3).await;
    w.stop().await.unwrap();
    assert!(results.iter().all(|r| r.status == JobStatus::Errored));
    let errors: Vec<&str> = results.iter().map(|r| r.error.as_str()).collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unknown job name \"app.jobs.NoSuchJob\"")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("do not fit job type tests.Probe") && e.contains("invalid type")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("not a plain.jobs envelope")),
        "{errors:#?}"
    );
    assert!(rec.runs().is_empty());

    // A queue name over 255 characters is refused before anything is written.
    let long = "q".repeat(256);
    let err = db
        .jobs
        .enqueue(Probe::new("x", Action::Succeed))
        .queue(long)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput { field: "queue", .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("256 characters long; the limit is 255"),
        "{err}"
    );
    let err = db
        .jobs
        .enqueue(Probe::new("x", Action::Succeed))
        .concurrency_key("k".repeat(300))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("concurrency_key"), "{err}");
    let err = db
        .jobs
        .enqueue(Probe::new("x", Action::Succeed))
        .trace_context("abc", "0x0000000000000001")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("trace_id"), "{err}");
    assert_eq!(db.requests().await, 0);
    // A valid trace context is stored.
    let r = db
        .jobs
        .enqueue(Probe::new("x", Action::Succeed))
        .trace_context(format!("0x{}", "ab".repeat(16)), "0x00000000000000ff")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.span_id.as_deref(), Some("0x00000000000000ff"));

    // An unreachable database: a clear error with the password redacted.
    let err = Jobs::connect_with(
        "postgres://app:hunter2@127.0.0.1:1/nope",
        plainjobs::ConnectOptions {
            connect_timeout: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cannot connect to the database at postgres://app:***@127.0.0.1:1/nope"),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
    let err = Jobs::connect("mysql://x@y/z").await.unwrap_err();
    assert!(matches!(err, Error::UnsupportedUrl(_)), "{err}");
}

async fn queues_are_served_only_by_their_workers(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    db.jobs
        .enqueue(Probe::new("mail", Action::Succeed))
        .queue("mail")
        .await
        .unwrap();
    db.jobs
        .enqueue(Probe::new("default", Action::Succeed))
        .await
        .unwrap();
    db.jobs
        .enqueue(Probe::new("reports", Action::Succeed))
        .queue("reports")
        .await
        .unwrap();
    let w = worker(&db, &rec).queues(["mail", "reports"]).spawn();
    wait_results(&db, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.stop().await.unwrap();
    let mut ids = rec.run_ids();
    ids.sort();
    assert_eq!(ids, vec!["mail", "reports"]);
    assert_eq!(db.requests().await, 1);
}

/// Tables made by plain.jobs alone (plain's own DDL: its indexes, no constraint or trigger of
/// ours) are accepted as they are and completed; migrate again changes nothing; jobs run.
#[tokio::test]
async fn migrations_are_idempotent_and_accept_existing_tables() {
    let db = test_db().await;
    assert!(db.jobs.migrate().await.unwrap().changes.is_empty());
    // What plain's deploy would have left without us: none of our objects.
    for ours in [
        "ALTER TABLE plainjobs_jobrequest DROP CONSTRAINT plainjobs_jobrequest_claim_excl",
        "ALTER TABLE plainjobs_jobresult DROP CONSTRAINT plainjobs_jobresult_retryable_excl",
        "ALTER TABLE plainjobs_jobresult DROP CONSTRAINT plainjobs_jobresult_class_key_excl",
        "ALTER TABLE plainjobs_jobresult DROP CONSTRAINT plainjobs_jobresult_job_request_uuid_excl",
        "DROP TRIGGER plainjobs_jobrequest_notify ON plainjobs_jobrequest",
        "DROP FUNCTION plainjobs_notify_jobrequest()",
    ] {
        db.exec(ours).await;
    }
    db.jobs
        .enqueue(Probe::new("before-migrate", Action::Succeed))
        .await
        .unwrap()
        .unwrap();
    let made = db.jobs.migrate().await.unwrap();
    assert_eq!(made.changes.len(), 6, "{:?}", made.changes);
    assert!(db.jobs.migrate().await.unwrap().changes.is_empty());
    assert_eq!(db.requests().await, 1, "the pending job is kept");
    let plains_indexes = "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname IN ('plainjobs_jobrequest_start_at_idx', 'job_request_concurrency_key', 'job_concurrency_key')";
    assert_eq!(db.count(plains_indexes).await, 3);
    let rec = Recorder::new();
    let w = worker(&db, &rec).spawn();
    wait_results(&db, 1).await;
    w.stop().await.unwrap();
}

/// Notifications reach every listener of the database; a worker wakes only for its own
/// schema's. With another schema's producer inserting back to back, the worker stays idle, so
/// each job enqueued through its handle goes straight to it; a job its own schema gets from
/// another handle still wakes it at once (the poll is a minute).
#[tokio::test]
async fn notifications_from_other_schemas_do_not_wake_the_worker() {
    stays_idle_through_another_databases_inserts(test_db().await, test_db().await).await;
}

/// The same on SQLite: an insert into another file wakes only that file's workers of this
/// process.
#[tokio::test]
async fn inserts_into_another_sqlite_file_do_not_wake_the_worker() {
    stays_idle_through_another_databases_inserts(sqlite_test_db().await, sqlite_test_db().await)
        .await;
}

async fn stays_idle_through_another_databases_inserts(db: TestDb, other: TestDb) {
    let rec = Recorder::new();
    let mut cfg = fast_config();
    cfg.poll_interval = Duration::from_secs(60);
    let w = worker(&db, &rec).config(cfg).spawn();
    let stop = tokio_util::sync::CancellationToken::new();
    let noise = {
        let jobs = other.jobs.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.is_cancelled() {
                jobs.enqueue(Probe::new(format!("noise{n}"), Action::Succeed))
                    .await
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut direct = 0;
    for i in 0..20 {
        let req = db
            .jobs
            .enqueue(Probe::new(format!("mine{i}"), Action::Succeed))
            .await
            .unwrap()
            .unwrap();
        if req.id == 0 {
            direct += 1;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.cancel();
    let noise_jobs = noise.await.unwrap();
    assert!(noise_jobs > 100, "{noise_jobs} noise jobs");
    // Woken by every one of those inserts, it took 0 or 1 of the 20 directly.
    assert!(
        direct >= 15,
        "the worker stayed idle through the other database's inserts: {direct} of 20 taken directly"
    );
    let elsewhere = Jobs::connect(&db.url).await.unwrap();
    elsewhere
        .enqueue(Probe::new("woken", Action::Succeed))
        .await
        .unwrap()
        .unwrap();
    wait_results(&db, 21).await;
    w.stop().await.unwrap();
    assert_eq!(other.requests().await, i64::from(noise_jobs));
}

/// A database whose schema predates the schema-named notification (its trigger sends the
/// queue's name, as versions 1–2 made it) still wakes the worker.
#[tokio::test]
async fn a_trigger_older_than_the_schema_payload_still_wakes_the_worker() {
    if plainjobs::testing::transaction_pooling() {
        // Nothing to test: behind a transaction pooler workers poll (no LISTEN).
        eprintln!("skipped: no LISTEN behind a transaction-mode pooler");
        return;
    }
    let db = test_db().await;
    db.exec("COMMENT ON FUNCTION plainjobs_notify_jobrequest() IS 'plainjobs schema 2'")
        .await;
    db.exec(
        "CREATE OR REPLACE FUNCTION plainjobs_notify_jobrequest() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_notify('plainjobs_jobrequest', 'default'); RETURN NULL; END $$",
    )
    .await;
    let rec = Recorder::new();
    let mut cfg = fast_config();
    cfg.poll_interval = Duration::from_secs(60);
    let w = worker(&db, &rec).config(cfg).spawn();
    tokio::time::sleep(Duration::from_millis(500)).await;
    db.insert_raw_request(
        "tests.Probe",
        r#"{"args": [], "kwargs": {"id": "old-trigger", "action": "Succeed"}}"#,
        "",
        None,
    )
    .await;
    assert!(
        wait_until(Duration::from_secs(10), || async { rec.runs().len() == 1 }).await,
        "woken long before the 60 s poll"
    );
    w.stop().await.unwrap();
}

#[tokio::test]
async fn claim_uses_the_claim_index() {
    let db = test_db().await;
    db.jobs
        .enqueue_many((0..2000).map(|i| Probe::new(format!("{i}"), Action::Succeed)))
        .await
        .unwrap();
    db.exec("ANALYZE plainjobs_jobrequest").await;
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT id FROM plainjobs_jobrequest WHERE queue = 'default' AND (start_at IS NULL OR start_at <= now())
         ORDER BY priority DESC, COALESCE(start_at, created_at), id LIMIT 10 FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(match &db.raw {
        Raw::Pg(p) => p,
        Raw::Sqlite(_) => unreachable!("a PostgreSQL test"),
    })
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("plainjobs_jobrequest_claim_excl"), "{plan}");
    assert!(
        !plan.contains("Sort"),
        "no sort: the index yields claim order\n{plan}"
    );
}

async fn retention_deletes_old_results(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    db.jobs
        .enqueue_many((0..3).map(|i| Probe::new(format!("{i}"), Action::Succeed)))
        .await
        .unwrap();
    let w = worker(&db, &rec).spawn();
    wait_results(&db, 3).await;
    w.stop().await.unwrap();
    db.exec(&format!("UPDATE plainjobs_jobresult SET created_at = {} WHERE id IN (SELECT min(id) FROM plainjobs_jobresult)", db.ago_sql(8 * 86400))).await;
    assert_eq!(
        db.jobs
            .clear_results(Duration::from_secs(7 * 24 * 3600))
            .await
            .unwrap(),
        1
    );
    assert_eq!(db.results().await.len(), 2);
    // The worker does it by itself too, in as many batches as it takes (here more than two),
    // and leaves results within retention alone.
    db.exec(&format!(
        "UPDATE plainjobs_jobresult SET created_at = {}",
        db.ago_sql(8 * 86400)
    ))
    .await;
    let uuid = |col: &str| match backend {
        Backend::Postgres => format!("md5('{col}' || i)::uuid"),
        Backend::Sqlite => format!("printf('%08x-0000-4000-8000-%012d', {}, i)", col.len()),
    };
    db.exec(&format!(
        "INSERT INTO plainjobs_jobresult (uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, retry_job_request_uuid, trace_id, span_id)
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 12000)
         SELECT {}, {}, {}, NULL, NULL, '', 'SUCCESSFUL', {}, NULL, 'tests.Old', NULL, 0, '', 'default', 0, 0, '', NULL, NULL, NULL FROM s",
        uuid("u"),
        db.ago_sql(8 * 86400),
        uuid("process"),
        uuid("request_uuid"),
    ))
    .await;
    db.exec(&format!(
        "UPDATE plainjobs_jobresult SET created_at = {} WHERE id IN (SELECT max(id) FROM plainjobs_jobresult)",
        db.ago_sql(86400)
    ))
    .await;
    assert_eq!(db.results().await.len(), 12_002);
    let w = worker(&db, &rec).spawn();
    assert!(wait_until(T, || async { db.results().await.len() == 1 }).await);
    w.stop().await.unwrap();
    let kept = db.results().await;
    assert_eq!(kept.len(), 1, "the result within retention is kept");
    assert_eq!(kept[0].job_class, "tests.Old");
}

async fn periodic_retry_pass_retries_results_it_did_not_write(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    // A LOST result with retries left, as a rescuer that did not know the job type leaves it;
    // one of a type this worker does not know (another worker's, or one that no longer
    // exists); and one of our type whose parameters no longer fit it.
    for (status, class, params) in [
        (
            "LOST",
            "tests.Probe",
            r#"{"args": [], "kwargs": {"id": "lost", "action": "Succeed"}}"#,
        ),
        ("ERRORED", "app.Gone", r#"{"args": [], "kwargs": {}}"#),
        (
            "ERRORED",
            "tests.Probe",
            r#"{"args": [], "kwargs": {"nope": 1}}"#,
        ),
    ] {
        let now = db.now_sql();
        db.exec(&format!(
            "INSERT INTO plainjobs_jobresult (uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key)
             VALUES ({}, {now}, {}, {now}, {now}, '', '{status}', {}, {now}, '{class}', '{params}', 0, '', 'default', 2, 0, '')",
            db.uuid_sql(),
            db.uuid_sql(),
            db.uuid_sql()
        ))
        .await;
    }
    let w = worker(&db, &rec).spawn();
    assert!(wait_until(T, || async { rec.runs().len() == 1 }).await);
    assert!(
        wait_until(T, || async {
            db.count("SELECT CAST(retry_attempt AS bigint) FROM plainjobs_jobresult WHERE CAST(parameters AS text) LIKE '%nope%'").await == 2
        })
        .await,
        "an unbuildable retry of a known type bumps retry_attempt until it is no longer retryable"
    );
    w.stop().await.unwrap();
    assert_eq!(rec.runs(), vec![("lost".to_string(), 1)]);
    let unknown = "SELECT count(*) FROM plainjobs_jobresult WHERE job_class = 'app.Gone' AND retry_attempt = 0 AND retry_job_request_uuid IS NULL";
    assert_eq!(
        db.count(unknown).await,
        1,
        "a result of a type this worker does not know keeps its retries for a worker that knows it"
    );
    let lost_link = db.count("SELECT count(*) FROM plainjobs_jobresult WHERE status = 'LOST' AND retry_job_request_uuid IS NOT NULL").await;
    assert_eq!(lost_link, 1);
}

async fn operator_retry_of_a_result(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    db.jobs
        .enqueue(Probe::new("once", Action::FailUntilAttempt(1)))
        .await
        .unwrap();
    let w = worker(&db, &rec).spawn();
    let results = wait_results(&db, 1).await;
    assert_eq!(results[0].status, JobStatus::Errored);
    let registry = {
        let mut r = plainjobs::Registry::new();
        r.register::<Probe>();
        r
    };
    assert!(
        db.jobs
            .retry_result(results[0].uuid, &registry, false)
            .await
            .unwrap()
            .is_none(),
        "no retries allowed"
    );
    let again = db
        .jobs
        .retry_result(results[0].uuid, &registry, true)
        .await
        .unwrap()
        .expect("forced retry");
    assert_eq!(again.retry_attempt, 1);
    let results = wait_results(&db, 2).await;
    w.stop().await.unwrap();
    assert_eq!(results[1].status, JobStatus::Successful);
    assert!(
        db.jobs
            .retry_result(results[0].uuid, &registry, true)
            .await
            .unwrap()
            .is_none(),
        "already retried"
    );
}

async fn heartbeat_row_is_registered_refreshed_and_recreated(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let w = worker(&db, &rec).queues(["a", "b"]).spawn();
    assert!(wait_until(T, || async { db.jobs.workers().await.unwrap().len() == 1 }).await);
    let hb = db.jobs.workers().await.unwrap().remove(0);
    assert_eq!(hb.queues, vec!["a", "b"]);
    assert_eq!(hb.pid, std::process::id() as i32);
    assert!(
        wait_until(T, || async {
            db.jobs
                .workers()
                .await
                .unwrap()
                .first()
                .map(|h| h.last_heartbeat_at)
                > Some(hb.last_heartbeat_at)
        })
        .await,
        "refreshed"
    );
    db.exec("DELETE FROM plainjobs_workerheartbeat").await;
    assert!(
        wait_until(T, || async { db.jobs.workers().await.unwrap().len() == 1 }).await,
        "re-created"
    );
    w.stop().await.unwrap();
    assert!(db.jobs.workers().await.unwrap().is_empty());
}

async fn own_orphans_become_lost(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let w = worker(&db, &rec).spawn();
    assert!(wait_until(T, || async { db.jobs.workers().await.unwrap().len() == 1 }).await);
    let worker_id = db.jobs.workers().await.unwrap()[0].worker_id;
    // A process row of this worker that it is not running (its bookkeeping was lost). It began
    // a minute after its claim (a start the claim itself stamps is no sign that it began).
    let hour_ago = db.ago_sql(3600);
    let started = db.ago_sql(3540);
    db.exec(&format!(
        "INSERT INTO plainjobs_jobprocess (uuid, created_at, started_at, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, worker_id)
         VALUES ({}, {hour_ago}, {started}, {}, {hour_ago}, 'tests.Probe', '{{\"args\": [], \"kwargs\": {{\"id\": \"orphan\", \"action\": \"Succeed\"}}}}', 0, '', 'default', 1, 0, '', '{worker_id}')",
        db.uuid_sql(),
        db.uuid_sql()
    ))
    .await;
    let results = wait_results(&db, 1).await;
    assert_eq!(results[0].status, JobStatus::Lost);
    // on_aborted ran, and the retry it had left ran.
    assert!(wait_until(T, || async { rec.runs().len() == 1 }).await);
    w.stop().await.unwrap();
    assert_eq!(rec.aborted(), vec![("orphan".to_string(), JobStatus::Lost)]);
    assert_eq!(rec.runs(), vec![("orphan".to_string(), 1)]);
}

/// When an orphan's job started, as its process row says.
enum Started {
    /// Stamped by its claim (the same time as the row's `created_at`).
    ByItsClaim,
    /// Not at all (claimed ahead).
    No,
    /// A minute after its claim.
    Later,
}

/// Inserts a process row of `worker_id` for a probe `id` that succeeds, claimed an hour ago;
/// returns its request's uuid.
async fn insert_orphan(
    db: &TestDb,
    worker_id: uuid::Uuid,
    id: &str,
    started: Started,
    retries: i16,
) -> uuid::Uuid {
    let request_uuid = uuid::Uuid::new_v4();
    let hour_ago = db.ago_sql(3600);
    let started_at = match started {
        Started::ByItsClaim => hour_ago.clone(),
        Started::No => "NULL".to_string(),
        Started::Later => db.ago_sql(3540),
    };
    db.exec(&format!(
        "INSERT INTO plainjobs_jobprocess (uuid, created_at, started_at, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, worker_id)
         VALUES ({}, {hour_ago}, {started_at}, '{request_uuid}', {hour_ago}, 'tests.Probe', '{{\"args\": [], \"kwargs\": {{\"id\": \"{id}\", \"action\": \"Succeed\"}}}}', 0, '', 'default', {retries}, 0, '', '{worker_id}')",
        db.uuid_sql(),
    ))
    .await;
    request_uuid
}

/// What a claim whose reply was lost leaves behind: process rows of a live worker that it does
/// not hold, for jobs that never began. The orphan rescue hands them back to the queue (same
/// request uuid, no retry spent) instead of ending them as LOST; a job that did begin is still
/// LOST (and retried).
async fn own_orphans_that_never_began_go_back_to_the_queue(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    // The rescuer serves another queue, so what it hands back stays queued for us to see.
    let rescuer = worker(&db, &rec).queues(["other"]).spawn();
    assert!(wait_until(T, || async { db.jobs.workers().await.unwrap().len() == 1 }).await);
    let worker_id = db.jobs.workers().await.unwrap()[0].worker_id;
    // No retries: LOST would end them for good. One was to start at once (the claim stamps
    // started_at with its own created_at), one was claimed ahead (started_at NULL).
    let at_once = insert_orphan(&db, worker_id, "at-once", Started::ByItsClaim, 0).await;
    let ahead = insert_orphan(&db, worker_id, "ahead", Started::No, 0).await;
    // This one began a minute after its claim: LOST, then retried.
    insert_orphan(&db, worker_id, "began", Started::Later, 1).await;

    assert!(
        wait_until(T, || async { db.requests().await == 3 }).await,
        "handed back (and one retry enqueued): {} requests, {:#?}",
        db.requests().await,
        db.results().await
    );
    rescuer.stop().await.unwrap();
    let requests = db.jobs.requests(10).await.unwrap();
    for uuid in [at_once, ahead] {
        let r = requests
            .iter()
            .find(|r| r.uuid == uuid)
            .expect("the same request is back in the queue");
        assert_eq!(r.retry_attempt, 0, "no retry spent");
        assert_eq!(r.retries, 0);
    }
    let results = db.results().await;
    assert_eq!(results.len(), 1, "{results:#?}");
    assert_eq!(results[0].status, JobStatus::Lost);
    assert!(results[0].parameters.as_ref().unwrap()["kwargs"]["id"] == "began");
    assert_eq!(rec.aborted(), vec![("began".to_string(), JobStatus::Lost)]);
    assert_eq!(db.processes().await, 0);

    // A worker of the queue runs each exactly once, as first attempts (the retry as attempt 1).
    let w = worker(&db, &rec).spawn();
    let results = wait_results(&db, 4).await;
    w.stop().await.unwrap();
    let mut runs = rec.runs();
    runs.sort();
    assert_eq!(
        runs,
        vec![
            ("ahead".to_string(), 0),
            ("at-once".to_string(), 0),
            ("began".to_string(), 1)
        ]
    );
    for uuid in [at_once, ahead] {
        let r: Vec<_> = results
            .iter()
            .filter(|r| r.job_request_uuid == uuid)
            .collect();
        assert_eq!(r.len(), 1, "{results:#?}");
        assert_eq!(r[0].status, JobStatus::Successful);
        assert_eq!(r[0].retry_attempt, 0);
    }
    assert_eq!(db.requests().await, 0);
    assert_eq!(db.processes().await, 0);
}

async fn graceful_shutdown_hands_back_unstarted_and_finishes_running(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let w = worker(&db, &rec).concurrency(2).max_pending(5).spawn();
    // Quick jobs first: the worker claims ahead only as many jobs as can start soon at the
    // pace jobs have been running.
    db.jobs
        .enqueue_many((0..6).map(|i| Probe::new(format!("quick{i}"), Action::Succeed)))
        .await
        .unwrap();
    wait_results(&db, 6).await;
    db.jobs
        .enqueue_many((0..10).map(|i| Probe::new(format!("s{i}"), Action::Sleep { ms: 700 })))
        .await
        .unwrap();
    // Two running, five claimed ahead, three still queued.
    assert!(wait_until(T, || async { db.processes().await == 7 }).await);
    assert_eq!(
        db.count("SELECT count(*) FROM plainjobs_jobprocess WHERE started_at IS NULL")
            .await,
        5
    );
    w.stop().await.unwrap();
    let results = db.results().await;
    assert_eq!(
        results.len(),
        8,
        "the six quick jobs and the two running ones finished"
    );
    assert!(results.iter().all(|r| r.status == JobStatus::Successful));
    assert_eq!(db.processes().await, 0);
    assert_eq!(
        db.requests().await,
        8,
        "unstarted jobs handed back, nothing lost"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM plainjobs_jobrequest WHERE retry_attempt > 0")
            .await,
        0,
        "no retry used"
    );
    // Another worker drains the rest: every job exactly once.
    let w = worker(&db, &rec).concurrency(10).spawn();
    wait_results(&db, 16).await;
    w.stop().await.unwrap();
    let mut ids = rec.run_ids();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!((before, ids.len()), (16, 16));
}

async fn shutdown_timeout_cancels_running_jobs_and_retries_them(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    db.jobs
        .enqueue(Probe::new("long", Action::HangFirstAttempt).retries(1))
        .await
        .unwrap();
    let w = worker(&db, &rec)
        .shutdown_timeout(Duration::from_millis(300))
        .spawn();
    assert!(wait_until(T, || async { rec.runs().len() == 1 }).await);
    w.stop().await.unwrap();
    let results = db.results().await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].status, JobStatus::Cancelled);
    assert!(results[0].retry_job_request_uuid.is_some(), "retried");
    assert_eq!(
        rec.aborted(),
        vec![("long".to_string(), JobStatus::Cancelled)]
    );
    assert_eq!(
        db.count("SELECT count(*) FROM plainjobs_jobrequest WHERE retry_attempt = 1")
            .await,
        1
    );
    assert_eq!(db.processes().await, 0);
}

async fn worker_exits_after_consecutive_claim_failures(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let mut cfg = fast_config();
    cfg.max_claim_failures = 3;
    let w = worker(&db, &rec).config(cfg).spawn();
    tokio::time::sleep(Duration::from_millis(300)).await;
    db.exec("ALTER TABLE plainjobs_jobrequest RENAME TO plainjobs_jobrequest_gone")
        .await;
    db.exec(&format!("INSERT INTO plainjobs_jobrequest_gone (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key) VALUES ({}, {}, 'x', NULL, 0, '', 'default', 0, 0, '')", db.now_sql(), db.uuid_sql())).await;
    let out = tokio::time::timeout(T, w.join())
        .await
        .expect("the worker exits by itself");
    let err = out.unwrap_err();
    assert!(
        err.to_string().contains("claiming failed 3 times in a row"),
        "{err}"
    );
}

/// A job type the test workers do not register.
#[derive(Serialize, Deserialize)]
struct Unregistered;

impl Job for Unregistered {
    const NAME: &'static str = "tests.Unregistered";
    async fn run(&self, _: &JobContext) -> Result<Outcome, JobError> {
        Ok(Outcome::Success)
    }
}

async fn an_idle_worker_takes_jobs_enqueued_through_its_own_handle(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let mut cfg = fast_config();
    cfg.poll_interval = Duration::from_secs(60);
    let w = worker(&db, &rec).config(cfg).spawn();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Other tests' inserts wake this worker too (a notification reaches every listener of the
    // database), and a job is handed over only while the worker waits: try until it does.
    let mut direct = None;
    let mut tries = 0;
    while direct.is_none() && tries < 50 {
        tries += 1;
        let req = db
            .jobs
            .enqueue(Probe::new(format!("direct{tries}"), Action::Succeed))
            .await
            .unwrap()
            .unwrap();
        if req.id == 0 {
            direct = Some(req);
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let direct = direct.expect("the idle worker took a job directly: no request row");
    let results = wait_results(&db, tries).await;
    let result = results
        .iter()
        .find(|r| r.job_request_uuid == direct.uuid)
        .expect("its result");
    assert_eq!(result.status, JobStatus::Successful);
    assert_eq!(result.requested_at, Some(direct.created_at));
    assert!(result.started_at.is_some());

    // Queued as usual: a job for later, one with a key, one on a queue the worker does not
    // serve, one of a type it lacks, and one enqueued through another handle.
    let delayed = db
        .jobs
        .enqueue(Probe::new("delayed", Action::Succeed))
        .delay(Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    let keyed = db
        .jobs
        .enqueue(Probe::new("keyed", Action::Succeed).key("k"))
        .await
        .unwrap()
        .unwrap();
    let elsewhere_queue = db
        .jobs
        .enqueue(Probe::new("other-queue", Action::Succeed))
        .queue("other")
        .await
        .unwrap()
        .unwrap();
    let unregistered = db.jobs.enqueue(Unregistered).await.unwrap().unwrap();
    let other_handle = Jobs::connect(&db.url).await.unwrap();
    let elsewhere = other_handle
        .enqueue(Probe::new("other-handle", Action::Succeed))
        .await
        .unwrap()
        .unwrap();
    for r in [
        &delayed,
        &keyed,
        &elsewhere_queue,
        &unregistered,
        &elsewhere,
    ] {
        assert_ne!(r.id, 0, "{} was queued", r.job_class);
    }
    // The worker claims the unknown type from the queue like any job, and errs on it.
    let results = wait_results(&db, tries + 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.stop().await.unwrap();
    let mut ran = rec.run_ids();
    ran.retain(|id| !id.starts_with("direct"));
    ran.sort();
    assert_eq!(ran, vec!["delayed", "keyed", "other-handle"]);
    let errored: Vec<&str> = results
        .iter()
        .filter(|r| r.status == JobStatus::Errored)
        .map(|r| r.job_class.as_str())
        .collect();
    assert_eq!(errored, vec!["tests.Unregistered"]);
    assert_eq!(db.requests().await, 1, "the other queue's");
    assert_eq!(db.processes().await, 0);
}

async fn without_local_dispatch_every_job_is_queued(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let mut cfg = fast_config();
    cfg.local_dispatch = false;
    let w = worker(&db, &rec).config(cfg).spawn();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let queued = db
        .jobs
        .enqueue(Probe::new("queued", Action::Succeed))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(queued.id, 0);
    let results = wait_results(&db, 1).await;
    assert_eq!(results[0].job_request_uuid, queued.uuid);
    w.stop().await.unwrap();
}

/// Counts the jobs of one worker running at once.
#[derive(Default)]
struct Gauge {
    now: std::sync::atomic::AtomicUsize,
    max: std::sync::atomic::AtomicUsize,
    ran: std::sync::Mutex<Vec<u32>>,
}

#[derive(Serialize, Deserialize)]
struct Measured {
    n: u32,
}

impl Job for Measured {
    const NAME: &'static str = "tests.Measured";
    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        use std::sync::atomic::Ordering;
        let gauge = ctx.state::<Arc<Gauge>>()?;
        let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
        gauge.max.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(3)).await;
        gauge.ran.lock().unwrap().push(self.n);
        gauge.now.fetch_sub(1, Ordering::SeqCst);
        Ok(Outcome::Success)
    }
}

/// Many concurrent enqueues through the worker's own handle: some go straight to it, the rest
/// are queued and claimed; every job runs exactly once and the worker never runs more jobs
/// than it has slots.
async fn concurrent_local_enqueues_run_once_within_the_slots(backend: Backend) {
    let db = test_db_for(backend).await;
    let gauge = Arc::new(Gauge::default());
    let w = Worker::new(db.jobs.clone())
        .register::<Measured>()
        .state(gauge.clone())
        .config(fast_config())
        .concurrency(3)
        .spawn();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Waves of concurrent enqueues, until one of them found the worker idle (other tests'
    // inserts wake it too, and a job is handed over only while it waits).
    let mut total: u32 = 0;
    let mut direct = 0;
    while direct == 0 && total < 400 {
        let tasks: Vec<_> = (total..total + 40)
            .map(|n| {
                let jobs = db.jobs.clone();
                tokio::spawn(async move { jobs.enqueue(Measured { n }).await })
            })
            .collect();
        total += 40;
        for t in tasks {
            let req = t.await.unwrap().unwrap().unwrap();
            if req.id == 0 {
                direct += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let results = wait_results(&db, total as usize).await;
    w.stop().await.unwrap();
    assert!(results.iter().all(|r| r.status == JobStatus::Successful));
    let mut ran = gauge.ran.lock().unwrap().clone();
    ran.sort();
    assert_eq!(ran, (0..total).collect::<Vec<_>>(), "each job ran once");
    let max = gauge.max.load(std::sync::atomic::Ordering::SeqCst);
    assert!(max <= 3, "{max} jobs ran at once on 3 slots");
    assert!(direct >= 1, "the idle worker took some directly");
    assert_eq!(db.requests().await, 0);
    assert_eq!(db.processes().await, 0);
}

/// Enqueues whose caller stops waiting at any point (the task aborted after 0 to 3 ms): every
/// job that was committed runs and ends exactly once; none is left recorded as running.
async fn abandoned_local_enqueues_leave_no_job_stuck(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let w = worker(&db, &rec).spawn();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..60u64 {
        let jobs = db.jobs.clone();
        let task = tokio::spawn(async move {
            jobs.enqueue(Probe::new(format!("j{i}"), Action::Succeed))
                .await
        });
        tokio::time::sleep(Duration::from_micros(i * 50)).await;
        task.abort();
        let _ = task.await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        wait_until(T, || async {
            db.requests().await == 0 && db.processes().await == 0
        })
        .await,
        "{} requests and {} processes left",
        db.requests().await,
        db.processes().await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.stop().await.unwrap();
    let results = db.results().await;
    assert!(results.iter().all(|r| r.status == JobStatus::Successful));
    let mut ran = rec.run_ids();
    let runs = ran.len();
    ran.sort();
    ran.dedup();
    assert_eq!(ran.len(), runs, "no job ran twice");
    assert_eq!(results.len(), runs, "one result per run");
}

conformance!(
    abandoned_local_enqueues_leave_no_job_stuck,
    an_idle_worker_takes_jobs_enqueued_through_its_own_handle,
    without_local_dispatch_every_job_is_queued,
    concurrent_local_enqueues_run_once_within_the_slots,
    an_error_text_with_a_nul_byte_is_stored_and_the_worker_goes_on,
    jobs_claimed_ahead_go_back_when_the_slots_stay_busy,
    processes_whose_worker_left_no_heartbeat_become_lost,
    a_running_job_enqueues_its_successor_under_its_own_key,
    success_moves_request_to_process_to_result,
    errors_and_panics_are_errored_and_the_worker_carries_on,
    deferral_makes_a_deferred_result_and_a_linked_request,
    deferral_whose_re_enqueue_is_refused_is_still_deferred_without_link,
    retry_chain_reaches_retries_and_stops,
    retry_succeeds_after_failures,
    uniqueness_under_fifty_concurrent_enqueuers,
    enqueue_in_the_callers_transaction,
    bulk_enqueue_in_one_call,
    bulk_enqueue_across_statements,
    priority_then_fifo_order,
    delayed_job_runs_when_due_without_polling,
    notify_wakes_an_idle_worker_for_rows_written_by_any_producer,
    a_row_written_by_plain_jobs_runs_on_a_rust_worker,
    bad_input_gets_clear_errors_and_loses_nothing,
    queues_are_served_only_by_their_workers,
    retention_deletes_old_results,
    periodic_retry_pass_retries_results_it_did_not_write,
    operator_retry_of_a_result,
    heartbeat_row_is_registered_refreshed_and_recreated,
    own_orphans_become_lost,
    own_orphans_that_never_began_go_back_to_the_queue,
    graceful_shutdown_hands_back_unstarted_and_finishes_running,
    shutdown_timeout_cancels_running_jobs_and_retries_them,
    worker_exits_after_consecutive_claim_failures,
);

/// A job that enqueues its successor under its own concurrency key while it runs.
#[derive(serde::Serialize, serde::Deserialize)]
struct Chain {
    step: u32,
}

impl Job for Chain {
    const NAME: &'static str = "tests.Chain";
    async fn run(
        &self,
        ctx: &plainjobs::JobContext,
    ) -> Result<plainjobs::Outcome, plainjobs::JobError> {
        // One hand-off: a predecessor's process row lives until its result is flushed (a few
        // ms after it returns), and the default rule counts it, as the database says.
        if self.step < 2 {
            // Refused by the default rule through `ctx.jobs()` (this job is processing with
            // the key), accepted through `ctx.enqueue` (which does not count this job).
            assert!(ctx
                .jobs()
                .enqueue(Chain {
                    step: self.step + 1
                })
                .await
                .map_err(plainjobs::JobError::from)?
                .is_none());
            ctx.enqueue(Chain {
                step: self.step + 1,
            })
            .await
            .map_err(plainjobs::JobError::from)?
            .expect("successor enqueued");
        }
        Ok(plainjobs::Outcome::Success)
    }
    fn default_concurrency_key(&self) -> String {
        "chain".into()
    }
}

async fn a_running_job_enqueues_its_successor_under_its_own_key(backend: Backend) {
    let db = test_db_for(backend).await;
    db.jobs.enqueue(Chain { step: 1 }).await.unwrap().unwrap();
    let w = Worker::new(db.jobs.clone())
        .register::<Chain>()
        .config(fast_config())
        .spawn();
    let results = wait_results(&db, 2).await;
    w.stop().await.unwrap();
    assert_eq!(results.len(), 2);
    assert!(
        results.iter().all(|r| r.status == JobStatus::Successful),
        "{results:#?}"
    );
    assert_eq!(db.requests().await, 0);
}

async fn an_error_text_with_a_nul_byte_is_stored_and_the_worker_goes_on(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    db.jobs
        .enqueue(Probe::new("nul", Action::FailWithNul))
        .await
        .unwrap();
    let w = worker(&db, &rec).spawn();
    let results = wait_results(&db, 1).await;
    assert_eq!(results[0].status, JobStatus::Errored);
    assert!(
        results[0].error.contains("bad\\0byte from nul"),
        "{}",
        results[0].error
    );
    // The result writer is not stuck: later jobs finish.
    db.jobs
        .enqueue(Probe::new("after", Action::Succeed))
        .await
        .unwrap();
    wait_results(&db, 2).await;
    w.stop().await.unwrap();
}

async fn jobs_claimed_ahead_go_back_when_the_slots_stay_busy(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let a = worker(&db, &rec).concurrency(1).max_pending(5).spawn();
    // Quick jobs teach worker A that jobs are fast, so it claims ahead.
    db.jobs
        .enqueue_many((0..5).map(|i| Probe::new(format!("warm{i}"), Action::Succeed)))
        .await
        .unwrap();
    wait_results(&db, 5).await;
    // Then a slow job takes A's only slot, with quick ones claimed ahead behind it.
    // One statement, so A's next claim takes the slow job (first in line) and the quick ones
    // ahead of a free slot.
    let batch = std::iter::once(Probe::new("slow", Action::Sleep { ms: 4000 }))
        .chain((0..4).map(|i| Probe::new(format!("quick{i}"), Action::Succeed)));
    db.jobs.enqueue_many(batch).await.unwrap();
    assert!(
        wait_until(T, || async {
            db.count("SELECT count(*) FROM plainjobs_jobprocess WHERE started_at IS NULL")
                .await
                > 0
        })
        .await,
        "A claimed quick jobs ahead"
    );
    // A second worker gets them once A hands them back (after ~1 s), while the slow job runs.
    let b = worker(&db, &rec).concurrency(2).spawn();
    let quick_done = wait_until(T, || async {
        db.count("SELECT count(*) FROM plainjobs_jobresult WHERE CAST(parameters AS text) LIKE '%quick%'").await == 4
    })
    .await;
    let slow_done = db
        .count(
            "SELECT count(*) FROM plainjobs_jobresult WHERE CAST(parameters AS text) LIKE '%slow%'",
        )
        .await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    assert!(quick_done, "the quick jobs ran");
    assert_eq!(slow_done, 0, "...while the slow job was still running");
    let mut ids = rec.run_ids();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(n, ids.len(), "no job ran twice");
}

async fn processes_whose_worker_left_no_heartbeat_become_lost(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    // A process row of a worker that has no heartbeat row at all.
    let hour_ago = db.ago_sql(3600);
    db.exec(&format!(
        "INSERT INTO plainjobs_jobprocess (uuid, created_at, started_at, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, worker_id)
         VALUES ({}, {hour_ago}, {hour_ago}, {}, {hour_ago}, 'tests.Probe', '{{\"args\": [], \"kwargs\": {{\"id\": \"unowned\", \"action\": \"Succeed\"}}}}', 0, '', 'default', 1, 0, '', '{}')",
        db.uuid_sql(),
        db.uuid_sql(),
        uuid::Uuid::new_v4()
    ))
    .await;
    let w = worker(&db, &rec).spawn();
    assert!(
        wait_until(T, || async { rec.runs().len() == 1 }).await,
        "rescued and retried"
    );
    w.stop().await.unwrap();
    let results = db.results().await;
    assert_eq!(results[0].status, JobStatus::Lost);
    assert!(
        results[0].error.contains("no heartbeat row"),
        "{}",
        results[0].error
    );
    assert_eq!(
        rec.aborted(),
        vec![("unowned".to_string(), JobStatus::Lost)]
    );
}
