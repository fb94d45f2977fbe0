//! One queue with a real Plain app: the real plain.jobs (installed by name from PyPI into a
//! throwaway venv by `interop/setup.sh`) and plainjobs on the same tables, each test in a
//! PostgreSQL schema of its own. The Python side is driven through `interop/run.py`
//! (interop/README.md lists its commands; the driver is in interop_support/). Without a Python that plain.jobs supports the suite
//! fails, saying so: it never skips.

mod common;
mod interop_support;

use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use common::*;
use interop_support::*;
use plainjobs::params::{plain_date, plain_datetime};
use plainjobs::{Cancelled, Job, JobContext, JobError, JobStatus, Jobs, Outcome, Worker};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgPool;

const T: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Rust job types under plain.jobs' Python names (interop/app/jobs.py); RecordJob is shared
// (interop_support).

#[derive(Serialize, Deserialize)]
struct FailJob {
    label: String,
}

impl Job for FailJob {
    const NAME: &'static str = "app.jobs.FailJob";
    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        record_run(ctx, Self::NAME, &self.label, "fail", None).await?;
        Err(JobError::msg(format!("{}: always fails", self.label)))
    }
    fn default_retries(&self) -> i16 {
        2
    }
    /// An hour: a test decides who runs the retry, by making it due.
    fn retry_delay(&self, _attempt: u32) -> Duration {
        Duration::from_secs(3600)
    }
}

#[derive(Serialize, Deserialize)]
struct DatesJob {
    #[serde(with = "plain_date")]
    day: NaiveDate,
    #[serde(with = "plain_datetime")]
    moment: DateTime<Utc>,
    #[serde(default)]
    label: String,
}

impl Job for DatesJob {
    const NAME: &'static str = "app.jobs.DatesJob";
    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let seen = json!({
            "day": {"type": "date", "value": self.day.to_string()},
            "moment": {"type": "datetime", "value": self.moment.to_rfc3339()},
        });
        record_run(ctx, Self::NAME, &self.label, "ok", Some(seen)).await?;
        Ok(Outcome::Success)
    }
}

// ---------------------------------------------------------------------------------------------
// Set-up.

fn rust_worker(db: &TestDb) -> Worker {
    Worker::new(db.jobs.clone())
        .register::<RecordJob>()
        .register::<FailJob>()
        .register::<DatesJob>()
        .config(fast_config())
}

async fn results_of(db: &TestDb, class: &str) -> Vec<plainjobs::JobResult> {
    db.results()
        .await
        .into_iter()
        .filter(|r| r.job_class == class)
        .collect()
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.count(sql).await
}

async fn wait_for(db: &TestDb, sql: &str, n: i64) -> bool {
    wait_until(T, || async { count(db, sql).await >= n }).await
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

/// A Rust job enqueued by plainjobs runs on plain.jobs' worker, and a Python job enqueued by
/// plain.jobs runs on a plainjobs worker.
#[tokio::test]
async fn each_sides_jobs_run_on_the_others_worker() {
    let (db, plain) = shared_db().await;
    db.jobs
        .enqueue(RecordJob {
            label: "rust-made".into(),
            fail_times: 0,
            sleep: 0.0,
        })
        .await
        .expect("enqueue")
        .expect("enqueued");
    plain.work_until_idle(&[]).await;
    let runs = plain.runs("rust-made").await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["side"], "python");

    plain
        .enqueue(
            "app.jobs.RecordJob",
            json!({"kwargs": {"label": "python-made"}}),
            &[],
        )
        .await;
    let w = rust_worker(&db).spawn();
    assert!(
        wait_for(
            &db,
            "SELECT count(*) FROM interop_runs WHERE label = 'python-made'",
            1
        )
        .await
    );
    assert!(wait_until(T, || async { db.processes().await == 0 }).await);
    w.stop().await.expect("stop");
    let runs = plain.runs("python-made").await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["side"], "rust");
    let results = results_of(&db, "app.jobs.RecordJob").await;
    assert!(
        results.iter().all(|r| r.status == JobStatus::Successful),
        "{results:#?}"
    );
    plain.assert_in_sync().await;
}

