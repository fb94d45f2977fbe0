//! Shared test support: a fresh schema per test, a probe job type, fast worker timings.
#![allow(dead_code)]

mod pooler;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plainjobs::{
    Job, JobContext, JobError, JobResult, JobStatus, Jobs, Outcome, State, WorkerConfig,
};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// The server to test against (scripts/test sets TEST_DATABASE_URL to a fresh database).
pub fn base_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// `url` with a search_path and application_name set through connection options.
pub fn url_for_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}&application_name={schema}")
}

/// The backends the behaviour suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Raw SQL access to the test's database (for setting up what only raw SQL can make).
pub enum Raw {
    Pg(PgPool),
    Sqlite(sqlx::SqlitePool),
}

pub struct TestDb {
    pub backend: Backend,
    /// The schema (PostgreSQL) or file stem (SQLite): unique per test.
    pub schema: String,
    pub url: String,
    pub jobs: Jobs,
    pub raw: Raw,
}

/// Generates one test per backend for each named `async fn(Backend)`: `postgres::name` and
/// `sqlite::name`.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $( #[tokio::test] async fn $name() {
                $crate::common::within_limit(super::$name($crate::common::Backend::Postgres)).await
            } )*
        }
        mod sqlite {
            $( #[tokio::test] async fn $name() {
                $crate::common::within_limit(super::$name($crate::common::Backend::Sqlite)).await
            } )*
        }
    };
}

/// Fails a test that hangs instead of letting it hold up the whole run.
pub async fn within_limit(test: impl Future<Output = ()>) {
    if tokio::time::timeout(Duration::from_secs(180), test)
        .await
        .is_err()
    {
        panic!("the test did not finish within 180 s (a hang)");
    }
}

/// A fresh database for `backend`.
pub async fn test_db_for(backend: Backend) -> TestDb {
    match backend {
        Backend::Postgres => test_db().await,
        Backend::Sqlite => sqlite_test_db().await,
    }
}

/// A new SQLite file with the plainjobs tables, and a `Jobs` on it.
pub async fn sqlite_test_db() -> TestDb {
    init_logs();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sqlite-tests");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join(format!("{name}.sqlite3")).display());
    let jobs = Jobs::connect(&url).await.expect("open sqlite");
    jobs.migrate().await.expect("migrate");
    let raw = Raw::Sqlite(jobs.sqlite_pool().expect("sqlite pool").clone());
    TestDb {
        backend: Backend::Sqlite,
        schema: name,
        url,
        jobs,
        raw,
    }
}

fn init_logs() {
    // Logs with RUST_LOG=plainjobs=debug (shown for failing tests).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A new PostgreSQL schema with the plainjobs tables, and a `Jobs` on it.
pub async fn test_db() -> TestDb {
    if let Some(pooler) = pooler::pooler_url() {
        return pooler::pooled_test_db(&pooler).await;
    }
    init_logs();
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = PgPool::connect(&base_url())
        .await
        .expect("test database reachable (run scripts/test)");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("create schema");
    admin.close().await;
    let url = url_for_schema(&base_url(), &schema);
    let jobs = Jobs::connect(&url).await.expect("connect");
    jobs.migrate().await.expect("migrate");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .expect("pool");
    TestDb {
        backend: Backend::Postgres,
        schema,
        url,
        jobs,
        raw: Raw::Pg(pool),
    }
}

impl TestDb {
    /// Runs a portable `SELECT count(*) …` (or any one-integer query).
    pub async fn count(&self, sql: &str) -> i64 {
        self.try_count(sql).await.expect(sql)
    }

    pub async fn try_count(&self, sql: &str) -> Result<i64, sqlx::Error> {
        match &self.raw {
            Raw::Pg(p) => sqlx::query_scalar(sql).fetch_one(p).await,
            Raw::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        }
    }

    /// Runs a portable statement.
    pub async fn exec(&self, sql: &str) {
        match &self.raw {
            Raw::Pg(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
            Raw::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        }
        .expect(sql);
    }

    /// The SQL for "now" in this backend's time representation.
    pub fn now_sql(&self) -> String {
        match self.backend {
            Backend::Postgres => "now()".into(),
            Backend::Sqlite => chrono::Utc::now().timestamp_micros().to_string(),
        }
    }

    /// The SQL for "`secs` seconds ago".
    pub fn ago_sql(&self, secs: i64) -> String {
        match self.backend {
            Backend::Postgres => format!("(now() - interval '{secs} seconds')"),
            Backend::Sqlite => {
                (chrono::Utc::now().timestamp_micros() - secs * 1_000_000).to_string()
            }
        }
    }

    /// A new uuid as an SQL literal.
    pub fn uuid_sql(&self) -> String {
        format!("'{}'", uuid::Uuid::new_v4())
    }

    /// Inserts a request exactly as plain.jobs writes one (raw SQL, no trigger bypassed).
    pub async fn insert_raw_request(
        &self,
        job_class: &str,
        parameters: &str,
        key: &str,
        start_at: Option<String>,
    ) {
        let (parameters, key) = (parameters.replace('\'', "''"), key.replace('\'', "''"));
        let sql = format!(
            "INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at)
             VALUES ({}, {}, '{job_class}', '{parameters}', 0, '/srv/app/app/views.py:87', 'default', 0, 0, '{key}', {})",
            self.now_sql(),
            self.uuid_sql(),
            start_at.unwrap_or_else(|| "NULL".into())
        );
        self.exec(&sql).await;
    }

    pub async fn results(&self) -> Vec<JobResult> {
        let mut r = self
            .jobs
            .results(None, None, None, 100_000)
            .await
            .expect("results");
        r.sort_by_key(|r| r.id);
        r
    }

    pub async fn requests(&self) -> i64 {
        self.count("SELECT count(*) FROM plainjobs_jobrequest")
            .await
    }

    pub async fn processes(&self) -> i64 {
        self.count("SELECT count(*) FROM plainjobs_jobprocess")
            .await
    }
}

/// Timings short enough for tests: heartbeat 200 ms, dead after 2 s.
pub fn fast_config() -> WorkerConfig {
    let mut c = WorkerConfig::default();
    c.heartbeat_interval = Duration::from_millis(200);
    c.heartbeat_timeout = Duration::from_secs(2);
    c.rescue_interval = Duration::from_millis(200);
    c.poll_interval = Duration::from_millis(200);
    c.retry_interval = Duration::from_millis(300);
    c.listen = !pooler::transaction_pooling();
    c
}

/// Polls `check` until it is true or `timeout` passes; returns whether it became true.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What a probe does when run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Action {
    Succeed,
    Fail,
    Panic,
    /// Fails until this retry attempt, then succeeds.
    FailUntilAttempt(i16),
    Defer {
        secs: u64,
        increment_retries: bool,
    },
    Sleep {
        ms: u64,
    },
    /// Sleeps for a long time on its first attempt, succeeds on later ones.
    HangFirstAttempt,
    /// Waits until the recorder's gate opens.
    Block,
    /// Fails with a message containing a NUL character (which PostgreSQL's text refuses).
    FailWithNul,
}

/// A test job that records what happened to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probe {
    pub id: String,
    pub action: Action,
    #[serde(default)]
    pub retries: i16,
    #[serde(default)]
    pub key: String,
}

