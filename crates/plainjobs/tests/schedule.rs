//! Schedules against a real PostgreSQL: each occurrence enqueued once across workers, queue
//! filtering, time zones, validation at load, and the built-in shell-command job.
//!
//! The scheduling pass reads a test clock (the hidden `Worker::schedule_clock`) set in 2099, so
//! the requests it enqueues stay pending until a test moves their `start_at` into the past.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use plainjobs::schedule::{CronError, Field, Schedule, ScheduledCommand};
use plainjobs::{
    Error, Job, JobContext, JobError, JobResult, JobStatus, Outcome, Registry, Worker,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(8);

const COMMAND_CLASS: &str = "plain.jobs.scheduling.ScheduledCommand";

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 time")
}

/// The concurrency key of a scheduled occurrence, as DESIGN.md gives it.
fn scheduled_key(default_key: &str, at: DateTime<Utc>) -> String {
    format!("{default_key}:scheduled:{}", at.timestamp())
}

/// The clock the workers' scheduling passes read: one shared time, and a count of reads per
/// worker and time, so a test can wait until every worker has finished a pass at that time.
struct TestClock {
    now: Arc<Mutex<DateTime<Utc>>>,
    reads: Mutex<HashMap<(usize, DateTime<Utc>), u32>>,
}

impl TestClock {
    fn new(start: DateTime<Utc>) -> Arc<TestClock> {
        Arc::new(TestClock {
            now: Arc::new(Mutex::new(start)),
            reads: Mutex::default(),
        })
    }

    fn set(&self, t: DateTime<Utc>) {
        *self.now.lock().unwrap() = t;
    }

    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }

    fn reads(&self, worker: usize, at: DateTime<Utc>) -> u32 {
        self.reads
            .lock()
            .unwrap()
            .get(&(worker, at))
            .copied()
            .unwrap_or(0)
    }

    /// The clock for worker number `worker`: the shared time, each read counted.
    fn for_worker(
        self: &Arc<Self>,
        worker: usize,
    ) -> impl Fn() -> DateTime<Utc> + Send + Sync + 'static {
        let clock = Arc::clone(self);
        move || {
            let now = *clock.now.lock().unwrap();
            *clock
                .reads
                .lock()
                .unwrap()
                .entry((worker, now))
                .or_default() += 1;
            now
        }
    }

    /// Waits until each of `workers` has begun and finished a scheduling pass after this call,
    /// at the current time. A pass reads the clock as it begins, so the second read after the
    /// call means the pass that made the first one is over.
    async fn wait_passes(&self, workers: &[usize]) {
        let now = self.now();
        let before: Vec<u32> = workers.iter().map(|w| self.reads(*w, now)).collect();
        let ok = wait_until(T, || async {
            workers
                .iter()
                .zip(&before)
                .all(|(w, b)| self.reads(*w, now) >= b + 2)
        })
        .await;
        assert!(
            ok,
            "workers {workers:?} did not finish a scheduling pass at {now}"
        );
    }
}

/// A pending request, as stored.
#[derive(Debug, Clone)]
struct Row {
    job_class: String,
    queue: String,
    concurrency_key: String,
    start_at: Option<DateTime<Utc>>,
    parameters: Option<Value>,
    source: String,
}

async fn request_rows(db: &TestDb) -> Vec<Row> {
    let mut rows: Vec<Row> = db
        .jobs
        .requests(100_000)
        .await
        .expect("select requests")
        .into_iter()
        .map(|r| Row {
            job_class: r.job_class,
            queue: r.queue,
            concurrency_key: r.concurrency_key,
            start_at: r.start_at,
            parameters: r.parameters,
            source: r.source,
        })
        .collect();
    rows.sort_by_key(|r| r.start_at);
    rows
}

/// Waits for the request with `key` and returns it.
async fn wait_request(db: &TestDb, key: &str) -> Row {
    let found = wait_until(T, || async {
        db.count(&format!(
            "SELECT count(*) FROM plainjobs_jobrequest WHERE concurrency_key = '{key}'"
        ))
        .await
            > 0
    })
    .await;
    let rows = request_rows(db).await;
    assert!(
        found,
        "no request with concurrency key {key:?}; requests: {rows:#?}"
    );
    rows.into_iter()
        .find(|r| r.concurrency_key == key)
        .expect("the request")
}

