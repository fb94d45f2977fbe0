//! `stats`: jobs per queue and the workers, as tables; `--watch` to follow them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::{json, Value};

use crate::cli::error::CliError;
use crate::cli::output::{ago, render, table};
use crate::cli::values::duration;
use crate::cli::watch::{show_or_watch, View};
use crate::cli::Ctx;
use crate::model::{JobStatus, WorkerHeartbeat};
use crate::settings::{approximate_duration, Settings};
use crate::{Jobs, QueueStats};

/// `stats` options.
#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    /// Show the stats again every DURATION (default 2s) until Ctrl-C.
    #[arg(long, value_name = "DURATION", value_parser = duration, num_args = 0..=1,
          default_missing_value = "2s")]
    pub watch: Option<Duration>,
}

/// What a worker's heartbeat says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkerState {
    /// Heartbeat recent.
    Alive,
    /// Missed heartbeats, not yet past the timeout: probably dead.
    Late,
    /// Past the heartbeat timeout: its jobs are rescued as LOST by the next worker pass.
    Dead,
    /// On this host, and no process has its pid: dead now, whatever its heartbeat says.
    Gone,
}

impl WorkerState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WorkerState::Alive => "alive",
            WorkerState::Late => "late",
            WorkerState::Dead => "dead",
            WorkerState::Gone => "gone",
        }
    }

    fn explain(self, settings: &Settings) -> String {
        let timeout = approximate_duration(settings.heartbeat_timeout);
        match self {
            WorkerState::Alive => "alive".into(),
            WorkerState::Late => format!("late: missed its heartbeats (dead after {timeout})"),
            WorkerState::Dead => {
                format!("dead: no heartbeat for over {timeout}; its jobs become LOST")
            }
            WorkerState::Gone => "gone: its process no longer exists on this host".into(),
        }
    }
}

/// Alive while its last heartbeat is at most two intervals (and 5 s) old; late until the
/// heartbeat timeout; dead after. A worker on this host whose pid is not running is gone.
pub(crate) fn worker_state(
    w: &WorkerHeartbeat,
    settings: &Settings,
    now: DateTime<Utc>,
) -> WorkerState {
    if w.hostname == crate::worker::hostname() && !pid_is_running(w.pid) {
        return WorkerState::Gone;
    }
    let age = (now - w.last_heartbeat_at).to_std().unwrap_or_default();
    if age > settings.heartbeat_timeout {
        WorkerState::Dead
    } else if age > settings.heartbeat_interval * 2 + Duration::from_secs(5) {
        WorkerState::Late
    } else {
        WorkerState::Alive
    }
}

#[cfg(unix)]
fn pid_is_running(pid: i32) -> bool {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    // Signal 0 checks that the process exists; EPERM means it exists under another user.
    !matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

#[cfg(not(unix))]
fn pid_is_running(_pid: i32) -> bool {
    true
}

pub(crate) async fn stats(ctx: &Ctx, args: StatsArgs) -> Result<(), CliError> {
    let jobs = ctx.jobs().await?;
    show_or_watch(ctx.json, args.watch, || view(ctx, &jobs)).await
}

async fn view(ctx: &Ctx, jobs: &Jobs) -> Result<View, CliError> {
    let queues = jobs.stats().await?;
    let workers = jobs.workers().await?;
    let now = Utc::now();
    let states: Vec<WorkerState> = workers
        .iter()
        .map(|w| worker_state(w, &ctx.settings, now))
        .collect();
    let count = |s: WorkerState| states.iter().filter(|x| **x == s).count();
    let list: Vec<Value> = workers
        .iter()
        .zip(&states)
        .map(|(w, s)| {
            let mut v = json!(w);
            v["state"] = json!(s.as_str());
            v
        })
        .collect();
    let json = json!({
        "queues": queues,
        "workers": {
            "active": count(WorkerState::Alive),
            "late": count(WorkerState::Late),
            "stale": count(WorkerState::Dead) + count(WorkerState::Gone),
            "list": list,
        },
    });
    let mut text = queue_table(&queues);
    text.push_str(&format!(
        "\n\nworkers: {} active, {} late, {} stale\n",
        count(WorkerState::Alive),
        count(WorkerState::Late),
        count(WorkerState::Dead) + count(WorkerState::Gone)
    ));
    if !workers.is_empty() {
        text.push_str(&worker_table(&workers, &states, &ctx.settings, now));
    }
    Ok(View {
        text: text.trim_end().to_string(),
        json,
    })
}

fn queue_table(queues: &[QueueStats]) -> String {
    if queues.is_empty() {
        return "(no jobs)".into();
    }
    let statuses: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
    let mut header = vec!["QUEUE", "READY", "SCHEDULED", "CLAIMED", "RUNNING"];
    header.extend(&statuses);
    let mut t = table(&header, &header[1..]);
    for q in queues {
        let name = if q.paused {
            format!("{} (paused)", q.queue)
        } else {
            q.queue.clone()
        };
        let mut row = vec![
            name,
            q.ready.to_string(),
            q.scheduled.to_string(),
            q.waiting.to_string(),
            q.running.to_string(),
        ];
        row.extend(
            statuses
                .iter()
                .map(|s| q.results.get(*s).copied().unwrap_or(0).to_string()),
        );
        t.add_row(row);
    }
    format!(
        "{}\n\nready: may start now (not while the queue is paused: `plainjobs resume QUEUE`) · scheduled: waiting for their start time · claimed: taken by a worker ahead of a free slot, not started · running: started\nthe status columns count the results kept (see `plainjobs results`)",
        render(&t)
    )
}

fn worker_table(
    workers: &[WorkerHeartbeat],
    states: &[WorkerState],
    settings: &Settings,
    now: DateTime<Utc>,
) -> String {
    let mut t = table(
        &[
            "WORKER",
            "HOST",
            "PID",
            "QUEUES",
            "STARTED",
            "HEARTBEAT",
            "STATE",
        ],
        &["PID"],
    );
    for (w, s) in workers.iter().zip(states) {
        t.add_row(vec![
            w.worker_id.to_string(),
            w.hostname.clone(),
            w.pid.to_string(),
            w.queues.join(","),
            ago(w.started_at, now),
            ago(w.last_heartbeat_at, now),
            s.explain(settings),
        ]);
    }
    render(&t)
}