impl Probe {
    pub fn new(id: impl Into<String>, action: Action) -> Probe {
        Probe {
            id: id.into(),
            action,
            retries: 0,
            key: String::new(),
        }
    }
    pub fn retries(mut self, n: i16) -> Probe {
        self.retries = n;
        self
    }
    pub fn key(mut self, k: &str) -> Probe {
        self.key = k.into();
        self
    }
}

pub struct Recorder {
    /// (probe id, retry attempt) for each run that began.
    pub runs: Mutex<Vec<(String, i16)>>,
    /// (probe id, status) for each on_aborted call.
    pub aborted: Mutex<Vec<(String, JobStatus)>>,
    pub gate: tokio::sync::Semaphore,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            runs: Mutex::default(),
            aborted: Mutex::default(),
            gate: tokio::sync::Semaphore::new(0),
        })
    }
    pub fn runs(&self) -> Vec<(String, i16)> {
        self.runs.lock().unwrap().clone()
    }
    pub fn run_ids(&self) -> Vec<String> {
        self.runs().into_iter().map(|r| r.0).collect()
    }
    pub fn aborted(&self) -> Vec<(String, JobStatus)> {
        self.aborted.lock().unwrap().clone()
    }
    pub fn open_gate(&self) {
        self.gate.add_permits(1_000);
    }
}

#[derive(Debug)]
struct ProbeFailed(String);
impl std::fmt::Display for ProbeFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "probe {} failed on purpose", self.0)
    }
}
impl std::error::Error for ProbeFailed {}

#[derive(Debug)]
struct Outer(ProbeFailed);
impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("while probing")
    }
}
impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl Job for Probe {
    const NAME: &'static str = "tests.Probe";
    const DESCRIPTION: &'static str = "A test job that records its runs";

    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let attempt = ctx.process().retry_attempt;
        if let Ok(rec) = ctx.state::<Arc<Recorder>>() {
            rec.runs.lock().unwrap().push((self.id.clone(), attempt));
        }
        match &self.action {
            Action::Succeed => Ok(Outcome::Success),
            Action::Fail => Err(Outer(ProbeFailed(self.id.clone())).into()),
            Action::Panic => panic!("probe {} panicked on purpose", self.id),
            Action::FailUntilAttempt(n) if attempt < *n => Err(ProbeFailed(self.id.clone()).into()),
            Action::FailUntilAttempt(_) => Ok(Outcome::Success),
            Action::Defer {
                secs,
                increment_retries,
            } => Ok(Outcome::Defer {
                delay: Duration::from_secs(*secs),
                increment_retries: *increment_retries,
            }),
            Action::Sleep { ms } => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                Ok(Outcome::Success)
            }
            Action::HangFirstAttempt if attempt == 0 => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(Outcome::Success)
            }
            Action::HangFirstAttempt => Ok(Outcome::Success),
            Action::FailWithNul => Err(JobError::msg(format!("bad\0byte from {}", self.id))),
            Action::Block => {
                let rec = ctx.state::<Arc<Recorder>>()?;
                let permit = rec.gate.acquire().await?;
                permit.forget();
                Ok(Outcome::Success)
            }
        }
    }

    fn default_retries(&self) -> i16 {
        self.retries
    }

    fn default_concurrency_key(&self) -> String {
        self.key.clone()
    }

    async fn on_aborted(&self, result: &JobResult, state: &State) -> Result<(), JobError> {
        let rec = state.get::<Arc<Recorder>>()?;
        rec.aborted
            .lock()
            .unwrap()
            .push((self.id.clone(), result.status));
        Ok(())
    }
}