async fn wait_results(db: &TestDb, n: usize) -> Vec<JobResult> {
    let ok = wait_until(T, || async { db.results().await.len() >= n }).await;
    let results = db.results().await;
    assert!(ok, "expected {n} results, got {results:#?}");
    results
}

/// Makes every pending request ready now.
async fn make_due(db: &TestDb) {
    db.exec(&format!(
        "UPDATE plainjobs_jobrequest SET start_at = {}",
        db.now_sql()
    ))
    .await;
}

fn probe_worker(db: &TestDb, rec: &Arc<Recorder>) -> Worker {
    Worker::new(db.jobs.clone())
        .register::<Probe>()
        .state(rec.clone())
        .config(fast_config())
}

/// A directory of its own for a test's marker files, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "plainjobs-schedule-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A path quoted for `sh -c`.
fn sh_path(p: &std::path::Path) -> String {
    format!("'{}'", p.display())
}

/// A job whose default queue is not "default".
#[derive(Debug, Serialize, Deserialize)]
struct OtherQueueJob;

impl Job for OtherQueueJob {
    const NAME: &'static str = "tests.OtherQueueJob";

    async fn run(&self, _ctx: &JobContext) -> Result<Outcome, JobError> {
        Ok(Outcome::Success)
    }

    fn default_queue(&self) -> String {
        "other".to_string()
    }
}

async fn three_workers_enqueue_each_occurrence_exactly_once(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let base = utc("2099-01-01T00:00:30Z");
    let clock = TestClock::new(base);
    let workers: Vec<_> = (0..3)
        .map(|i| {
            probe_worker(&db, &rec)
                .schedule("* * * * *", Probe::new("tick", Action::Succeed).key("tick"))
                .expect("valid schedule")
                .schedule_clock(clock.for_worker(i))
                .spawn()
        })
        .collect();

    let steps = 5;
    let occurrences: Vec<_> = (0..steps)
        .map(|i| utc("2099-01-01T00:01:00Z") + TimeDelta::minutes(i))
        .collect();
    for (i, occurrence) in occurrences.iter().enumerate() {
        clock.set(base + TimeDelta::minutes(i as i64));
        wait_request(&db, &scheduled_key("tick", *occurrence)).await;
        // Every worker has tried this occurrence before the clock moves on.
        clock.wait_passes(&[0, 1, 2]).await;
    }
    for w in workers {
        w.stop().await.expect("worker stops cleanly");
    }

    let rows = request_rows(&db).await;
    assert_eq!(
        rows.len(),
        occurrences.len(),
        "one request per occurrence, no duplicates: {rows:#?}"
    );
    for occurrence in &occurrences {
        let key = scheduled_key("tick", *occurrence);
        let matching: Vec<_> = rows.iter().filter(|r| r.concurrency_key == key).collect();
        assert_eq!(
            matching.len(),
            1,
            "exactly one request for {occurrence}: {rows:#?}"
        );
        let r = matching[0];
        assert_eq!(r.start_at, Some(*occurrence));
        assert_eq!(r.job_class, "tests.Probe");
        assert_eq!(r.queue, "default");
        assert_eq!(r.parameters.as_ref().unwrap()["kwargs"]["id"], "tick");
        assert_eq!(r.source, "schedule * * * * *");
    }
    let duplicates = db
        .count("SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT job_class, concurrency_key FROM plainjobs_jobrequest) d) FROM plainjobs_jobrequest")
        .await;
    assert_eq!(duplicates, 0);
    assert!(rec.runs().is_empty(), "nothing was due yet");
    assert_eq!(db.results().await.len(), 0);
}

async fn a_scheduled_job_runs_when_due_and_its_occurrence_is_not_enqueued_again(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let clock = TestClock::new(utc("2099-01-01T00:00:30Z"));
    let occurrence = utc("2099-01-01T00:01:00Z");
    let w = probe_worker(&db, &rec)
        .schedule_with(
            Schedule::parse("* * * * *").unwrap(),
            Probe::new("due", Action::Succeed).key("due"),
        )
        .schedule_clock(clock.for_worker(0))
        .spawn();

    let key = scheduled_key("due", occurrence);
    let row = wait_request(&db, &key).await;
    assert_eq!(row.start_at, Some(occurrence));
    clock.wait_passes(&[0]).await;
    assert!(rec.runs().is_empty(), "not due before its start_at");

    make_due(&db).await;
    let results = wait_results(&db, 1).await;
    let r = &results[0];
    assert_eq!(r.status, JobStatus::Successful, "{r:#?}");
    assert_eq!(r.concurrency_key, key);
    assert_eq!(r.job_class, "tests.Probe");
    assert_eq!(rec.run_ids(), vec!["due"]);

    // The occurrence that ran is not enqueued again while the clock stands still.
    clock.wait_passes(&[0]).await;
    assert_eq!(db.requests().await, 0, "{:#?}", request_rows(&db).await);
    assert_eq!(db.results().await.len(), 1);

    // The schedule carries on with the next occurrence.
    clock.set(utc("2099-01-01T00:01:30Z"));
    let next = wait_request(&db, &scheduled_key("due", utc("2099-01-01T00:02:00Z"))).await;
    assert_eq!(next.start_at, Some(utc("2099-01-01T00:02:00Z")));
    w.stop().await.unwrap();
    assert_eq!(db.requests().await, 1);
}

