//! What the interop suites share (tests/interop.rs, tests/interop_trace.rs): the real
//! plain.jobs driven through `interop/run.py` with the venv's Python, the Rust job type that
//! shares a Python name, and a per-test database a Plain deploy has run on.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use plainjobs::testing::{test_db, Raw, TestDb};
use plainjobs::{Job, JobContext, JobError, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;

// ---------------------------------------------------------------------------------------------
// The Python side.

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The interop venv's Python: `TEST_PLAIN_PYTHON` (scripts/test sets it), else what
/// `interop/setup.sh` makes. Panics, naming the problem, when there is none.
pub fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Ok(py) = std::env::var("TEST_PLAIN_PYTHON") {
            return py;
        }
        let out = std::process::Command::new("bash")
            .arg(repo().join("interop/setup.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run interop/setup.sh");
        assert!(
            out.status.success(),
            "interop/setup.sh found no Python for plain.jobs (see its message above): the interop suite cannot run"
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

/// The test's database as plain sees it: the same schema, through `DATABASE_URL`.
#[derive(Clone)]
pub struct Plain {
    url: String,
    env: Vec<(String, String)>,
}

impl Plain {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            env: Vec::new(),
        }
    }

    /// The same, with one more variable in every command's environment.
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(python());
        cmd.arg(repo().join("interop/run.py"))
            .args(args)
            .env("DATABASE_URL", &self.url)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs a command and returns its JSON (the last stdout line); panics when it failed.
    pub async fn run(&self, args: &[&str]) -> Value {
        let out = self
            .command(args)
            .output()
            .await
            .expect("run interop/run.py");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or("");
        let value: Value = serde_json::from_str(last).unwrap_or(Value::Null);
        assert!(
            out.status.success() && value["ok"] == true,
            "run.py {args:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        value
    }

    /// A Plain deploy: `plain postgres sync`.
    pub async fn deploy(&self) -> Value {
        self.run(&["sync"]).await
    }

    /// `plain postgres sync --check`, asserting it is clean.
    pub async fn assert_in_sync(&self) {
        let check = self.run(&["sync-check"]).await;
        assert_eq!(
            check["clean"], true,
            "plain postgres sync --check: {check:#}"
        );
    }

    pub async fn enqueue(&self, class: &str, params: Value, extra: &[&str]) -> Value {
        let params = params.to_string();
        let mut args = vec!["enqueue", class, "--params", &params];
        args.extend_from_slice(extra);
        self.run(&args).await
    }

    /// A plain.jobs worker until its queues are idle (at most `seconds`).
    pub async fn work_until_idle(&self, extra: &[&str]) -> Value {
        let mut args = vec!["worker", "--until-idle", "--seconds", "30"];
        args.extend_from_slice(extra);
        self.run(&args).await
    }

    pub async fn runs(&self, label: &str) -> Vec<Value> {
        let v = self.run(&["runs", "--label", label]).await;
        v["runs"].as_array().cloned().unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Rust job types under plain.jobs' Python names (interop/app/jobs.py).

/// Records each run in `interop_runs`, as the Python jobs do.
pub async fn record_run(
    ctx: &JobContext,
    class: &str,
    label: &str,
    outcome: &str,
    seen: Option<Value>,
) -> Result<(), JobError> {
    let pool = ctx
        .jobs()
        .pg_pool()
        .ok_or_else(|| JobError::msg("PostgreSQL only"))?;
    sqlx::query(RUNS_TABLE).execute(pool).await?;
    let p = ctx.process();
    sqlx::query(
        "INSERT INTO interop_runs (side, job_class, label, job_request_uuid, job_process_uuid, retry_attempt, outcome, seen, pid)
         VALUES ('rust', $1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(class)
    .bind(label)
    .bind(p.job_request_uuid)
    .bind(p.uuid)
    .bind(i32::from(p.retry_attempt))
    .bind(outcome)
    .bind(seen)
    .bind(std::process::id() as i32)
    .execute(pool)
    .await?;
    Ok(())
}

pub const RUNS_TABLE: &str = "CREATE TABLE IF NOT EXISTS interop_runs (
    id bigserial PRIMARY KEY, side text NOT NULL, job_class text NOT NULL, label text NOT NULL,
    job_request_uuid uuid, job_process_uuid uuid, retry_attempt integer, outcome text NOT NULL,
    seen jsonb, pid integer NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())";

#[derive(Serialize, Deserialize)]
pub struct RecordJob {
    pub label: String,
    #[serde(default)]
    pub fail_times: i16,
    #[serde(default)]
    pub sleep: f64,
}

impl Job for RecordJob {
    const NAME: &'static str = "app.jobs.RecordJob";
    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let failing = ctx.process().retry_attempt < self.fail_times;
        let outcome = if failing { "fail" } else { "ok" };
        record_run(ctx, Self::NAME, &self.label, outcome, None).await?;
        tokio::time::sleep(Duration::from_secs_f64(self.sleep)).await;
        if failing {
            return Err(JobError::msg(format!("{}: failing on purpose", self.label)));
        }
        Ok(Outcome::Success)
    }
}

// ---------------------------------------------------------------------------------------------
// Set-up.

pub fn plain_for(db: &TestDb) -> Plain {
    Plain::new(db.url.clone())
}

pub fn pool(db: &TestDb) -> &PgPool {
    match &db.raw {
        Raw::Pg(p) => p,
        Raw::Sqlite(_) => panic!("the interop suite runs on PostgreSQL"),
    }
}

/// A database where plainjobs made the tables and a Plain deploy ran after it.
pub async fn shared_db() -> (TestDb, Plain) {
    let db = test_db().await;
    let plain = plain_for(&db);
    plain.deploy().await;
    sqlx::query(RUNS_TABLE)
        .execute(pool(&db))
        .await
        .expect("runs table");
    (db, plain)
}
