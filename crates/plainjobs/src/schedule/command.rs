//! The built-in job that runs a shell command (plain.jobs' `cmd:` schedules).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::shell::run_shell;
use crate::job::{fitted_key, Job, JobContext, JobError, Outcome};
use crate::model::MAX_NAME_LEN;

/// Runs a shell command through `sh -c`; fails (ERRORED) with the exit status and the tails of
/// its stderr and stdout when the command fails. Its output goes to the log line by line as it
/// comes.
///
/// The command runs in a process group of its own. When the job is cancelled (a second Ctrl-C
/// or SIGTERM, the shutdown timeout), the whole group gets SIGTERM at once and SIGKILL
/// [`KILL_AFTER`](super::KILL_AFTER) later if anything of it is left: the command's own children end with it,
/// rather than finishing their work under PID 1.
///
/// Its name, `plain.jobs.scheduling.ScheduledCommand`, its one positional argument (the command)
/// and its default concurrency key (the command) are plain.jobs', so a row written by a Plain app
/// runs here too. A command longer than the 255 characters a key holds (which plain.jobs cannot
/// enqueue at all) gets a key of its first 218 characters, `…md5:` and the MD5 of the whole
/// command: still one pending run per command. It is only run by workers that register it explicitly: a database row must
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

impl Job for ScheduledCommand {
    const NAME: &'static str = "plain.jobs.scheduling.ScheduledCommand";
    const DESCRIPTION: &'static str =
        "Runs a shell command (sh -c); built in, registered on request";

    async fn run(&self, _ctx: &JobContext) -> Result<Outcome, JobError> {
        run_shell(&self.0).await?;
        Ok(Outcome::Success)
    }

    /// Retries wait 10 s, then 20 s, 40 s… up to 10 minutes: a command that failed for a
    /// reason outside it (a network, a full disk) gets time to recover.
    fn retry_delay(&self, attempt: u32) -> Duration {
        let doubling = 1u64 << attempt.saturating_sub(1).min(6);
        Duration::from_secs(10 * doubling).min(Duration::from_secs(600))
    }

    fn default_concurrency_key(&self) -> String {
        fitted_key(&self.0, MAX_NAME_LEN)
    }
}
