//! Failure: workers killed outright, late finishes after rescue, database connections cut.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use plainjobs::{JobStatus, Jobs, Worker};

const T: Duration = Duration::from_secs(30);

/// Not a test of its own: the body of a worker process that the tests below start and kill.
/// It runs only when TEST_CHILD_DATABASE_URL is set.
#[tokio::test]
#[ignore = "run as a child process by the failure tests"]
async fn child_worker() {
    let Ok(url) = std::env::var("TEST_CHILD_DATABASE_URL") else {
        return;
    };
    let jobs = Jobs::connect(&url).await.expect("child connects");
    let rec = Recorder::new();
    let worker = Worker::new(jobs.clone())
        .register::<Probe>()
        .state(rec)
        .config(fast_config())
        .concurrency(4);
    // With TEST_CHILD_ENQUEUE_LOCALLY=<id>: once the worker is idle, enqueue a job through its
    // own handle (taken directly by the idle worker) that hangs on its first attempt.
    let Ok(id) = std::env::var("TEST_CHILD_ENQUEUE_LOCALLY") else {
        worker.run().await.expect("child worker");
        return;
    };
    // Nothing wakes this worker but the enqueue below (other tests' notifications would: they
    // reach every listener of the database), so it is surely idle then.
    let mut config = fast_config();
    config.listen = false;
    config.poll_interval = Duration::from_secs(600);
    let handle = worker.config(config).spawn();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let req = jobs
        .enqueue(Probe::new(id, Action::HangFirstAttempt).retries(1))
        .await
        .expect("enqueue")
        .expect("enqueued");
    assert_eq!(req.id, 0, "taken directly by the idle worker");
    handle.join().await.expect("child worker");
}

fn spawn_child(db: &TestDb) -> tokio::process::Child {
    spawn_child_with(db, &[])
}

fn spawn_child_with(db: &TestDb, env: &[(&str, &str)]) -> tokio::process::Child {
    let exe = std::env::current_exe().expect("test binary path");
    tokio::process::Command::new(exe)
        .args(["child_worker", "--exact", "--ignored", "--nocapture"])
        .env("TEST_CHILD_DATABASE_URL", &db.url)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start child worker")
}

/// A job that went straight to an idle worker (local dispatch: no request row, no claim) is
/// that worker's process like any claimed one: when the worker is SIGKILLed mid-run, a rescuer
/// turns it LOST, `on_aborted` runs once, and its retry runs.
async fn a_locally_dispatched_job_of_a_killed_worker_is_lost_and_retried(backend: Backend) {
    let db = test_db_for(backend).await;
    let mut child = spawn_child_with(&db, &[("TEST_CHILD_ENQUEUE_LOCALLY", "local")]);
    // Running in the child, and never a request: the process was made at once, begun, by the
    // enqueue itself (a claimed job's requested_at is its request's earlier created_at).
    assert!(
        wait_until(T, || async {
            db.count("SELECT count(*) FROM plainjobs_jobprocess WHERE started_at = created_at AND requested_at = created_at")
                .await
                == 1
        })
        .await,
        "the child's worker took the job directly"
    );
    assert_eq!(db.requests().await, 0);
    child.start_kill().unwrap();
    assert!(!child.wait().await.unwrap().success());
    assert_eq!(db.processes().await, 1, "still recorded as running");

    let rec = Recorder::new();
    let w = Worker::new(db.jobs.clone())
        .register::<Probe>()
        .state(rec.clone())
        .config(fast_config())
        .spawn();
    assert!(
        wait_until(T, || async {
            db.count("SELECT count(*) FROM plainjobs_jobresult WHERE status = 'SUCCESSFUL'")
                .await
                == 1
        })
        .await,
        "the retry ran"
    );
    tokio::time::sleep(Duration::from_millis(800)).await; // more rescue passes: nothing doubles
    w.stop().await.unwrap();
    let results = db.results().await;
    let statuses: Vec<JobStatus> = results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![JobStatus::Lost, JobStatus::Successful],
        "{results:#?}"
    );
    assert_eq!(
        results[1].job_request_uuid,
        results[0]
            .retry_job_request_uuid
            .expect("the LOST result links its retry")
    );
    assert_eq!(rec.aborted(), vec![("local".to_string(), JobStatus::Lost)]);
    assert_eq!(rec.runs(), vec![("local".to_string(), 1)]);
    assert_eq!(db.processes().await, 0);
    assert_eq!(db.requests().await, 0);
}