/// A concurrency key held by one side's job refuses the other side's enqueue, both ways (the
/// same advisory lock, the same check).
#[tokio::test]
async fn concurrency_keys_are_refused_both_ways() {
    let (db, plain) = shared_db().await;
    let first = db
        .jobs
        .enqueue(RecordJob {
            label: "k1".into(),
            fail_times: 0,
            sleep: 0.0,
        })
        .concurrency_key("shared-1")
        .await
        .expect("enqueue");
    assert!(first.is_some());
    let refused = plain
        .enqueue(
            "app.jobs.RecordJob",
            json!({"kwargs": {"label": "k1-python"}}),
            &["--concurrency-key", "shared-1"],
        )
        .await;
    assert_eq!(refused["enqueued"], false, "{refused:#}");

    let made = plain
        .enqueue(
            "app.jobs.RecordJob",
            json!({"kwargs": {"label": "k2"}}),
            &["--concurrency-key", "shared-2"],
        )
        .await;
    assert_eq!(made["enqueued"], true);
    let again = db
        .jobs
        .enqueue(RecordJob {
            label: "k2-rust".into(),
            fail_times: 0,
            sleep: 0.0,
        })
        .concurrency_key("shared-2")
        .await
        .expect("enqueue");
    assert!(again.is_none(), "refused by the Python job's key");
    assert_eq!(db.requests().await, 2);
}

/// A plainjobs worker and a plain.jobs worker drain one queue together: every job runs
/// exactly once and has exactly one result.
#[tokio::test]
async fn both_workers_on_one_queue_run_each_job_once() {
    let (db, plain) = shared_db().await;
    let n = 40;
    db.jobs
        .enqueue_many((0..n / 2).map(|i| RecordJob {
            label: format!("both-{i}"),
            fail_times: 0,
            sleep: 0.1,
        }))
        .await
        .expect("enqueue");
    for i in n / 2..n {
        let params = json!({"kwargs": {"label": format!("both-{i}"), "sleep": 0.1}});
        plain.enqueue("app.jobs.RecordJob", params, &[]).await;
    }
    // plain.jobs' worker first (it takes a second or two to start), then ours once it runs.
    let python_worker = plain
        .command(&[
            "worker",
            "--until-idle",
            "--seconds",
            "60",
            "--max-processes",
            "2",
            // The Rust side's test config counts a worker dead after 2 s of silence.
            "--heartbeat-interval",
            "1",
        ])
        .spawn()
        .expect("start plain.jobs' worker");
    let python_runs =
        "SELECT count(*) FROM interop_runs WHERE side = 'python' AND label LIKE 'both-%'";
    assert!(
        wait_for(&db, python_runs, 1).await,
        "plain.jobs' worker runs"
    );
    let w = rust_worker(&db).concurrency(2).spawn();
    assert!(
        wait_until(T, || async {
            db.requests().await + db.processes().await == 0
        })
        .await
    );
    w.stop().await.expect("stop");
    let python = python_worker
        .wait_with_output()
        .await
        .expect("plain.jobs' worker ends");
    assert!(python.status.success(), "{python:?}");
    let sides: Vec<(String, i64)> = sqlx::query_as(
        "SELECT side, count(*) FROM interop_runs WHERE label LIKE 'both-%' GROUP BY side ORDER BY side",
    )
    .fetch_all(pool(&db))
    .await
    .expect("sides");
    let total: i64 = sides.iter().map(|(_, n)| n).sum();
    let results = results_of(&db, "app.jobs.RecordJob").await;
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| r.status != JobStatus::Successful)
        .map(|r| r.error.as_str())
        .collect();
    assert_eq!(total, n, "{sides:?}; failed: {failed:#?}");
    assert_eq!(sides.len(), 2, "both workers ran jobs: {sides:?}");
    let once: i64 = count(
        &db,
        "SELECT count(*) FROM (SELECT job_request_uuid FROM interop_runs WHERE label LIKE 'both-%' GROUP BY 1 HAVING count(*) = 1) t",
    )
    .await;
    assert_eq!(once, n, "every job ran once");
    let results = results_of(&db, "app.jobs.RecordJob").await;
    assert_eq!(results.len() as i64, n);
    assert!(results.iter().all(|r| r.status == JobStatus::Successful));
}

