//! Running a shell command: `sh -c` in a process group of its own, its output followed line by
//! line, its failure described with its exit status and the tails of its output.

use std::process::Stdio;

use super::output::{follow, Tail};
use super::process::ProcessGroup;
use crate::job::JobError;

/// Runs `command` with `sh -c` to its end.
///
/// # Errors
/// A [`JobError`] saying why: it could not start, or it exited with a failure (its status and
/// the tails of its stderr and stdout).
pub(crate) async fn run_shell(command: &str) -> Result<(), JobError> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (mut child, group) = ProcessGroup::spawn(&mut cmd, command)
        .map_err(|e| JobError::msg(format!("could not start `sh -c {command:?}`: {e}")))?;
    let stdout = child.stdout.take().map(|s| follow(s, "stdout"));
    let stderr = child.stderr.take().map(|s| follow(s, "stderr"));
    let (status, out, err) = tokio::join!(child.wait(), optional(stdout), optional(stderr));
    group.exited();
    let status = status
        .map_err(|e| JobError::msg(format!("could not wait for `sh -c {command:?}`: {e}")))?;
    if status.success() {
        return Ok(());
    }
    let how = match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "a signal".to_string(),
    };
    let mut text = format!("command {command:?} failed with {how}");
    for (name, tail) in [("stderr", err), ("stdout", out)] {
        let kept = tail.text();
        if !kept.is_empty() {
            text.push_str(&format!("\n{name}:\n{kept}"));
        }
    }
    Err(JobError::msg(text))
}

async fn optional(tail: Option<impl std::future::Future<Output = Tail>>) -> Tail {
    match tail {
        Some(f) => f.await,
        None => Tail::default(),
    }
}