async fn sigkilled_worker_jobs_become_lost_hook_runs_once_and_retry_follows(backend: Backend) {
    let db = test_db_for(backend).await;
    db.jobs
        .enqueue(Probe::new("victim", Action::HangFirstAttempt).retries(1))
        .await
        .unwrap();
    db.jobs
        .enqueue(Probe::new("no-retries", Action::HangFirstAttempt))
        .await
        .unwrap();
    let mut child = spawn_child(&db);
    // Both jobs are running in the child.
    assert!(
        wait_until(T, || async {
            db.count("SELECT count(*) FROM plainjobs_jobprocess WHERE started_at IS NOT NULL")
                .await
                == 2
        })
        .await,
        "the child worker started both jobs"
    );
    let child_pid = child.id().expect("child pid") as i32;
    let child_worker = db
        .jobs
        .workers()
        .await
        .unwrap()
        .into_iter()
        .find(|w| w.pid == child_pid)
        .expect("the child's heartbeat")
        .worker_id;
    // SIGKILL: no shutdown code runs.
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success());
    assert_eq!(
        db.processes().await,
        2,
        "the dead worker's jobs are still recorded as running"
    );

    // A second worker (2 s heartbeat timeout) rescues them.
    let rec = Recorder::new();
    let w = Worker::new(db.jobs.clone())
        .register::<Probe>()
        .state(rec.clone())
        .config(fast_config())
        .spawn();
    assert!(
        wait_until(T, || async {
            db.count("SELECT count(*) FROM plainjobs_jobresult WHERE status = 'LOST'")
                .await
                == 2
        })
        .await
    );
    // The retry of the job with retries left runs (and succeeds on attempt 1).
    assert!(
        wait_until(T, || async {
            db.count("SELECT count(*) FROM plainjobs_jobresult WHERE status = 'SUCCESSFUL'")
                .await
                == 1
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(800)).await; // more rescue passes: nothing doubles
    w.stop().await.unwrap();

    let results = db.results().await;
    assert_eq!(results.len(), 3, "{results:#?}");
    let lost: Vec<_> = results
        .iter()
        .filter(|r| r.status == JobStatus::Lost)
        .collect();
    assert!(
        lost.iter()
            .all(|r| r.error.contains(&child_worker.to_string())),
        "the LOST error names the dead worker"
    );
    let victim = lost
        .iter()
        .find(|r| r.parameters.as_ref().unwrap()["kwargs"]["id"] == "victim")
        .unwrap();
    assert!(victim.retry_job_request_uuid.is_some());
    let no_retries = lost
        .iter()
        .find(|r| r.parameters.as_ref().unwrap()["kwargs"]["id"] == "no-retries")
        .unwrap();
    assert!(no_retries.retry_job_request_uuid.is_none());
    let mut aborted = rec.aborted();
    aborted.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        aborted,
        vec![
            ("no-retries".to_string(), JobStatus::Lost),
            ("victim".to_string(), JobStatus::Lost)
        ],
        "on_aborted ran exactly once per lost job"
    );
    assert_eq!(rec.runs(), vec![("victim".to_string(), 1)]);
    assert_eq!(
        db.count(
            "SELECT count(*) FROM plainjobs_workerheartbeat WHERE pid = $1"
                .replace("$1", &child_pid.to_string())
                .as_str()
        )
        .await,
        0
    );
    assert_eq!(db.processes().await, 0);
    assert_eq!(db.requests().await, 0);
}

async fn several_worker_processes_share_one_queue_each_job_once(backend: Backend) {
    let db = test_db_for(backend).await;
    let total = 600;
    db.jobs
        .enqueue_many((0..total).map(|i| Probe::new(format!("p{i}"), Action::Sleep { ms: 2 })))
        .await
        .unwrap();
    let mut children: Vec<_> = (0..3).map(|_| spawn_child(&db)).collect();
    // Keep producing while they drain, from this process too.
    for i in 0..200 {
        db.jobs
            .enqueue(Probe::new(format!("late{i}"), Action::Succeed))
            .await
            .unwrap();
    }
    let all = total + 200;
    let done = wait_until(Duration::from_secs(60), || async {
        db.try_count("SELECT count(*) FROM plainjobs_jobresult")
            .await
            .map(|n| n == all as i64)
            .unwrap_or(false)
    })
    .await;
    for c in &mut children {
        c.start_kill().unwrap();
        c.wait().await.unwrap();
    }
    assert!(
        done,
        "all jobs finished: {} results",
        db.results().await.len()
    );
    let results = db.results().await;
    assert!(
        results.iter().all(|r| r.status == JobStatus::Successful),
        "no job failed (no 'database is locked')"
    );
    assert_eq!(
        db.count("SELECT count(DISTINCT job_request_uuid) FROM plainjobs_jobresult")
            .await,
        all as i64,
        "each job once"
    );
    let workers = db.count("SELECT count(DISTINCT p.worker_id) FROM (SELECT worker_id FROM plainjobs_workerheartbeat) p").await;
    assert!(
        workers >= 2,
        "several processes took part ({workers} heartbeats)"
    );
    assert_eq!(db.requests().await, 0);
}

