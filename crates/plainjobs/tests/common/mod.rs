//! Scenario helpers for the behaviour suite: a probe job type and its recorder, fast worker
//! timings, waiting for a condition. Databases come from `plainjobs::testing`.
#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plainjobs::{Job, JobContext, JobError, JobResult, JobStatus, Outcome, State, WorkerConfig};
use serde::{Deserialize, Serialize};

// The databases, a schema or file per test, come from the crate's one test-support module
// (each test file uses some of them).
#[allow(unused_imports)]
pub use plainjobs::testing::{
    conformance, server_url as base_url, sqlite_test_db, test_db, test_db_for, url_for_schema,
    Backend, Raw, TestDb,
};

/// Timings short enough for tests: heartbeat 200 ms, dead after 2 s.
pub fn fast_config() -> WorkerConfig {
    let mut c = WorkerConfig::default();
    c.heartbeat_interval = Duration::from_millis(200);
    c.heartbeat_timeout = Duration::from_secs(2);
    c.rescue_interval = Duration::from_millis(200);
    c.poll_interval = Duration::from_millis(200);
    c.retry_interval = Duration::from_millis(300);
    // Behind a transaction-mode pooler (a pass of scripts/test) LISTEN stays on as configured:
    // the URL's pooler=transaction makes the workers poll.
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
