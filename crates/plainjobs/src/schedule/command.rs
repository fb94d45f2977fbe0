//! The built-in job that runs a shell command (plain.jobs' `cmd:` schedules).

use std::process::Stdio;

use serde::{Deserialize, Serialize};

use super::process::ProcessGroup;
use crate::job::{Job, JobContext, JobError, Outcome};

/// Runs a shell command through `sh -c`; fails (ERRORED) with the exit status and the tail of
/// its stderr when the command fails.
///
/// The command runs in a process group of its own. When the job is cancelled (a second Ctrl-C
/// or SIGTERM, the shutdown timeout), the whole group gets SIGTERM at once and SIGKILL
/// [`KILL_AFTER`](super::KILL_AFTER) later if anything of it is left: the command's own children end with it,
/// rather than finishing their work under PID 1.
///
/// Its name, `plain.jobs.scheduling.ScheduledCommand`, its one positional argument (the command)
/// and its default concurrency key (the command) are plain.jobs', so a row written by a Plain app
/// runs here too. It is only run by workers that register it explicitly: a database row must
/// never be enough to run a shell command on a worker that did not opt in.
///
/// # Example
/// ```no_run
/// # async fn demo(jobs: plainjobs::Jobs) -> plainjobs::Result<()> {
/// use plainjobs::schedule::ScheduledCommand;
/// jobs.enqueue(ScheduledCommand("echo hello".into())).await?;
/// plainjobs::Worker::new(jobs).register::<ScheduledCommand>().run().await
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledCommand(pub String);

/// How much of stderr is kept in the error text.
const STDERR_TAIL: usize = 2000;

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    if text.len() <= STDERR_TAIL {
        return text.to_string();
    }
    let mut start = text.len() - STDERR_TAIL;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

impl Job for ScheduledCommand {
    const NAME: &'static str = "plain.jobs.scheduling.ScheduledCommand";
    const DESCRIPTION: &'static str =
        "Runs a shell command (sh -c); built in, registered on request";

    async fn run(&self, _ctx: &JobContext) -> Result<Outcome, JobError> {
        let mut command = tokio::process::Command::new("sh");
        command
            .arg("-c")
            .arg(&self.0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawned = ProcessGroup::spawn(&mut command, &self.0)
            .map_err(|e| JobError::msg(format!("could not start `sh -c {:?}`: {e}", self.0)))?;
        let (child, group) = spawned;
        let output = child.wait_with_output().await;
        group.exited();
        let output = output
            .map_err(|e| JobError::msg(format!("could not wait for `sh -c {:?}`: {e}", self.0)))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !stdout.trim().is_empty() {
            tracing::info!(command = %self.0, stdout = %stdout.trim_end(), "command output");
        }
        if output.status.success() {
            return Ok(Outcome::Success);
        }
        let status = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_string(),
        };
        let stderr = tail(&output.stderr);
        Err(JobError::msg(if stderr.is_empty() {
            format!("command {:?} failed with {status}", self.0)
        } else {
            format!(
                "command {:?} failed with {status}; stderr:\n{stderr}",
                self.0
            )
        }))
    }

    fn default_concurrency_key(&self) -> String {
        self.0.clone()
    }
}
