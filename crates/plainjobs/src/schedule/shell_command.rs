//! `plainjobs.ShellCommand`: a shell command with a working directory and environment
//! variables, as keyword arguments (`command`, `cwd`, `env`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::shell::{run_shell_with, Setting};
use crate::job::{fitted_key, Job, JobContext, JobError, Outcome};
use crate::model::MAX_NAME_LEN;

/// Runs a shell command through `sh -c`, in a working directory and with environment
/// variables of its own, as [`ScheduledCommand`](super::ScheduledCommand) does otherwise
/// (output followed line by line, a process group ended with the job, the tails of the
/// output kept with a failure, retries after 10 s doubling to 10 min).
///
/// Stored as `{"args": [], "kwargs": {"command": …, "cwd": …, "env": {…}}}` under the name
/// `plainjobs.ShellCommand`, which plain.jobs does not know: use `ScheduledCommand` for
/// commands a Plain app must be able to run. Only workers that register it run it.
///
/// Its default concurrency key is the command, with the directory and variables when given
/// (`"echo hi" in /srv with A=1`), fitted to 255 characters as `ScheduledCommand`'s is.
///
/// # Example
/// ```no_run
/// # async fn demo(jobs: plainjobs::Jobs) -> plainjobs::Result<()> {
/// use plainjobs::schedule::ShellCommand;
/// let job = ShellCommand::new("make report").cwd("/srv/app").env("LANG", "C");
/// jobs.enqueue(job).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShellCommand {
    /// The command, run with `sh -c`.
    pub command: String,
    /// The working directory (None: the worker's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Variables set for the command, on top of the worker's environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

impl ShellCommand {
    /// The command, in the worker's directory and environment.
    pub fn new(command: impl Into<String>) -> ShellCommand {
        ShellCommand {
            command: command.into(),
            cwd: None,
            env: BTreeMap::new(),
        }
    }

    /// Runs it in `dir`.
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets the variable `name` to `value` for it.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }
}

impl Job for ShellCommand {
    const NAME: &'static str = "plainjobs.ShellCommand";
    const DESCRIPTION: &'static str =
        "Runs a shell command (sh -c) in a directory, with variables; built in, registered on request";

    async fn run(&self, _ctx: &JobContext) -> Result<Outcome, JobError> {
        let env: Vec<(String, String)> = self.env.clone().into_iter().collect();
        let setting = Setting {
            cwd: self.cwd.as_deref(),
            env: &env,
        };
        run_shell_with(&self.command, setting).await?;
        Ok(Outcome::Success)
    }

    /// As `ScheduledCommand`: 10 s, then 20 s, 40 s… up to 10 minutes.
    fn retry_delay(&self, attempt: u32) -> Duration {
        let doubling = 1u64 << attempt.saturating_sub(1).min(6);
        Duration::from_secs(10 * doubling).min(Duration::from_secs(600))
    }

    fn default_concurrency_key(&self) -> String {
        let mut key = self.command.clone();
        if let Some(dir) = &self.cwd {
            key.push_str(&format!(" in {dir}"));
        }
        if !self.env.is_empty() {
            let vars: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            key.push_str(&format!(" with {}", vars.join(" ")));
        }
        fitted_key(&key, MAX_NAME_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_as_keyword_arguments_and_keyed_by_what_it_runs() {
        let job = ShellCommand::new("make").cwd("/srv").env("A", "1");
        let params = crate::params::encode(ShellCommand::NAME, &job).unwrap();
        assert_eq!(
            params,
            serde_json::json!({"args": [], "kwargs": {"command": "make", "cwd": "/srv", "env": {"A": "1"}}})
        );
        assert_eq!(job.default_concurrency_key(), "make in /srv with A=1");
        assert_eq!(ShellCommand::new("make").default_concurrency_key(), "make");
        let long = ShellCommand::new("x".repeat(300)).default_concurrency_key();
        assert_eq!(long.chars().count(), MAX_NAME_LEN);
    }
}
