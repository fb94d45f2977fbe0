//! A frozen worker (SIGSTOP past the heartbeat timeout, as a VM pause or a long stall would)
//! never starts the jobs it had claimed ahead once it may have been declared dead: another
//! worker has rescued them as LOST and retried them by then. And the job it was running when
//! it froze is stopped when it wakes, rather than running on beside its retry.

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use plainjobs::{Job, JobContext, JobError, JobStatus, Jobs, Outcome, Worker};
use serde::{Deserialize, Serialize};

const T: Duration = Duration::from_secs(30);

/// Appends its process uuid to the run log when it starts, then sleeps, or waits until the
/// test releases it (a retry does neither), then appends `{uuid} end`.
#[derive(Serialize, Deserialize)]
struct Logged {
    id: u32,
    sleep_ms: u64,
    #[serde(default)]
    until_released: bool,
}

/// Where runs are logged: one line per run, written with one `write` call.
struct RunLog(PathBuf);

impl Job for Logged {
    const NAME: &'static str = "tests.Logged";

    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let log = ctx.state::<RunLog>()?;
        let line = format!("{} {}\n", ctx.process().uuid, self.id);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log.0)?;
        file.write_all(line.as_bytes())?;
        if ctx.process().retry_attempt == 0 {
            tokio::time::sleep(Duration::from_millis(self.sleep_ms)).await;
            while self.until_released && !release_file(&log.0).exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        file.write_all(format!("{} end\n", ctx.process().uuid).as_bytes())?;
        Ok(Outcome::Success)
    }

    fn default_retries(&self) -> i16 {
        1
    }
}

/// Not a test of its own: the worker process the test below freezes. One slot.
#[tokio::test]
#[ignore = "run as a child process by the freeze test"]
async fn frozen_child_worker() {
    let (Ok(url), Ok(log)) = (
        std::env::var("TEST_CHILD_DATABASE_URL"),
        std::env::var("TEST_CHILD_RUN_LOG"),
    ) else {
        return;
    };
    let jobs = Jobs::connect(&url).await.expect("child connects");
    Worker::new(jobs)
        .register::<Logged>()
        .state(RunLog(log.into()))
        .config(fast_config())
        .concurrency(1)
        .run()
        .await
        .expect("child worker");
}

fn run_log(db: &TestDb) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("freeze-tests");
    std::fs::create_dir_all(&dir).expect("log dir");
    dir.join(format!("{}.log", db.schema))
}

/// The file whose existence releases a job waiting `until_released`.
fn release_file(log: &std::path::Path) -> PathBuf {
    log.with_extension("release")
}

/// Process uuids whose run reached its end.
fn ended_runs(log: &PathBuf) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_suffix(" end"))
        .map(str::to_string)
        .collect()
}

