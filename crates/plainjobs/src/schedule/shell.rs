//! Running a shell command: `sh -c` in a process group of its own, its output followed line by
//! line, its failure described with its exit status and the tails of its output.

use std::process::Stdio;

use super::output::{follow, Tail};
use super::process::ProcessGroup;
use crate::job::JobError;

/// Where and with what a command runs besides the worker's own environment.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Setting<'a> {
    /// The working directory (None: the worker's).
    pub cwd: Option<&'a str>,
    /// Variables added to (or replacing those of) the worker's environment.
    pub env: &'a [(String, String)],
}

/// Runs `command` with `sh -c` to its end, in the worker's directory and environment.
///
/// # Errors
/// A [`JobError`] saying why: it could not start, or it exited with a failure (its status and
/// the tails of its stderr and stdout).
pub(crate) async fn run_shell(command: &str) -> Result<(), JobError> {
    run_shell_with(command, Setting::default()).await
}

/// As [`run_shell`], in `setting`'s directory with its variables.
///
/// # Errors
/// As [`run_shell`]; a directory that does not exist is named in the error.
pub(crate) async fn run_shell_with(command: &str, setting: Setting<'_>) -> Result<(), JobError> {
    let mut cmd = tokio::process::Command::new("sh");
    if let Some(dir) = setting.cwd {
        if !std::path::Path::new(dir).is_dir() {
            return Err(JobError::msg(format!(
                "could not start `sh -c {command:?}`: the working directory {dir:?} does not exist"
            )));
        }
        cmd.current_dir(dir);
    }
    cmd.envs(setting.env.iter().map(|(k, v)| (k, v)));
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
