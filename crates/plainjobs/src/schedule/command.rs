//! The built-in job that runs a shell command (plain.jobs' `cmd:` schedules).

use std::process::Stdio;

use serde::{Deserialize, Serialize};

use crate::job::{Job, JobContext, JobError, Outcome};

/// Runs a shell command through `sh -c`; fails (ERRORED) with the exit status and the tail of
/// its stderr when the command fails.
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
        let output = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| JobError::msg(format!("could not start `sh -c {:?}`: {e}", self.0)))?;
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