async fn only_workers_serving_the_jobs_default_queue_schedule_it(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let clock = TestClock::new(utc("2099-01-01T00:00:30Z"));
    let occurrence = utc("2099-01-01T00:01:00Z");
    let other = probe_worker(&db, &rec)
        .register::<OtherQueueJob>()
        .queues(["other"])
        .schedule("* * * * *", Probe::new("default-queue", Action::Succeed))
        .unwrap()
        .schedule("* * * * *", OtherQueueJob)
        .unwrap()
        .schedule_clock(clock.for_worker(0))
        .spawn();

    // The job of the queue it serves is scheduled; the "default" one is not.
    let row = wait_request(&db, &scheduled_key("", occurrence)).await;
    assert_eq!(
        (row.job_class.as_str(), row.queue.as_str()),
        ("tests.OtherQueueJob", "other")
    );
    clock.wait_passes(&[0]).await;
    clock.wait_passes(&[0]).await;
    let rows = request_rows(&db).await;
    assert_eq!(rows.len(), 1, "nothing for the default queue: {rows:#?}");
    assert_eq!(
        db.count("SELECT count(*) FROM plainjobs_jobrequest WHERE job_class = 'tests.Probe'")
            .await,
        0
    );
    other.stop().await.unwrap();

    // A worker that serves "default" schedules the same job.
    let default = probe_worker(&db, &rec)
        .schedule("* * * * *", Probe::new("default-queue", Action::Succeed))
        .unwrap()
        .schedule_clock(clock.for_worker(1))
        .spawn();
    clock.wait_passes(&[1]).await;
    default.stop().await.unwrap();
    let rows = request_rows(&db).await;
    let probes: Vec<_> = rows
        .iter()
        .filter(|r| r.job_class == "tests.Probe")
        .collect();
    assert_eq!(probes.len(), 1, "{rows:#?}");
    assert_eq!(
        (probes[0].queue.as_str(), probes[0].start_at),
        ("default", Some(occurrence))
    );
}

async fn invalid_schedules_are_refused_at_load(backend: Backend) {
    let db = test_db_for(backend).await;
    let load = |cron: &str| {
        Worker::new(db.jobs.clone())
            .schedule(cron, Probe::new("x", Action::Succeed))
            .err()
            .expect(cron)
    };

    let err = load("70 * * * *");
    let text = err.to_string();
    assert!(text.contains("minute") && text.contains("70"), "{text}");
    match &err {
        Error::Schedule { expression, source } => {
            assert_eq!(expression, "70 * * * *");
            assert_eq!(
                *source,
                CronError::OutOfRange {
                    field: Field::Minute,
                    value: "70".into(),
                    min: 0,
                    max: 59
                }
            );
        }
        other => panic!("expected Error::Schedule, got {other:?}"),
    }

    let text = load("0 25 * * *").to_string();
    assert!(text.contains("hour") && text.contains("25"), "{text}");
    let text = load("0 0 * 13 *").to_string();
    assert!(text.contains("month") && text.contains("13"), "{text}");
    let text = load("0 0 * * funday").to_string();
    assert!(
        text.contains("day-of-week") && text.contains("funday"),
        "{text}"
    );

    // 31 February never comes: refused now, not at 3 a.m.
    let err = load("0 0 31 2 *");
    assert!(
        matches!(&err, Error::Schedule { source: CronError::NeverFires { day_of_month, month }, .. }
            if day_of_month == "31" && month == "2"),
        "{err:?}"
    );
    assert!(err.to_string().contains("never fire"), "{err}");

    for (cron, count) in [("* * * *", 4), ("* * * * * *", 6), ("", 0)] {
        let err = load(cron);
        assert!(
            matches!(&err, Error::Schedule { source: CronError::FieldCount { count: c, .. }, .. } if *c == count),
            "{cron:?}: {err:?}"
        );
        assert!(err.to_string().contains("expected 5 fields"), "{err}");
    }

    // By name: the cron is checked as well, and the job must be known.
    let err = Worker::new(db.jobs.clone())
        .schedule_by_name("app.Unknown", "* * * * *")
        .err()
        .expect("unknown");
    assert!(
        matches!(&err, Error::UnknownJob(name) if name == "app.Unknown"),
        "{err:?}"
    );
    let err = Worker::new(db.jobs.clone())
        .schedule_by_name("cmd:true", "* 24 * * *")
        .err()
        .expect("bad cron");
    assert!(
        err.to_string().contains("hour") && err.to_string().contains("24"),
        "{err}"
    );
    assert!(Worker::new(db.jobs.clone())
        .register::<OtherQueueJob>()
        .schedule_by_name("tests.OtherQueueJob", "@hourly")
        .is_ok());
}