fn start_child(db: &TestDb, log: &PathBuf) -> tokio::process::Child {
    let exe = std::env::current_exe().expect("test binary path");
    tokio::process::Command::new(exe)
        .args(["frozen_child_worker", "--exact", "--ignored", "--nocapture"])
        .env("TEST_CHILD_DATABASE_URL", &db.url)
        .env("TEST_CHILD_RUN_LOG", log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start child worker")
}

/// Process uuids the run log has lines for.
fn logged_runs(log: &PathBuf) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn signal(child: &tokio::process::Child, sig: &str) {
    let pid = child.id().expect("child running").to_string();
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// The child drains quick jobs (so it learns to claim ahead), then takes a 500 ms job on its one
/// slot and claims quick ones ahead of it. Frozen then, past the heartbeat timeout, its jobs are
/// rescued as LOST by a worker of this process, which runs their retries. When the child
/// resumes, its 500 ms job ends and frees the slot; the jobs it had claimed ahead must not run.
async fn a_frozen_worker_never_starts_jobs_rescued_meanwhile(backend: Backend) {
    let db = test_db_for(backend).await;
    let log = run_log(&db);
    let mut child = start_child(&db, &log);
    let quick = |id| Logged {
        id,
        sleep_ms: 1,
        until_released: false,
    };
    db.jobs
        .enqueue_many((0..30).map(quick))
        .await
        .expect("enqueue");
    assert!(
        wait_until(T, || async { db.results().await.len() == 30 }).await,
        "the child drained the first jobs"
    );
    // One slow job first, the quick ones behind it, in one statement: one claim takes the slow
    // one for the slot and the quick ones ahead of it.
    let slow = Logged {
        id: 100,
        sleep_ms: 500,
        until_released: false,
    };
    let batch = std::iter::once(slow).chain((1000..1040).map(quick));
    db.jobs.enqueue_many(batch).await.expect("enqueue");
    let slow_id = match backend {
        Backend::Postgres => "p.parameters -> 'kwargs' ->> 'id' = '100'",
        Backend::Sqlite => "json_extract(p.parameters, '$.kwargs.id') = 100",
    };
    let ready = format!(
        "SELECT count(*) FROM plainjobs_jobprocess WHERE started_at IS NULL
           AND EXISTS (SELECT 1 FROM plainjobs_jobprocess p WHERE p.started_at IS NOT NULL AND {slow_id})"
    );
    assert!(
        wait_until(T, || async { db.count(&ready).await > 0 }).await,
        "the child runs the slow job with jobs claimed ahead behind it"
    );
    signal(&child, "-STOP");
    // Jobs that began before the freeze (their start not yet written) are not in question.
    let began_before_freeze = logged_runs(&log);
    let frozen_with: Vec<String> = match &db.raw {
        Raw::Pg(p) => sqlx::query_scalar(
            "SELECT uuid::text FROM plainjobs_jobprocess WHERE started_at IS NULL",
        )
        .fetch_all(p)
        .await
        .expect("list"),
        Raw::Sqlite(p) => {
            sqlx::query_scalar("SELECT uuid FROM plainjobs_jobprocess WHERE started_at IS NULL")
                .fetch_all(p)
                .await
                .expect("list")
        }
    };
    assert!(!frozen_with.is_empty());

    // Another worker declares the child dead: its jobs become LOST and are retried here.
    let rescuer = Worker::new(db.jobs.clone())
        .register::<Logged>()
        .state(RunLog(log.clone()))
        .config(fast_config())
        .spawn();
    assert!(
        wait_until(T, || async {
            db.processes().await == 0 && db.requests().await == 0
        })
        .await,
        "the frozen child's jobs were rescued and retried"
    );
    signal(&child, "-CONT");
    // The child's slow job ends at once; give it time to start what it had claimed ahead.
    tokio::time::sleep(Duration::from_secs(2)).await;
    rescuer.stop().await.expect("rescuer stops");
    let _ = child.start_kill();
    let _ = child.wait().await;

    let ran = logged_runs(&log);
    let rerun: Vec<&String> = frozen_with
        .iter()
        .filter(|u| ran.contains(u) && !began_before_freeze.contains(u))
        .collect();
    assert!(
        rerun.is_empty(),
        "the resumed worker started {} of the {} jobs it had claimed ahead, after they were rescued",
        rerun.len(),
        frozen_with.len()
    );
    let lost = db
        .results()
        .await
        .into_iter()
        .filter(|r| r.status == JobStatus::Lost)
        .count();
    assert!(lost >= frozen_with.len(), "{lost} LOST results");
}

/// The child runs a job that waits to be released and is frozen; a worker here rescues it as
/// LOST and runs its retry (which does not wait). The child is woken, and a second later the job
/// is released: by then the child has found the job's process gone and stopped the run, which
/// never reaches its end (without the stop, it ends at the release).
async fn a_frozen_workers_run_is_stopped_once_it_was_rescued(backend: Backend) {
    let db = test_db_for(backend).await;
    let log = run_log(&db);
    let mut child = start_child(&db, &log);
    db.jobs
        .enqueue(Logged {
            id: 7,
            sleep_ms: 0,
            until_released: true,
        })
        .await
        .expect("enqueue");
    assert!(
        wait_until(T, || async { !logged_runs(&log).is_empty() }).await,
        "the child began the job"
    );
    let first_run = logged_runs(&log)[0].clone();
    signal(&child, "-STOP");
    let rescuer = Worker::new(db.jobs.clone())
        .register::<Logged>()
        .state(RunLog(log.clone()))
        .config(fast_config())
        .spawn();
    assert!(
        wait_until(T, || async {
            db.processes().await == 0 && db.requests().await == 0
        })
        .await,
        "the frozen child's job was rescued and its retry ran"
    );
    rescuer.stop().await.expect("rescuer stops");
    signal(&child, "-CONT");
    // The child looks at what it holds every poll interval (200 ms): well within this.
    tokio::time::sleep(Duration::from_secs(1)).await;
    std::fs::write(release_file(&log), "").expect("release");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ended = ended_runs(&log);
    let _ = child.start_kill();
    let _ = child.wait().await;
    assert!(
        !ended.contains(&first_run),
        "the rescued run went on to its end after the worker woke: {ended:?}"
    );
    assert_eq!(ended.len(), 1, "only the retry ended: {ended:?}");
    let statuses: Vec<JobStatus> = db.results().await.iter().map(|r| r.status).collect();
    assert!(statuses.contains(&JobStatus::Lost), "{statuses:?}");
    assert!(statuses.contains(&JobStatus::Successful), "{statuses:?}");
    assert_eq!(statuses.len(), 2, "one LOST, one retry: {statuses:?}");
}

conformance!(
    a_frozen_worker_never_starts_jobs_rescued_meanwhile,
    a_frozen_workers_run_is_stopped_once_it_was_rescued,
);
