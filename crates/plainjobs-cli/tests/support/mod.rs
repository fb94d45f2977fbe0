//! What the CLI tests share: a PostgreSQL schema (or SQLite file) per test, the binary run in
//! an empty scratch directory with a clean environment, and readers of its output.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use plainjobs::testing::{Backend, FreshDb};
use serde_json::{json, Value};
use uuid::Uuid;

pub const BIN: &str = env!("CARGO_BIN_EXE_plainjobs");
pub const SHELL_JOB: &str = "plain.jobs.scheduling.ScheduledCommand";
/// Longest a short command may take (an unreachable database costs its 10 s connect timeout).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a worker may take to finish the few jobs a test gives it.
pub const WORKER_TIMEOUT: Duration = Duration::from_secs(60);
/// The brief's bound on `plainjobs demo`.
pub const DEMO_TIMEOUT: Duration = Duration::from_secs(90);
/// Inherited variables that would change what the binary does.
pub const INHERITED: &[&str] = &[
    "DATABASE_URL",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
];

// ---------------------------------------------------------------------------------------------
// The test server and a schema per test.

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// One number from `url`.
pub fn query_i64(url: &str, sql: &str) -> i64 {
    block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await?;
        conn.close().await?;
        Ok::<i64, sqlx::Error>(n)
    })
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A schema of its own on the test server (`plainjobs::testing`); dropped at the end unless
/// the test failed.
pub struct Db {
    pub fresh: FreshDb,
    pub url: String,
}

impl Db {
    /// An empty schema (no tables).
    pub fn new() -> Db {
        let fresh = block_on(FreshDb::create(Backend::Postgres));
        let url = fresh.url.clone();
        Db { fresh, url }
    }

    pub fn count(&self, sql: &str) -> i64 {
        query_i64(&self.url, sql)
    }

    /// Runs a statement (to set up rows a test cannot make through the binary).
    pub fn exec(&self, sql: &str) {
        block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&self.url).await?;
            sqlx::query(sql).execute(&mut conn).await?;
            conn.close().await
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // After a failure the schema stays, to look at what the binary left behind.
        if std::thread::panicking() {
            eprintln!("schema kept for inspection: {}", self.fresh.name);
        } else {
            block_on(self.fresh.remove());
        }
    }
}

/// An empty directory, removed at the end.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("plainjobs-cli-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create scratch directory");
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Running the binary.

/// The binary as a test runs it: an empty scratch directory as cwd, a clean environment, plus
/// the variables the test sets.
pub struct Pj {
    pub dir: Scratch,
    pub vars: Vec<(String, String)>,
}

impl Pj {
    /// No database configured.
    pub fn bare() -> Pj {
        Pj {
            dir: Scratch::new(),
            vars: Vec::new(),
        }
    }

    /// `DATABASE_URL` names the test's schema.
    pub fn on(db: &Db) -> Pj {
        Pj::bare().env("DATABASE_URL", &db.url)
    }

    /// On the test's schema, after `plainjobs migrate`.
    pub fn migrated(db: &Db) -> Pj {
        let pj = Pj::on(db);
        pj.run(&["migrate"]).ok();
        pj
    }

    pub fn env(mut self, key: &str, value: &str) -> Pj {
        self.vars.push((key.to_string(), value.to_string()));
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(self.dir.path());
        for (key, _) in std::env::vars_os() {
            if let Some(key) = key.to_str() {
                if key.starts_with("PLAINJOBS_") || INHERITED.contains(&key) {
                    cmd.env_remove(key);
                }
            }
        }
        cmd.envs(self.vars.iter().map(|(k, v)| (k, v)));
        cmd
    }

