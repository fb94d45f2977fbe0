//! Control of running work: cancelling jobs (pending, running, a shell command's processes,
//! many at once) and pausing queues across workers. On PostgreSQL the workers here poll only
//! every 30 s, so what they do within seconds they were told by a notification; on SQLite they
//! look every 200 ms.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use plainjobs::schedule::ScheduledCommand;
use plainjobs::{Cancelled, JobFilter, JobStatus, Worker, WorkerConfig, WorkerHandle};

const T: Duration = Duration::from_secs(10);

/// `fast_config`, polling so rarely on PostgreSQL (with LISTEN on) that only a notification
/// makes a worker act within the tests' waits.
fn notified_config(backend: Backend) -> WorkerConfig {
    let mut c = fast_config();
    if backend == Backend::Postgres && c.listen {
        c.poll_interval = Duration::from_secs(30);
    }
    c
}

fn probe_worker(db: &TestDb, rec: &Arc<Recorder>) -> WorkerHandle {
    Worker::new(db.jobs.clone())
        .register::<Probe>()
        .state(rec.clone())
        .config(notified_config(db.backend))
        .concurrency(1)
        .spawn()
}

/// Waits for the probe `id` to have begun running.
async fn began(rec: &Recorder, id: &str) -> bool {
    wait_until(T, || async { rec.run_ids().iter().any(|r| r == id) }).await
}

/// A running job is stopped by its worker when cancelled: its slot takes the next job, its
/// `on_aborted` runs, its one result is CANCELLED and says who cancelled it, and it is not
/// retried although it had retries left.
async fn a_cancelled_running_job_is_stopped(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let w = probe_worker(&db, &rec);
    let blocked = db
        .jobs
        .enqueue(Probe::new("blocked", Action::Block).retries(3))
        .await
        .unwrap()
        .unwrap();
    assert!(began(&rec, "blocked").await);
    let cancelled = db
        .jobs
        .cancel(blocked.uuid, "ops@example.com")
        .await
        .unwrap();
    let Cancelled::Running { result, .. } = &cancelled else {
        panic!("a running job: {cancelled:?}")
    };
    assert_eq!(result.status, JobStatus::Cancelled);
    // One slot: the next job runs only once the blocked one was stopped.
    db.jobs
        .enqueue(Probe::new("next", Action::Succeed))
        .await
        .unwrap();
    assert!(
        began(&rec, "next").await,
        "the cancelled job's slot is free"
    );
    assert!(
        wait_until(T, || async {
            rec.aborted() == vec![("blocked".to_string(), JobStatus::Cancelled)]
        })
        .await,
        "on_aborted ran: {:?}",
        rec.aborted()
    );
    tokio::time::sleep(Duration::from_millis(600)).await; // a retry pass or two
    w.stop().await.unwrap();
    let results = db.results().await;
    let of_blocked: Vec<_> = results
        .iter()
        .filter(|r| r.job_request_uuid == blocked.uuid)
        .collect();
    assert_eq!(of_blocked.len(), 1, "{results:#?}");
    let r = of_blocked[0];
    assert_eq!(r.status, JobStatus::Cancelled);
    assert_eq!(r.error, "Cancelled by ops@example.com");
    assert_eq!(r.retries, r.retry_attempt, "no retries left");
    assert_eq!(r.retry_job_request_uuid, None);
    assert_eq!(db.requests().await, 0, "not retried");
    assert_eq!(rec.run_ids(), vec!["blocked", "next"]);
}

/// A pending job is removed before it runs; a finished or unknown uuid changes nothing.
async fn cancel_of_a_pending_a_finished_and_an_unknown_job(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let later = db
        .jobs
        .enqueue(Probe::new("later", Action::Succeed))
        .delay(Duration::from_secs(2))
        .await
        .unwrap()
        .unwrap();
    let now = db
        .jobs
        .enqueue(Probe::new("now", Action::Succeed))
        .await
        .unwrap()
        .unwrap();
    let Cancelled::Pending(r) = db.jobs.cancel(later.uuid, "ops").await.unwrap() else {
        panic!("pending")
    };
    assert_eq!(r.status, JobStatus::Cancelled);
    let w = probe_worker(&db, &rec);
    assert!(began(&rec, "now").await);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    w.stop().await.unwrap();
    assert_eq!(rec.run_ids(), vec!["now"], "the cancelled job never ran");
    match db.jobs.cancel(now.uuid, "ops").await.unwrap() {
        Cancelled::AlreadyFinished(r) => assert_eq!(r.status, JobStatus::Successful),
        other => panic!("already finished: {other:?}"),
    }
    let unknown = uuid::Uuid::new_v4();
    assert!(matches!(
        db.jobs.cancel(unknown, "ops").await.unwrap(),
        Cancelled::NotFound
    ));
    assert_eq!(db.results().await.len(), 2);
}