async fn a_cmd_schedule_enqueues_a_plain_scheduled_command_that_the_worker_runs(backend: Backend) {
    let db = test_db_for(backend).await;
    let clock = TestClock::new(utc("2099-01-01T00:00:30Z"));
    let occurrence = utc("2099-01-01T00:01:00Z");
    let w = Worker::new(db.jobs.clone())
        .config(fast_config())
        .schedule_by_name("cmd:echo hi", "* * * * *")
        .unwrap()
        .schedule_clock(clock.for_worker(0))
        .spawn();

    let key = format!("echo hi:scheduled:{}", occurrence.timestamp());
    let row = wait_request(&db, &key).await;
    assert_eq!(row.job_class, COMMAND_CLASS);
    assert_eq!(
        row.parameters,
        Some(json!({"args": ["echo hi"], "kwargs": {}}))
    );
    assert_eq!(row.start_at, Some(occurrence));
    assert_eq!(row.queue, "default");

    // schedule_by_name("cmd:…") registered the command job on this worker: it runs here.
    make_due(&db).await;
    let results = wait_results(&db, 1).await;
    w.stop().await.unwrap();
    assert_eq!(
        results[0].status,
        JobStatus::Successful,
        "{:#?}",
        results[0]
    );
    assert_eq!(results[0].job_class, COMMAND_CLASS);
    assert_eq!(results[0].concurrency_key, key);
}

async fn schedules_given_as_text_use_the_workers_time_zone(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let clock = TestClock::new(utc("2099-01-01T00:00:00Z"));
    let w = probe_worker(&db, &rec)
        .timezone(chrono_tz::America::New_York)
        .schedule(
            "0 9 * * *",
            Probe::new("new-york", Action::Succeed).key("ny"),
        )
        .unwrap()
        // A prepared schedule keeps its own zone: UTC by default…
        .schedule_with(
            Schedule::parse("0 9 * * *").unwrap(),
            Probe::new("utc", Action::Succeed).key("utc"),
        )
        // …or the one it was given.
        .schedule_with(
            Schedule::parse("0 9 * * *")
                .unwrap()
                .with_timezone(chrono_tz::Europe::Berlin),
            Probe::new("berlin", Action::Succeed).key("berlin"),
        )
        .schedule_clock(clock.for_worker(0))
        .spawn();

    // 09:00 EST (UTC-5) on 1 January 2099.
    let ny = wait_request(&db, &scheduled_key("ny", utc("2099-01-01T14:00:00Z"))).await;
    assert_eq!(ny.start_at, Some(utc("2099-01-01T14:00:00Z")));
    let utc_row = wait_request(&db, &scheduled_key("utc", utc("2099-01-01T09:00:00Z"))).await;
    assert_eq!(utc_row.start_at, Some(utc("2099-01-01T09:00:00Z")));
    // 09:00 CET (UTC+1).
    let berlin = wait_request(&db, &scheduled_key("berlin", utc("2099-01-01T08:00:00Z"))).await;
    assert_eq!(berlin.start_at, Some(utc("2099-01-01T08:00:00Z")));
    clock.wait_passes(&[0]).await;
    w.stop().await.unwrap();
    assert_eq!(db.requests().await, 3, "{:#?}", request_rows(&db).await);
}