/// plain.jobs' worker dies mid-job (its whole process group killed): a plainjobs worker turns
/// the job LOST and enqueues its retry.
#[tokio::test]
async fn a_plainjobs_worker_rescues_a_dead_python_worker() {
    let (db, plain) = shared_db().await;
    plain
        .enqueue(
            "app.jobs.RecordJob",
            json!({"kwargs": {"label": "py-dies", "sleep": 120}}),
            &["--retries", "1"],
        )
        .await;
    let mut python_worker = plain
        .command(&["worker", "--seconds", "120", "--heartbeat-interval", "1"])
        .spawn()
        .expect("start plain.jobs' worker");
    assert!(
        wait_for(
            &db,
            "SELECT count(*) FROM interop_runs WHERE label = 'py-dies'",
            1
        )
        .await
    );
    let pid = python_worker.id().expect("pid");
    // The worker leads a process group of its own (run.py makes it one): the group is killed,
    // its job processes with it, as a crash would.
    let group = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid"));
    assert_eq!(
        nix::unistd::getpgid(Some(group)).expect("the worker's group"),
        group,
        "plain.jobs' worker leads its own process group"
    );
    nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL).expect("kill the group");
    let _ = python_worker.wait().await;

    // Only the rescue: the retry it enqueues waits (the Rust worker serves another queue).
    let w = rust_worker(&db).queues(["elsewhere"]).spawn();
    assert!(
        wait_for(
            &db,
            "SELECT count(*) FROM plainjobs_jobresult WHERE status = 'LOST'",
            1
        )
        .await
    );
    w.stop().await.expect("stop");
    let lost = results_of(&db, "app.jobs.RecordJob").await;
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].status, JobStatus::Lost);
    let retry = lost[0]
        .retry_job_request_uuid
        .expect("the LOST result links its retry");
    let requests = db.jobs.requests(10).await.expect("requests");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].uuid, retry);
    assert_eq!(requests[0].retry_attempt, 1);
}