async fn two_rescuers_rescue_a_dead_worker_once(backend: Backend) {
    let db = test_db_for(backend).await;
    db.jobs
        .enqueue_many((0..6).map(|i| Probe::new(format!("h{i}"), Action::HangFirstAttempt)))
        .await
        .unwrap();
    let mut child = spawn_child(&db);
    assert!(
        wait_until(T, || async {
            db.count("SELECT count(*) FROM plainjobs_jobprocess WHERE started_at IS NOT NULL")
                .await
                == 4
        })
        .await
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let rec = Recorder::new();
    let a = Worker::new(db.jobs.clone())
        .register::<Probe>()
        .state(rec.clone())
        .config(fast_config())
        .queues(["other"])
        .spawn();
    let b = Worker::new(db.jobs.clone())
        .register::<Probe>()
        .state(rec.clone())
        .config(fast_config())
        .queues(["other"])
        .spawn();
    assert!(
        wait_until(T, || async {
            db.count("SELECT count(*) FROM plainjobs_jobresult WHERE status = 'LOST'")
                .await
                == 4
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    assert_eq!(db.results().await.len(), 4, "one result per lost job");
    assert_eq!(
        rec.aborted().len(),
        4,
        "one hook per lost job, across both rescuers"
    );
    assert_eq!(db.requests().await, 2, "the two never claimed stay queued");
}

async fn late_finish_after_rescue_makes_no_second_result(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let mut slow_heartbeat = fast_config();
    slow_heartbeat.heartbeat_interval = Duration::from_secs(3600); // it will look dead
    slow_heartbeat.rescue_interval = Duration::from_secs(3600);
    db.jobs
        .enqueue(Probe::new("late", Action::Block))
        .await
        .unwrap();
    db.jobs
        .enqueue(Probe::new("late-failing", Action::Block))
        .await
        .unwrap();
    let alive = Worker::new(db.jobs.clone())
        .register::<Probe>()
        .state(rec.clone())
        .config(slow_heartbeat)
        .spawn();
    assert!(wait_until(T, || async { rec.runs().len() == 2 }).await);
    // Its heartbeat goes stale (as in a long database outage); a peer rescues the job.
    db.exec(&format!(
        "UPDATE plainjobs_workerheartbeat SET last_heartbeat_at = {}",
        db.ago_sql(3600)
    ))
    .await;
    let peer_rec = Recorder::new();
    let peer = Worker::new(db.jobs.clone())
        .register::<Probe>()
        .state(peer_rec.clone())
        .config(fast_config())
        .queues(["none"])
        .spawn();
    assert!(
        wait_until(T, || async {
            db.count("SELECT count(*) FROM plainjobs_jobresult WHERE status = 'LOST'")
                .await
                == 2
        })
        .await
    );
    // Now the original run finishes: its result must not be written a second time.
    rec.open_gate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    alive.stop().await.unwrap();
    peer.stop().await.unwrap();
    let results = db.results().await;
    assert_eq!(results.len(), 2, "{results:#?}");
    assert!(results.iter().all(|r| r.status == JobStatus::Lost));
    assert_eq!(
        db.count("SELECT count(DISTINCT job_process_uuid) FROM plainjobs_jobresult")
            .await,
        2
    );
}

#[tokio::test]
async fn connections_terminated_while_jobs_run_every_job_ends_exactly_once() {
    let db = test_db().await;
    let rec = Recorder::new();
    // The worker gets connections of its own, named so that only they are cut.
    let worker_app = format!("{}_worker", db.schema);
    let worker_jobs = Jobs::connect(&format!("{}_worker", db.url)).await.unwrap();
    let w = Worker::new(worker_jobs)
        .register::<Probe>()
        .state(rec.clone())
        .config(fast_config())
        .concurrency(4)
        .spawn();
    let admin = sqlx::PgPool::connect(&base_url()).await.unwrap();
    // Behind a transaction-mode pooler every client of the database shares its server
    // sessions: a cut reaches whichever client's transaction gets a session that was just
    // terminated (the pooler ends that client's connection: `DbErrorKind::Terminated`). This
    // test's enqueuer then goes straight to the server, so that only the worker is cut.
    let enqueuer = match (&db.raw, plainjobs::testing::transaction_pooling()) {
        (Raw::Pg(direct), true) => Jobs::from_pool(direct.clone()),
        _ => db.jobs.clone(),
    };
    let total = 300;
    let mut cuts = Vec::new();
    for i in 0..total {
        enqueuer
            .enqueue(Probe::new(format!("j{i}"), Action::Sleep { ms: 5 }))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        if i % 60 == 30 {
            // Cut every connection of the worker, LISTEN included.
            let killed: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()) t",
            )
            .bind(&worker_app)
            .fetch_one(&admin)
            .await
            .unwrap();
            cuts.push(killed);
        }
    }
    let done = wait_until(Duration::from_secs(60), || async {
        db.try_count("SELECT count(*) FROM plainjobs_jobresult")
            .await
            .map(|n| n == total)
            .unwrap_or(false)
    })
    .await;
    w.stop().await.unwrap();
    let results = db.results().await;
    assert!(
        cuts[0] > 0 && cuts.iter().filter(|n| **n > 0).count() >= 3,
        "connections were cut: {cuts:?}"
    );
    assert!(done, "all jobs finished; {} results", results.len());
    assert!(
        results.iter().all(|r| r.status == JobStatus::Successful),
        "no job lost or errored"
    );
    assert_eq!(
        db.count("SELECT count(DISTINCT job_request_uuid) FROM plainjobs_jobresult")
            .await,
        total
    );
    assert_eq!(db.processes().await, 0);
    assert_eq!(db.requests().await, 0);
}

async fn a_worker_that_cannot_heartbeat_stops_claiming(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let w = Worker::new(db.jobs.clone())
        .register::<Probe>()
        .state(rec.clone())
        .config(fast_config())
        .spawn();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Heartbeats fail (the table is gone); claims would too, but they must not even be tried
    // as successes: nothing runs until the heartbeat is back.
    db.exec("ALTER TABLE plainjobs_workerheartbeat RENAME TO plainjobs_workerheartbeat_x")
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    db.jobs
        .enqueue(Probe::new("waits", Action::Succeed))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(rec.runs().is_empty(), "no claim without a heartbeat");
    db.exec("ALTER TABLE plainjobs_workerheartbeat_x RENAME TO plainjobs_workerheartbeat")
        .await;
    assert!(
        wait_until(T, || async { rec.runs().len() == 1 }).await,
        "claims resume with the heartbeat"
    );
    w.stop().await.unwrap();
}

async fn a_job_running_for_long_on_a_live_worker_is_never_lost(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    db.jobs
        .enqueue(Probe::new("long", Action::Sleep { ms: 4500 }))
        .await
        .unwrap();
    let w = Worker::new(db.jobs.clone())
        .register::<Probe>()
        .state(rec.clone())
        .config(fast_config())
        .spawn();
    let peer = Worker::new(db.jobs.clone())
        .register::<Probe>()
        .state(Recorder::new())
        .config(fast_config())
        .queues(["x"])
        .spawn();
    let results = {
        assert!(wait_until(T, || async { !db.results().await.is_empty() }).await);
        db.results().await
    };
    w.stop().await.unwrap();
    peer.stop().await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(
        results[0].status,
        JobStatus::Successful,
        "twice the heartbeat timeout, still alive"
    );
}

#[allow(dead_code)]
fn _assert_send(_: Arc<()>) {}

conformance!(
    a_locally_dispatched_job_of_a_killed_worker_is_lost_and_retried,
    several_worker_processes_share_one_queue_each_job_once,
    sigkilled_worker_jobs_become_lost_hook_runs_once_and_retry_follows,
    two_rescuers_rescue_a_dead_worker_once,
    late_finish_after_rescue_makes_no_second_result,
    a_worker_that_cannot_heartbeat_stops_claiming,
    a_job_running_for_long_on_a_live_worker_is_never_lost,
);