fn command_worker(db: &TestDb) -> Worker {
    Worker::new(db.jobs.clone())
        .register::<ScheduledCommand>()
        .config(fast_config())
}

fn by_key<'a>(results: &'a [JobResult], key: &str) -> &'a JobResult {
    results
        .iter()
        .find(|r| r.concurrency_key == key)
        .unwrap_or_else(|| panic!("no result for {key:?}: {results:#?}"))
}

async fn shell_command_success_and_failure(backend: Backend) {
    let db = test_db_for(backend).await;
    db.jobs
        .enqueue(ScheduledCommand("echo ok".into()))
        .await
        .unwrap()
        .expect("enqueued");
    db.jobs
        .enqueue(ScheduledCommand("true".into()))
        .await
        .unwrap()
        .expect("enqueued");
    db.jobs
        .enqueue(ScheduledCommand("echo boom >&2; exit 3".into()))
        .await
        .unwrap()
        .expect("enqueued");
    let w = command_worker(&db).spawn();
    let results = wait_results(&db, 3).await;
    w.stop().await.unwrap();

    for ok in ["echo ok", "true"] {
        let r = by_key(&results, ok);
        assert_eq!(r.status, JobStatus::Successful, "{r:#?}");
        assert_eq!(r.error, "");
        assert_eq!(r.job_class, COMMAND_CLASS);
        assert_eq!(r.parameters, Some(json!({"args": [ok], "kwargs": {}})));
    }
    let failed = by_key(&results, "echo boom >&2; exit 3");
    assert_eq!(failed.status, JobStatus::Errored, "{failed:#?}");
    assert!(failed.error.contains("exit status 3"), "{}", failed.error);
    assert!(failed.error.contains("boom"), "{}", failed.error);
    assert_eq!(failed.retry_job_request_uuid, None, "no retries by default");
    assert_eq!(db.requests().await, 0);
}

/// A failed command is retried after a backoff (10 s for the first retry), then succeeds.
async fn shell_command_is_retried_after_failure(backend: Backend) {
    let db = test_db_for(backend).await;
    let dir = TempDir::new();
    let mark = sh_path(&dir.file("MARK"));
    let cmd = format!("test -f {mark} || {{ touch {mark}; exit 1; }}");
    db.jobs
        .enqueue(ScheduledCommand(cmd.clone()))
        .retries(1)
        .await
        .unwrap()
        .expect("enqueued");
    let w = command_worker(&db).spawn();
    let failed = wait_results(&db, 1).await;
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let retry = db.jobs.requests(10).await.unwrap();
    assert_eq!(retry.len(), 1, "the retry waits");
    let wait = retry[0].start_at.expect("a delayed retry") - failed[0].created_at;
    assert!(
        (9_000..=11_000).contains(&wait.num_milliseconds()),
        "the first retry waits 10 s: {wait}"
    );
    make_due(&db).await;
    let results = wait_results(&db, 2).await;
    w.stop().await.unwrap();

    assert_eq!(results.len(), 2, "{results:#?}");
    let (first, second) = (&results[0], &results[1]);
    assert_eq!(first.status, JobStatus::Errored, "{first:#?}");
    assert!(first.error.contains("exit status 1"), "{}", first.error);
    assert_eq!(first.retry_attempt, 0);
    assert_eq!(first.retry_job_request_uuid, Some(second.job_request_uuid));
    assert_eq!(second.status, JobStatus::Successful, "{second:#?}");
    assert_eq!(second.retry_attempt, 1);
    assert_eq!(
        second.parameters,
        Some(json!({"args": [cmd], "kwargs": {}}))
    );
    assert!(dir.file("MARK").exists());
    assert_eq!(db.requests().await, 0);
}

async fn a_worker_that_did_not_register_the_command_job_does_not_run_it(backend: Backend) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    let dir = TempDir::new();
    let file = dir.file("ran");
    db.jobs
        .enqueue(ScheduledCommand(format!("touch {}", sh_path(&file))))
        .await
        .unwrap()
        .expect("enqueued");
    let w = probe_worker(&db, &rec).spawn();
    let results = wait_results(&db, 1).await;
    w.stop().await.unwrap();

    let r = &results[0];
    assert_eq!(r.status, JobStatus::Errored, "{r:#?}");
    assert!(r.error.contains("unknown job name"), "{}", r.error);
    assert!(r.error.contains(COMMAND_CLASS), "{}", r.error);
    assert!(!file.exists(), "the command must not have run");
}