/// A plainjobs worker process dies mid-job: plain.jobs' rescue turns the job LOST and its retry
/// pass enqueues the retry.
#[tokio::test]
async fn plain_jobs_rescues_a_dead_plainjobs_worker() {
    let (db, plain) = shared_db().await;
    db.jobs
        .enqueue(RecordJob {
            label: "rust-dies".into(),
            fail_times: 0,
            sleep: 120.0,
        })
        .retries(1)
        .await
        .expect("enqueue")
        .expect("enqueued");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = tokio::process::Command::new(exe)
        .args([
            "interop_child_worker",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("TEST_CHILD_DATABASE_URL", &db.url)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start a plainjobs worker process");
    assert!(
        wait_for(
            &db,
            "SELECT count(*) FROM interop_runs WHERE label = 'rust-dies'",
            1
        )
        .await
    );
    child.start_kill().expect("kill");
    let _ = child.wait().await;

    let lost = wait_until(T, || async {
        let v = plain.run(&["rescue", "--heartbeat-timeout", "2"]).await;
        v["lost"].as_array().is_some_and(|l| l.len() == 1)
    })
    .await;
    assert!(lost, "plain.jobs rescued the dead worker's job");
    plain.run(&["retry-failed"]).await;
    let requests = db.jobs.requests(10).await.expect("requests");
    assert_eq!(requests.len(), 1, "plain's retry pass re-enqueued it");
    assert_eq!(requests[0].retry_attempt, 1);
    let results = results_of(&db, "app.jobs.RecordJob").await;
    assert_eq!(results[0].status, JobStatus::Lost);
    assert_eq!(results[0].retry_job_request_uuid, Some(requests[0].uuid));
}

/// Not a test of its own: the plainjobs worker process the test above kills.
#[tokio::test]
#[ignore = "run as a child process by the interop tests"]
async fn interop_child_worker() {
    let Ok(url) = std::env::var("TEST_CHILD_DATABASE_URL") else {
        return;
    };
    let jobs = Jobs::connect(&url).await.expect("child connects");
    let mut config = fast_config();
    config.heartbeat_interval = Duration::from_millis(500);
    Worker::new(jobs)
        .register::<RecordJob>()
        .config(config)
        .run()
        .await
        .expect("child worker");
}

/// A retry chain crosses languages both ways: plainjobs fails the first attempt and enqueues
/// the retry, plain.jobs runs and fails it and its pass enqueues the next; every result links
/// the request that retries it.
#[tokio::test]
async fn retry_chains_cross_languages() {
    let (db, plain) = shared_db().await;
    db.jobs
        .enqueue(FailJob {
            label: "chain".into(),
        })
        .await
        .expect("enqueue")
        .expect("enqueued");
    let w = rust_worker(&db).spawn();
    assert!(wait_for(&db, "SELECT count(*) FROM plainjobs_jobresult", 1).await);
    w.stop().await.expect("stop");
    // plainjobs enqueued the retry with the failure, an hour away: make it due for plain.jobs'
    // worker, whose own pass then enqueues (and runs) the last attempt.
    db.exec("UPDATE plainjobs_jobrequest SET start_at = NULL")
        .await;
    plain.work_until_idle(&["--maintenance-every", "1"]).await;
    let mut results = results_of(&db, "app.jobs.FailJob").await;
    results.sort_by_key(|r| r.retry_attempt);
    let attempts: Vec<i16> = results.iter().map(|r| r.retry_attempt).collect();
    assert_eq!(attempts, [0, 1, 2], "{results:#?}");
    assert!(results.iter().all(|r| r.status == JobStatus::Errored));
    for pair in results.windows(2) {
        assert_eq!(
            pair[0].retry_job_request_uuid,
            Some(pair[1].job_request_uuid)
        );
    }
    assert_eq!(results[2].retry_job_request_uuid, None, "retries used up");
    let sides: Vec<String> = sqlx::query_scalar(
        "SELECT side FROM interop_runs WHERE label = 'chain' ORDER BY retry_attempt",
    )
    .fetch_all(pool(&db))
    .await
    .expect("sides");
    assert_eq!(sides[0], "rust");
    assert!(sides[1..].iter().all(|s| s == "python"), "{sides:?}");
}

/// A Python-only job failed by plain.jobs keeps its retry through a plainjobs worker's retry
/// passes (which cannot build it and must leave it alone); plain's pass then retries it.
#[tokio::test]
async fn python_only_jobs_keep_their_retries() {
    let (db, plain) = shared_db().await;
    plain
        .enqueue(
            "app.jobs.PythonOnlyJob",
            json!({"kwargs": {"label": "py-only", "fail_times": 1}}),
            &["--retries", "1"],
        )
        .await;
    // plain.jobs fails attempt 0; its own pass is a minute away.
    plain
        .run(&["worker", "--seconds", "3", "--maintenance-every", "600"])
        .await;
    let failed = results_of(&db, "app.jobs.PythonOnlyJob").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].status, JobStatus::Errored);

    // Several retry passes of a Rust worker on the same queue.
    let w = rust_worker(&db).spawn();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    w.stop().await.expect("stop");
    let after = results_of(&db, "app.jobs.PythonOnlyJob").await;
    assert_eq!(
        after[0].retry_attempt, 0,
        "the Rust worker left its retry alone"
    );
    assert_eq!(after[0].retry_job_request_uuid, None);
    assert_eq!(db.requests().await, 0);

    plain.run(&["retry-failed"]).await;
    plain.work_until_idle(&[]).await;
    let runs = plain.runs("py-only").await;
    let outcomes: Vec<&str> = runs.iter().filter_map(|r| r["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["fail", "ok"], "{runs:#?}");
}

/// A job cancelled by plainjobs stays cancelled for plain.jobs: its retry pass (which retries
/// CANCELLED results with retries left, as after a deploy) leaves it alone, and its worker
/// never runs it.
#[tokio::test]
async fn a_job_cancelled_by_plainjobs_stays_cancelled_for_plain() {
    let (db, plain) = shared_db().await;
    plain
        .enqueue(
            "app.jobs.PythonOnlyJob",
            json!({"kwargs": {"label": "cancel-me"}}),
            &["--retries", "3"],
        )
        .await;
    let pending = db.jobs.requests(10).await.expect("requests");
    assert_eq!(pending.len(), 1);
    let cancelled = db
        .jobs
        .cancel(pending[0].uuid, "ops")
        .await
        .expect("cancel");
    assert!(matches!(cancelled, Cancelled::Pending(_)), "{cancelled:?}");
    plain.run(&["retry-failed"]).await;
    assert_eq!(db.requests().await, 0, "plain.jobs did not retry it");
    plain.work_until_idle(&[]).await;
    assert!(plain.runs("cancel-me").await.is_empty(), "never ran");
    let results = results_of(&db, "app.jobs.PythonOnlyJob").await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].status, JobStatus::Cancelled);
    assert_eq!(results[0].error, "Cancelled by ops");
}

/// A worker told to claim only the job types it registered leaves Python-only jobs in a shared
/// queue to plain.jobs, rather than failing them as unknown.
#[tokio::test]
async fn a_worker_that_claims_only_its_job_types_leaves_the_others() {
    let (db, plain) = shared_db().await;
    plain
        .enqueue(
            "app.jobs.PythonOnlyJob",
            json!({"kwargs": {"label": "theirs"}}),
            &[],
        )
        .await;
    db.jobs
        .enqueue(RecordJob {
            label: "ours".into(),
            fail_times: 0,
            sleep: 0.0,
        })
        .await
        .expect("enqueue");
    let mut config = fast_config();
    config.only_registered = true;
    let w = rust_worker(&db).config(config).spawn();
    assert!(
        wait_for(
            &db,
            "SELECT count(*) FROM interop_runs WHERE label = 'ours'",
            1
        )
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    w.stop().await.expect("stop");
    assert_eq!(db.requests().await, 1, "the Python-only job still waits");
    assert!(results_of(&db, "app.jobs.PythonOnlyJob").await.is_empty());
    plain.work_until_idle(&[]).await;
    assert_eq!(plain.runs("theirs").await.len(), 1);
}

/// Dates and datetimes in plain.jobs' encodings read back intact, both ways.
#[tokio::test]
async fn dates_and_datetimes_read_back_intact() {
    let (db, plain) = shared_db().await;
    plain
        .enqueue(
            "app.jobs.DatesJob",
            json!({"kwargs": {
                "day": "__plain://date/2026-11-28",
                "moment": "__plain://datetime/2026-11-28T10:30:00.123456+01:00",
                "label": "from-python",
            }}),
            &[],
        )
        .await;
    let w = rust_worker(&db).spawn();
    assert!(
        wait_for(
            &db,
            "SELECT count(*) FROM interop_runs WHERE label = 'from-python'",
            1
        )
        .await
    );
    w.stop().await.expect("stop");
    let seen: Value =
        sqlx::query_scalar("SELECT seen FROM interop_runs WHERE label = 'from-python'")
            .fetch_one(pool(&db))
            .await
            .expect("seen");
    assert_eq!(seen["day"]["value"], "2026-11-28");
    assert_eq!(seen["moment"]["value"], "2026-11-28T09:30:00.123456+00:00");

    let moment = DateTime::parse_from_rfc3339("2026-11-28T10:30:00.654321Z")
        .expect("time")
        .with_timezone(&Utc);
    db.jobs
        .enqueue(DatesJob {
            day: NaiveDate::from_ymd_opt(2026, 2, 3).expect("date"),
            moment,
            label: "from-rust".into(),
        })
        .await
        .expect("enqueue");
    plain.work_until_idle(&[]).await;
    let runs = plain.runs("from-rust").await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["outcome"], "ok", "{runs:#?}");
    assert_eq!(runs[0]["seen"]["day"]["type"], "date");
    assert_eq!(runs[0]["seen"]["day"]["value"], "2026-02-03");
    assert_eq!(runs[0]["seen"]["moment"]["type"], "datetime");
    assert_eq!(runs[0]["seen"]["moment"]["utcoffset_seconds"], 0.0);
    assert_eq!(
        runs[0]["seen"]["moment"]["value"],
        "2026-11-28T10:30:00.654321+00:00"
    );
}

// ---------------------------------------------------------------------------------------------
// Who creates the tables first.

/// The objects plainjobs keeps across Plain deploys, present and valid.
async fn assert_our_objects(pool: &PgPool) {
    let claim: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_index i ON i.indexrelid = c.conindid
         WHERE c.conrelid = 'plainjobs_jobrequest'::regclass AND c.conname = 'plainjobs_jobrequest_claim_excl' AND i.indisvalid)",
    )
    .fetch_one(pool)
    .await
    .expect("catalog");
    assert!(claim, "the claim index is in place");
    let trigger: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'plainjobs_jobrequest'::regclass AND tgname = 'plainjobs_jobrequest_notify')",
    )
    .fetch_one(pool)
    .await
    .expect("catalog");
    assert!(trigger, "the notify trigger is in place");
}

