//! The worker's logs: JSON lines or text, colour codes only on a terminal, a shell command's
//! output line by line inside its job's span.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_plainjobs");

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("logs")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn plainjobs(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env("PLAINJOBS_DATABASE_URL", "sqlite://jobs.sqlite3")
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG");
    cmd
}

/// Runs a worker for two seconds on one enqueued command; returns its stderr.
fn worker_logs(dir: &Path, log_args: &[&str], command: &str) -> String {
    worker_logs_with(dir, log_args, command, &[])
}

/// As [`worker_logs`], with more environment variables for the worker.
fn worker_logs_with(dir: &Path, log_args: &[&str], command: &str, vars: &[(&str, &str)]) -> String {
    assert!(plainjobs(dir, &["migrate"])
        .status()
        .expect("migrate")
        .success());
    let out = plainjobs(dir, &["enqueue-command", command])
        .output()
        .expect("enqueue");
    assert!(out.status.success(), "{out:?}");
    let mut args = log_args.to_vec();
    args.push("worker");
    let child = plainjobs(dir, &args)
        .envs(vars.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker");
    std::thread::sleep(Duration::from_secs(2));
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let out = child.wait_with_output().expect("worker output");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn json_logs_are_one_object_per_line_with_the_jobs_fields() {
    let dir = scratch("json");
    let logs = worker_logs(
        &dir,
        &["--log-format", "json"],
        "echo first; echo second >&2",
    );
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let output: Vec<(&str, &str)> = lines
        .iter()
        .filter_map(|l| Some((l["stream"].as_str()?, l["message"].as_str()?)))
        .collect();
    assert_eq!(
        output,
        [("stdout", "first"), ("stderr", "second")],
        "{logs}"
    );
    let job_line = lines
        .iter()
        .find(|l| l["message"] == "first")
        .expect("the output line");
    assert!(
        job_line["span"]["job_request_uuid"].is_string(),
        "{job_line}"
    );
    assert!(
        job_line["span"].get("trace_id").is_none(),
        "no empty trace fields: {job_line}"
    );
}

#[test]
fn text_logs_have_no_colour_codes_when_not_on_a_terminal() {
    let dir = scratch("text");
    let logs = worker_logs(&dir, &[], "echo plain");
    assert!(logs.contains("plain"), "{logs}");
    assert!(!logs.contains('\x1b'), "colour codes in: {logs:?}");
}

#[test]
fn a_bad_log_level_is_a_usage_error() {
    let dir = scratch("level");
    let out = plainjobs(&dir, &["--log-level", "verbose", "stats"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--log-level"), "{err}");
}

#[test]
fn an_idle_worker_logs_no_stats_lines() {
    let dir = scratch("idle");
    // Six periods of 300 ms in two seconds: the job runs in the first, the others are idle.
    let logs = worker_logs_with(&dir, &[], "true", &[("PLAINJOBS_STATS_EVERY", "300ms")]);
    let n = logs.matches("worker stats").count();
    assert!(
        (1..=2).contains(&n),
        "{n} stats lines (one or two for the busy periods expected): {logs}"
    );
}