async fn a_cmd_row_written_by_plain_runs_on_a_worker_that_registered_the_command_job(
    backend: Backend,
) {
    let db = test_db_for(backend).await;
    let dir = TempDir::new();
    let file = dir.file("from-plain");
    let cmd = format!("echo from plain > {}", sh_path(&file));
    // What plain.jobs' worker writes for a `cmd:` entry of JOBS_SCHEDULE.
    db.insert_raw_request(
        COMMAND_CLASS,
        &json!({"args": [cmd], "kwargs": {}}).to_string(),
        &format!("{cmd}:scheduled:1700000000"),
        Some(db.now_sql()),
    )
    .await;
    let w = command_worker(&db).spawn();
    let results = wait_results(&db, 1).await;
    w.stop().await.unwrap();

    assert_eq!(
        results[0].status,
        JobStatus::Successful,
        "{:#?}",
        results[0]
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "from plain\n");
}

// ---- Regressions: bugs these tests found, now fixed. ----

async fn an_occurrence_that_already_ran_is_not_enqueued_again_by_a_lagging_worker(
    backend: Backend,
) {
    let db = test_db_for(backend).await;
    let rec = Recorder::new();
    // Both workers' clocks read 30 s before a minute that is long past on the database's clock:
    // a worker whose clock is a little behind the database's, just before a minute boundary.
    let clock = TestClock::new(utc("2000-01-01T00:00:30Z"));
    let schedule = || Probe::new("once", Action::Succeed).key("once");

    let a = probe_worker(&db, &rec)
        .schedule("* * * * *", schedule())
        .unwrap()
        .schedule_clock(clock.for_worker(0))
        .spawn();
    // Due at once (by the database's clock): it runs.
    let results = wait_results(&db, 1).await;
    assert_eq!(results[0].status, JobStatus::Successful);
    clock.wait_passes(&[0]).await;

    let b = probe_worker(&db, &rec)
        .schedule("* * * * *", schedule())
        .unwrap()
        .schedule_clock(clock.for_worker(1))
        .spawn();
    clock.wait_passes(&[1]).await;
    // Let anything B enqueued finish.
    assert!(
        wait_until(T, || async {
            db.requests().await == 0 && db.processes().await == 0
        })
        .await
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();

    let results = db.results().await;
    assert_eq!(
        results.len(),
        1,
        "the occurrence {} ran {} times: {:?}",
        scheduled_key("once", utc("2000-01-01T00:01:00Z")),
        results.len(),
        rec.runs()
    );
}

async fn a_cmd_schedule_still_runs_after_a_registry_is_given(backend: Backend) {
    let db = test_db_for(backend).await;
    let dir = TempDir::new();
    let file = dir.file("ran");
    let clock = TestClock::new(utc("2099-01-01T00:00:30Z"));
    let mut registry = Registry::new();
    registry.register::<Probe>();
    let w = Worker::new(db.jobs.clone())
        .config(fast_config())
        .schedule_by_name(&format!("cmd:touch {}", sh_path(&file)), "* * * * *")
        .unwrap()
        .registry(registry)
        .schedule_clock(clock.for_worker(0))
        .spawn();
    assert!(
        wait_until(T, || async { db.requests().await == 1 }).await,
        "the cmd schedule enqueued its occurrence"
    );
    make_due(&db).await;
    let results = wait_results(&db, 1).await;
    w.stop().await.unwrap();
    assert_eq!(
        results[0].status,
        JobStatus::Successful,
        "{:#?}",
        results[0]
    );
    assert!(file.exists());
}

conformance!(
    three_workers_enqueue_each_occurrence_exactly_once,
    a_scheduled_job_runs_when_due_and_its_occurrence_is_not_enqueued_again,
    only_workers_serving_the_jobs_default_queue_schedule_it,
    invalid_schedules_are_refused_at_load,
    a_cmd_schedule_enqueues_a_plain_scheduled_command_that_the_worker_runs,
    schedules_given_as_text_use_the_workers_time_zone,
    shell_command_success_and_failure,
    shell_command_is_retried_after_failure,
    a_worker_that_did_not_register_the_command_job_does_not_run_it,
    a_cmd_row_written_by_plain_runs_on_a_worker_that_registered_the_command_job,
    an_occurrence_that_already_ran_is_not_enqueued_again_by_a_lagging_worker,
    a_cmd_schedule_still_runs_after_a_registry_is_given,
);
