//! The run log: one line per start and per end of a job run, appended by the worker process that
//! ran it, read back by the checks.
//!
//! Each line goes to the kernel in one `write(2)` on a file opened with `O_APPEND`, with no
//! buffer in the process: a line that was written survives a SIGKILL the next instant, and lines
//! of one process never interleave.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use uuid::Uuid;

/// Whether a line records the start or the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Start,
    /// The run's code returned; `ok` says whether it succeeded.
    End {
        ok: bool,
    },
}

/// One line of a run log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEvent {
    pub phase: Phase,
    /// Wall-clock microseconds since the Unix epoch (all processes share the host's clock).
    pub at_us: i64,
    pub pid: u32,
    /// The chain (every attempt of one enqueued job) the run belongs to.
    pub chain: u64,
    pub request: Uuid,
    pub process: Uuid,
    pub attempt: i16,
}

/// An append-only run log of one worker process.
pub struct RunLog {
    file: File,
    pid: u32,
}

impl RunLog {
    pub fn open(path: &Path) -> anyhow::Result<RunLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("open run log {}", path.display()))?;
        Ok(RunLog {
            file,
            pid: std::process::id(),
        })
    }

    pub fn record(&self, event: &RunEvent) -> std::io::Result<()> {
        let line = format_event(event);
        let written = (&self.file).write(line.as_bytes())?;
        if written != line.len() {
            return Err(std::io::Error::other(format!(
                "run log line cut short ({written} of {} bytes)",
                line.len()
            )));
        }
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}

pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn format_event(e: &RunEvent) -> String {
    let phase = match e.phase {
        Phase::Start => "S",
        Phase::End { ok: true } => "E+",
        Phase::End { ok: false } => "E-",
    };
    format!(
        "{phase} {} {} {} {} {} {}\n",
        e.at_us, e.pid, e.chain, e.request, e.process, e.attempt
    )
}

fn parse_event(line: &str) -> anyhow::Result<RunEvent> {
    let f: Vec<&str> = line.split(' ').collect();
    let [phase, at, pid, chain, request, process, attempt] = f[..] else {
        bail!("not a run log line: {line:?}");
    };
    let phase = match phase {
        "S" => Phase::Start,
        "E+" => Phase::End { ok: true },
        "E-" => Phase::End { ok: false },
        other => bail!("unknown phase {other:?} in {line:?}"),
    };
    Ok(RunEvent {
        phase,
        at_us: at.parse()?,
        pid: pid.parse()?,
        chain: chain.parse()?,
        request: request.parse()?,
        process: process.parse()?,
        attempt: attempt.parse()?,
    })
}

/// Every event of every `*.runs` file in `dir`. A last line without its newline (a write the
/// kernel never completed) would be an error: `write` of a few dozen bytes to a regular file is
/// all or nothing, so one is not expected.
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<RunEvent>> {
    let mut events = Vec::new();
    for path in run_files(dir)? {
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        if !text.is_empty() && !text.ends_with('\n') {
            bail!("{} ends in a partial line", path.display());
        }
        for line in text.lines() {
            events.push(parse_event(line).with_context(|| path.display().to_string())?);
        }
    }
    Ok(events)
}

fn run_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "runs") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_through_a_file() {
        let dir = std::env::temp_dir().join(format!("runlog-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = RunLog::open(&dir.join("w.runs")).expect("open");
        let start = RunEvent {
            phase: Phase::Start,
            at_us: now_us(),
            pid: log.pid(),
            chain: 42,
            request: Uuid::new_v4(),
            process: Uuid::new_v4(),
            attempt: 2,
        };
        let end = RunEvent {
            phase: Phase::End { ok: false },
            ..start.clone()
        };
        log.record(&start).expect("write start");
        log.record(&end).expect("write end");
        assert_eq!(read_dir(&dir).expect("read back"), vec![start, end]);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
