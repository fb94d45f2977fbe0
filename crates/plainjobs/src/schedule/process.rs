//! A shell command's process group: ended, not just its shell, when the job stops waiting.

use std::time::Duration;

use tokio::process::{Child, Command};

/// How long a cancelled command's process group has between SIGTERM and SIGKILL.
pub const KILL_AFTER: Duration = Duration::from_secs(5);

/// The process group a command was started in. Dropped before [`ProcessGroup::exited`] (the
/// job was cancelled or timed out while the command ran), it sends SIGTERM to the whole group
/// and, [`KILL_AFTER`] later, SIGKILL to whatever of it is left.
pub(crate) struct ProcessGroup {
    /// The group's id: the shell's pid (0 when the platform has no process groups).
    id: u32,
    command: String,
    running: bool,
}

impl ProcessGroup {
    /// Starts `command` as the leader of a new process group.
    pub fn spawn(command: &mut Command, text: &str) -> std::io::Result<(Child, ProcessGroup)> {
        #[cfg(unix)]
        command.process_group(0);
        #[cfg(not(unix))]
        command.kill_on_drop(true);
        let child = command.spawn()?;
        let group = ProcessGroup {
            id: child.id().unwrap_or(0),
            command: text.to_string(),
            running: true,
        };
        Ok((child, group))
    }

    /// The command exited by itself: what it left running in the background is its own affair.
    pub fn exited(mut self) {
        self.running = false;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if !self.running || self.id == 0 {
            return;
        }
        end_group(self.id, &self.command);
    }
}

#[cfg(unix)]
fn end_group(id: u32, command: &str) {
    use nix::sys::signal::{killpg, Signal};
    use nix::unistd::Pid;
    let Ok(raw) = i32::try_from(id) else { return };
    let group = Pid::from_raw(raw);
    if killpg(group, Signal::SIGTERM).is_err() {
        return; // already gone
    }
    tracing::warn!(command, process_group = raw, "stopped a running command: sent SIGTERM to its process group (SIGKILL in {}s if it is still there)", KILL_AFTER.as_secs());
    let command = command.to_string();
    // A thread, not a task: the escalation must happen even if the runtime is shutting down.
    std::thread::spawn(move || {
        std::thread::sleep(KILL_AFTER);
        if killpg(group, None).is_ok() && killpg(group, Signal::SIGKILL).is_ok() {
            tracing::warn!(
                command,
                process_group = raw,
                "the command's process group outlived SIGTERM; sent SIGKILL"
            );
        }
    });
}

#[cfg(not(unix))]
fn end_group(_id: u32, _command: &str) {
    // Without process groups, kill_on_drop ends the shell itself.
}
