//! A shell-command job that is cancelled ends with its whole process group: the command's own
//! children too (SIGTERM, then SIGKILL for those that ignore it), not only `sh`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use plainjobs::schedule::{ScheduledCommand, KILL_AFTER};
use plainjobs::{JobStatus, Worker};

fn scratch(db: &TestDb) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("shell-tests")
        .join(&db.schema);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Whether process `pid` exists (as anything but a zombie).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.split_whitespace().nth(2).is_none_or(|s| s != "Z"))
}

/// Runs `command` (which starts a background `sleep` and writes its pid to `pid_file`), waits
/// until it runs, then stops the worker with a short shutdown timeout, which cancels the job.
/// Returns the background process's pid and how the job ended.
async fn cancel_a_running_command(
    db: &TestDb,
    command: String,
    pid_file: &Path,
) -> (String, JobStatus) {
    db.jobs
        .enqueue(ScheduledCommand(command))
        .await
        .expect("enqueue")
        .expect("enqueued");
    let worker = Worker::new(db.jobs.clone())
        .register::<ScheduledCommand>()
        .config(fast_config())
        .shutdown_timeout(Duration::from_millis(300))
        .spawn();
    assert!(
        wait_until(Duration::from_secs(30), || async { pid_file.exists() }).await,
        "the command started"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pid = std::fs::read_to_string(pid_file)
        .expect("pid")
        .trim()
        .to_string();
    assert!(alive(&pid), "the command's child runs");
    worker.stop().await.expect("worker stops");
    let results = db.results().await;
    assert_eq!(results.len(), 1, "{results:#?}");
    (pid, results[0].status)
}

async fn a_cancelled_command_ends_with_its_children(backend: Backend) {
    let db = test_db_for(backend).await;
    let dir = scratch(&db);
    let pid_file = dir.join("child.pid");
    let command = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
    let (pid, status) = cancel_a_running_command(&db, command, &pid_file).await;
    assert_eq!(status, JobStatus::Cancelled);
    assert!(
        wait_until(Duration::from_secs(3), || async { !alive(&pid) }).await,
        "the command's child {pid} was ended with it"
    );
}

/// A command whose processes ignore SIGTERM is killed after the grace period.
async fn a_command_that_ignores_sigterm_is_killed_after_the_grace_period(backend: Backend) {
    let db = test_db_for(backend).await;
    let dir = scratch(&db);
    let pid_file = dir.join("stubborn.pid");
    let command = format!(
        "trap '' TERM; sleep 60 & echo $! > {}; wait",
        pid_file.display()
    );
    let (pid, status) = cancel_a_running_command(&db, command, &pid_file).await;
    assert_eq!(status, JobStatus::Cancelled);
    assert!(alive(&pid), "SIGTERM is ignored");
    assert!(
        wait_until(KILL_AFTER + Duration::from_secs(3), || async {
            !alive(&pid)
        })
        .await,
        "SIGKILL ended the command's child {pid}"
    );
}

conformance!(
    a_cancelled_command_ends_with_its_children,
    a_command_that_ignores_sigterm_is_killed_after_the_grace_period,
);