    pub fn describe(&self, args: &[&str]) -> String {
        let vars: Vec<String> = self.vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("`{} plainjobs {}`", vars.join(" "), args.join(" "))
    }

    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, None, COMMAND_TIMEOUT)
    }

    pub fn run_with_input(&self, args: &[&str], input: &str) -> Out {
        self.run_with(args, Some(input), COMMAND_TIMEOUT)
    }

    /// Runs to completion (killed after `timeout`), stdin from `input` or empty.
    pub fn run_with(&self, args: &[&str], input: Option<&str>, timeout: Duration) -> Out {
        let what = self.describe(args);
        let mut cmd = self.command(args);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = ChildGuard(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start {what}: {e}")),
        );
        if let Some(text) = input {
            let mut stdin = child.0.stdin.take().expect("stdin");
            // The command may exit without reading; closing stdin (drop) gives it EOF.
            let _ = stdin.write_all(text.as_bytes());
        }
        let stdout = drain(child.0.stdout.take().expect("stdout"));
        let stderr = drain(child.0.stderr.take().expect("stderr"));
        let status = child.wait_timeout(timeout);
        if status.is_none() {
            child.kill();
        }
        let stdout = stdout.join().expect("stdout reader");
        let stderr = stderr.join().expect("stderr reader");
        let Some(status) = status else {
            panic!("{what} still ran after {timeout:?} and was killed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
        };
        Out {
            what,
            code: status.code(),
            stdout,
            stderr,
        }
    }

    /// Runs on a pseudo-terminal (util-linux's `script`), typing `input`: what a person at a
    /// terminal sees. Output is the terminal's (stdout and stderr together, input echoed).
    pub fn run_in_terminal(&self, args: &[&str], input: &str) -> Out {
        let what = self.describe(args);
        let line = std::iter::once(BIN)
            .chain(args.iter().copied())
            .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = self.command(&[]);
        let program = Command::new("script");
        let mut script = program;
        script
            .args(["-qec", &line, "/dev/null"])
            .current_dir(self.dir.path())
            .envs(
                cmd.get_envs()
                    .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in cmd.get_envs() {
            if value.is_none() {
                script.env_remove(key);
            }
        }
        let _ = &mut cmd;
        let mut child = ChildGuard(
            script
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start script for {what}: {e}")),
        );
        if let Some(mut stdin) = child.0.stdin.take() {
            // Typed after the prompt is up.
            std::thread::sleep(Duration::from_millis(500));
            let _ = stdin.write_all(input.as_bytes());
        }
        let stdout = drain(child.0.stdout.take().expect("stdout"));
        let stderr = drain(child.0.stderr.take().expect("stderr"));
        let status = child.wait_timeout(COMMAND_TIMEOUT);
        if status.is_none() {
            child.kill();
        }
        Out {
            what,
            code: status.and_then(|s| s.code()),
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
        }
    }

    /// Starts the binary in the background, its output going to files in the scratch directory.
    pub fn spawn(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Background {
        let what = self.describe(args);
        let id = Uuid::new_v4().simple().to_string();
        let log = self.dir.path().join(format!("background-{id}.log"));
        let file = File::create(&log).expect("log file");
        let mut cmd = self.command(args);
        cmd.envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Background {
            child: ChildGuard(child),
            log,
            what,
        }
    }
}

pub fn drain(mut stream: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A child process that is killed and reaped when dropped, so that a failed assertion never
/// leaves one running.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A long-running `plainjobs` (a worker).
pub struct Background {
    pub child: ChildGuard,
    pub log: PathBuf,
    pub what: String,
}

impl Background {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM (with the `kill` command) and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.0.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        self.child.wait_timeout(WORKER_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "{} did not exit within {WORKER_TIMEOUT:?} of SIGTERM\n--- log\n{}",
                self.what,
                self.log()
            )
        })
    }
}

/// What a finished command did.
pub struct Out {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn context(&self) -> String {
        format!(
            "{} exited with {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }

    pub fn expect(self, code: i32) -> Out {
        assert_eq!(self.code, Some(code), "wrong exit code: {}", self.context());
        self
    }

    pub fn ok(self) -> Out {
        self.expect(0)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.context()))
    }

    pub fn stdout_has(&self, needle: &str) -> &Out {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}: {}",
            self.context()
        );
        self
    }

    pub fn stderr_has(&self, needle: &str) -> &Out {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}: {}",
            self.context()
        );
        self
    }

    pub fn stdout_lacks(&self, needle: &str) -> &Out {
        assert!(
            !self.stdout.contains(needle),
            "stdout shows {needle:?}: {}",
            self.context()
        );
        self
    }

    pub fn stderr_lacks(&self, needle: &str) -> &Out {
        assert!(
            !self.stderr.contains(needle),
            "stderr shows {needle:?}: {}",
            self.context()
        );
        self
    }
}

/// Polls `probe` every 200 ms until it returns something or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key:?} is not a string in {v:#}"))
}

pub fn time(v: &Value, key: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text(v, key))
        .unwrap_or_else(|e| panic!("{key:?} is not RFC 3339 ({e}) in {v:#}"))
}

pub fn array(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v:#}"))
}

/// The request of `enqueue … --json`.
pub fn enqueued(out: &Out) -> Value {
    let v = out.json();
    assert_eq!(v["enqueued"], json!(true), "{}", out.context());
    v["request"].clone()
}

/// Sum of one count over all queues of `stats --json`.
pub fn total(stats: &Value, field: &str) -> i64 {
    array(&stats["queues"])
        .iter()
        .map(|q| q[field].as_i64().expect("a count"))
        .sum()
}

/// The results of `results --json`, waiting (with a worker running) until there are `n`.
pub fn wait_for_results(pj: &Pj, worker: &Background, n: usize) -> Vec<Value> {
    wait_for(WORKER_TIMEOUT, || {
        let list = pj
            .run(&["results", "--json", "--limit", "1000"])
            .ok()
            .json();
        let list = array(&list).clone();
        (list.len() >= n).then_some(list)
    })
    .unwrap_or_else(|| {
        panic!(
            "fewer than {n} results after {WORKER_TIMEOUT:?}\n--- worker log\n{}",
            worker.log()
        )
    })
}

/// A worker for the default queue with short timings.
pub fn start_worker(pj: &Pj) -> Background {
    pj.spawn(
        &["worker", "--queue", "default", "--concurrency", "2"],
        &[
            ("PLAINJOBS_HEARTBEAT_INTERVAL", "1s"),
            ("PLAINJOBS_STATS_EVERY", "0"),
        ],
    )
}

pub fn find_by<'a>(list: &'a [Value], key: &str, value: &str) -> &'a Value {
    list.iter()
        .find(|v| v[key] == json!(value))
        .unwrap_or_else(|| panic!("no entry with {key} = {value} in {list:#?}"))
}

/// The rows of the demo's final table (between its header and the blank line after it).
pub fn final_table(stdout: &str) -> Vec<&str> {
    let lines: Vec<&str> = stdout.lines().collect();
    let header = lines
        .iter()
        .rposition(|l| l.starts_with("status ") && l.contains("result uuid"))
        .unwrap_or_else(|| panic!("no final table in the demo's output:\n{stdout}"));
    lines[header + 1..]
        .iter()
        .take_while(|l| !l.trim().is_empty())
        .copied()
        .collect()
}