/// Cancelling by filter (what `plainjobs purge` does) stops the running jobs it matches too.
async fn cancelling_by_filter_stops_running_jobs(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let w = probe_worker(&db, &rec);
    db.jobs
        .enqueue(Probe::new("blocked", Action::Block))
        .await
        .unwrap();
    assert!(began(&rec, "blocked").await);
    db.jobs
        .enqueue(Probe::new("waiting", Action::Succeed))
        .await
        .unwrap();
    let purged = db
        .jobs
        .cancel_where(&JobFilter::new(), "purge")
        .await
        .unwrap();
    assert_eq!(purged.requests + purged.processes, 2, "{purged:?}");
    db.jobs
        .enqueue(Probe::new("after", Action::Succeed))
        .await
        .unwrap();
    assert!(began(&rec, "after").await, "the slot came back");
    w.stop().await.unwrap();
    assert_eq!(rec.run_ids(), vec!["blocked", "after"]);
    let cancelled = db
        .results()
        .await
        .into_iter()
        .filter(|r| r.status == JobStatus::Cancelled)
        .count();
    assert_eq!(cancelled, 2);
}

/// A cancelled shell command's whole process group ends, its background children included.
async fn a_cancelled_shell_command_ends_with_its_processes(backend: Backend) {
    let db = test_db_for(backend).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("control")
        .join(&db.schema);
    std::fs::create_dir_all(&dir).expect("dir");
    let pid_file = dir.join("child.pid");
    let job = db
        .jobs
        .enqueue(ScheduledCommand(format!(
            "sleep 60 & echo $! > {}; wait",
            pid_file.display()
        )))
        .await
        .unwrap()
        .unwrap();
    let w = Worker::new(db.jobs.clone())
        .register::<ScheduledCommand>()
        .config(notified_config(backend))
        .spawn();
    // The file exists from the shell's redirection on, before the pid is in it.
    let read_pid = || {
        std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    };
    assert!(wait_until(T, || async { read_pid().is_some() }).await);
    let pid = read_pid().expect("the child's pid");
    let cancelled = db.jobs.cancel(job.uuid, "ops").await.unwrap();
    assert!(
        matches!(cancelled, Cancelled::Running { .. }),
        "{cancelled:?}"
    );
    let gone = wait_until(T, || async {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.split_whitespace().nth(2) == Some("Z"))
    })
    .await;
    w.stop().await.unwrap();
    assert!(gone, "the command's child {pid} ended with it");
    let results = db.results().await;
    assert_eq!(results.len(), 1, "{results:#?}");
    assert_eq!(results[0].status, JobStatus::Cancelled);
}

/// A paused queue: no worker claims from it (those running, and one started while it is
/// paused) until it is resumed; `stats` shows it paused.
async fn a_paused_queue_is_left_alone_until_resumed(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let first = probe_worker(&db, &rec);
    let second = probe_worker(&db, &rec);
    db.jobs
        .enqueue(Probe::new("before", Action::Succeed))
        .await
        .unwrap();
    assert!(began(&rec, "before").await);
    assert!(db.jobs.pause_queue("default", "ops").await.unwrap());
    // Told at once (a notice, or the poll on SQLite); two seconds leave room for a loaded
    // machine (one failure in many runs with one second, with 40 tests in parallel).
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..3 {
        db.jobs
            .enqueue(Probe::new(format!("paused-{i}"), Action::Succeed))
            .await
            .unwrap();
    }
    let third = probe_worker(&db, &rec);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        rec.run_ids(),
        vec!["before"],
        "nothing claimed while paused"
    );
    let stats = db.jobs.stats().await.unwrap();
    let default = stats.iter().find(|s| s.queue == "default").expect("stats");
    assert!(default.paused);
    assert_eq!(default.ready, 3);
    assert!(db.jobs.resume_queue("default").await.unwrap());
    assert!(
        wait_until(T, || async { rec.runs().len() == 4 }).await,
        "resumed: {:?}",
        rec.run_ids()
    );
    for w in [first, second, third] {
        w.stop().await.unwrap();
    }
    assert!(!db.jobs.stats().await.unwrap().iter().any(|s| s.paused));
}

conformance!(
    a_cancelled_running_job_is_stopped,
    cancel_of_a_pending_a_finished_and_an_unknown_job,
    cancelling_by_filter_stops_running_jobs,
    a_cancelled_shell_command_ends_with_its_processes,
    a_paused_queue_is_left_alone_until_resumed,
);
