//! Run-time limits: per job type and per enqueue. A run over its limit is stopped, recorded
//! ERRORED with a message saying so, and retried when it may be; a shell command's processes
//! end with it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use plainjobs::schedule::ScheduledCommand;
use plainjobs::{Job, JobContext, JobError, JobStatus, Outcome, Worker};
use serde::{Deserialize, Serialize};

/// Sleeps for `ms`; its type allows 300 ms per run.
#[derive(Serialize, Deserialize)]
struct Slow {
    ms: u64,
}

impl Job for Slow {
    const NAME: &'static str = "tests.Slow";
    async fn run(&self, _ctx: &JobContext) -> Result<Outcome, JobError> {
        tokio::time::sleep(Duration::from_millis(self.ms)).await;
        Ok(Outcome::Success)
    }
    fn timeout(&self) -> Option<Duration> {
        Some(Duration::from_millis(300))
    }
}

async fn wait_results(db: &TestDb, n: usize) -> Vec<plainjobs::JobResult> {
    assert!(
        wait_until(Duration::from_secs(30), || async {
            db.results().await.len() >= n
        })
        .await,
        "expected {n} results: {:#?}",
        db.results().await
    );
    db.results().await
}

async fn a_job_over_its_types_limit_is_stopped_errored_and_retried(backend: Backend) {
    let db = test_db_for(backend).await;
    db.jobs
        .enqueue(Slow { ms: 60_000 })
        .retries(1)
        .await
        .expect("enqueue")
        .expect("enqueued");
    db.jobs
        .enqueue(Slow { ms: 10 })
        .await
        .expect("enqueue")
        .expect("enqueued");
    let began = Instant::now();
    let w = Worker::new(db.jobs.clone())
        .register::<Slow>()
        .config(fast_config())
        .spawn();
    let results = wait_results(&db, 3).await;
    w.stop().await.expect("stop");
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "stopped, not waited for"
    );
    let timed_out: Vec<_> = results
        .iter()
        .filter(|r| r.status == JobStatus::Errored)
        .collect();
    assert_eq!(
        timed_out.len(),
        2,
        "the first run and its retry: {results:#?}"
    );
    for r in &timed_out {
        assert!(
            r.error
                .contains("Timed out: the job ran longer than its limit of 300ms and was stopped"),
            "{}",
            r.error
        );
    }
    assert_eq!(
        timed_out[0].retry_job_request_uuid,
        Some(timed_out[1].job_request_uuid)
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| r.status == JobStatus::Successful)
            .count(),
        1,
        "a quick one is unaffected"
    );
}

async fn an_enqueues_limit_overrides_the_types_and_is_kept_by_retries(backend: Backend) {
    let db = test_db_for(backend).await;
    // 1 s allowed for this one: a 600 ms run succeeds where the type's 300 ms would not.
    db.jobs
        .enqueue(Slow { ms: 600 })
        .timeout(Duration::from_secs(1))
        .await
        .expect("enqueue")
        .expect("enqueued");
    // A probe has no limit of its own; this enqueue gives it 200 ms, kept by its retry.
    let rec = Recorder::new();
    db.jobs
        .enqueue(Probe::new("long", Action::Sleep { ms: 60_000 }).retries(1))
        .timeout(Duration::from_millis(200))
        .await
        .expect("enqueue")
        .expect("enqueued");
    let w = Worker::new(db.jobs.clone())
        .register::<Slow>()
        .register::<Probe>()
        .state(rec.clone())
        .config(fast_config())
        .spawn();
    let results = wait_results(&db, 3).await;
    w.stop().await.expect("stop");
    let by_class = |c: &str| -> Vec<&plainjobs::JobResult> {
        results.iter().filter(|r| r.job_class == c).collect()
    };
    let slow = by_class("tests.Slow");
    assert_eq!(slow.len(), 1);
    assert_eq!(slow[0].status, JobStatus::Successful, "{:#?}", slow[0]);
    let probes = by_class("tests.Probe");
    assert_eq!(probes.len(), 2, "{probes:#?}");
    assert!(probes
        .iter()
        .all(|r| r.status == JobStatus::Errored && r.error.contains("limit of 200ms")));
    assert_eq!(
        probes[1]
            .parameters
            .as_ref()
            .and_then(|p| p.get("plainjobs"))
            .cloned(),
        Some(serde_json::json!({"timeout_ms": 200})),
        "the retry kept the enqueue's limit"
    );
    assert_eq!(rec.runs().len(), 2);
}

async fn a_shell_command_over_its_limit_ends_with_its_processes(backend: Backend) {
    let db = test_db_for(backend).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("limits")
        .join(&db.schema);
    std::fs::create_dir_all(&dir).expect("dir");
    let pid_file = dir.join("child.pid");
    db.jobs
        .enqueue(ScheduledCommand(format!(
            "sleep 60 & echo $! > {}; wait",
            pid_file.display()
        )))
        .timeout(Duration::from_millis(500))
        .await
        .expect("enqueue")
        .expect("enqueued");
    let w = Worker::new(db.jobs.clone())
        .register::<ScheduledCommand>()
        .config(fast_config())
        .spawn();
    let results = wait_results(&db, 1).await;
    w.stop().await.expect("stop");
    assert_eq!(results[0].status, JobStatus::Errored);
    assert!(
        results[0].error.contains("Timed out"),
        "{}",
        results[0].error
    );
    let pid = std::fs::read_to_string(&pid_file)
        .expect("pid")
        .trim()
        .to_string();
    let gone = wait_until(Duration::from_secs(3), || async {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.split_whitespace().nth(2) == Some("Z"))
    })
    .await;
    assert!(gone, "the command's child {pid} ended with it");
}

async fn a_zero_limit_is_refused(backend: Backend) {
    let db = test_db_for(backend).await;
    let e = db
        .jobs
        .enqueue(Slow { ms: 1 })
        .timeout(Duration::ZERO)
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("invalid timeout"), "{e}");
    assert_eq!(db.requests().await, 0);
}

conformance!(
    a_job_over_its_types_limit_is_stopped_errored_and_retried,
    an_enqueues_limit_overrides_the_types_and_is_kept_by_retries,
    a_shell_command_over_its_limit_ends_with_its_processes,
    a_zero_limit_is_refused,
);
