//! A worker whose log output breaks (stderr a pipe whose reader went away: a dead `| tee`, a
//! restarting log shipper) carries on: it runs its jobs, and SIGTERM stops it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_plainjobs");

fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("broken-output")
        .join(format!("{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn plainjobs(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("PLAINJOBS_DATABASE_URL", "sqlite://jobs.sqlite3")
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .expect("run plainjobs")
}

fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let began = Instant::now();
    while began.elapsed() < timeout {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn a_worker_whose_stderr_reader_is_gone_runs_its_jobs_and_stops_on_sigterm() {
    let dir = scratch();
    assert!(plainjobs(&dir, &["migrate"]).status.success());
    let mut worker = Command::new(BIN)
        .args(["worker", "--concurrency", "2"])
        .current_dir(&dir)
        .env("PLAINJOBS_DATABASE_URL", "sqlite://jobs.sqlite3")
        .env("PLAINJOBS_HEARTBEAT_INTERVAL", "1s")
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start worker");
    // The reader goes away at once: every log line from now on meets a closed pipe.
    drop(worker.stderr.take());
    for n in 0..3 {
        let out = plainjobs(&dir, &["enqueue-command", &format!("echo {n}; sleep 0.2")]);
        assert!(out.status.success(), "{out:?}");
    }
    let all_done = wait_for(Duration::from_secs(30), || {
        let out = plainjobs(&dir, &["results", "--json"]);
        let results: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        results
            .as_array()
            .is_some_and(|r| r.len() == 3 && r.iter().all(|r| r["status"] == "SUCCESSFUL"))
    });
    let pid = worker.id().to_string();
    let term = Command::new("kill").args(["-TERM", &pid]).status();
    let stopped = wait_for(Duration::from_secs(20), || {
        worker.try_wait().ok().flatten().is_some()
    });
    if !stopped {
        let _ = worker.kill();
    }
    assert!(all_done, "the worker ran the three commands");
    assert!(term.is_ok_and(|s| s.success()));
    assert!(stopped, "SIGTERM stopped the worker");
}