/// plainjobs first, then plain's migrations and a Plain deploy: nothing to do for plain, and
/// our objects stay.
#[tokio::test]
async fn plainjobs_creates_the_tables_then_a_plain_deploy_keeps_everything() {
    let db = test_db().await;
    let plain = plain_for(&db);
    plain.run(&["migrate"]).await;
    let deploy = plain.deploy().await;
    plain.assert_in_sync().await;
    assert_our_objects(pool(&db)).await;
    let applied = deploy["applied"].as_array().cloned().unwrap_or_default();
    assert!(
        applied.is_empty(),
        "the deploy had nothing to change: {applied:#?}"
    );
    db.jobs.migrate().await.expect("migrate again");
    plain.assert_in_sync().await;
}

/// plain first (a Plain app's deploy made the tables), then plainjobs' migrate, then another
/// deploy: plain.jobs' exact schema, our objects in place, nothing for the deploy to change.
#[tokio::test]
async fn plain_creates_the_tables_then_plainjobs_then_a_plain_deploy() {
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = PgPool::connect(&base_url()).await.expect("server");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("schema");
    let url = url_for_schema(&base_url(), &schema);
    let plain = Plain::new(url.clone());
    plain.deploy().await;
    let jobs = Jobs::connect(&url).await.expect("connect");
    jobs.migrate().await.expect("migrate over plain's tables");
    let again = plain.deploy().await;
    let applied = again["applied"].as_array().cloned().unwrap_or_default();
    assert!(
        applied.is_empty(),
        "the deploy had nothing to change: {applied:#?}"
    );
    plain.assert_in_sync().await;
    let pool = jobs.pg_pool().expect("pool").clone();
    assert_our_objects(&pool).await;
    // plain's own enqueue writes to these tables, and a plainjobs worker runs the job.
    plain
        .enqueue(
            "app.jobs.RecordJob",
            json!({"kwargs": {"label": "after"}}),
            &[],
        )
        .await;
    let w = Worker::new(jobs.clone())
        .register::<RecordJob>()
        .config(fast_config())
        .spawn();
    let ran = wait_until(T, || async {
        jobs.results(&plainjobs::ResultFilter::new().status(JobStatus::Successful))
            .await
            .is_ok_and(|r| r.len() == 1)
    })
    .await;
    w.stop().await.expect("stop");
    assert!(ran, "the job plain enqueued ran on plainjobs' worker");
}
