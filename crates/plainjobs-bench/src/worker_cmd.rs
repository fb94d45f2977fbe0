//! `worker`: the body of one worker process of the many-workers and load questions (started
//! by the orchestrator, see [`crate::children`]).
//!
//! Connects, says `ready`, waits for `go`, runs a worker, reports its handlers' run count every
//! few milliseconds, and on end of stdin stops gracefully; then writes its run records (and
//! latency samples) to files and says `done` with its counters and CPU time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::children::say;
use crate::job::Recorder;
use crate::runs;
use crate::target::Target;
use crate::worker_setup::WorkerSpec;

/// How often the run count is reported (the drain's end is known to within this).
const PROGRESS_EVERY: Duration = Duration::from_millis(5);

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub worker: WorkerSpec,
    /// Where to write the request uuid of every run (16 bytes each).
    #[arg(long)]
    pub runs_file: PathBuf,
    /// Where to write enqueue-to-start samples (ns, 8 bytes each): PATH.short and PATH.long.
    #[arg(long)]
    pub latency_file: Option<PathBuf>,
    /// The process's pool size (the orchestrator shrinks it when many processes share a
    /// server's `max_connections`).
    #[arg(long, default_value_t = WorkerSpec::PROCESS_POOL)]
    pub pool: u32,
}

pub async fn main(args: Args) -> anyhow::Result<()> {
    args.target.check()?;
    let jobs = args.target.connect(args.pool).await?;
    // One round trip now, so the pool holds a live connection before `go`.
    jobs.stats().await?;
    say("ready", json!({}));
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    loop {
        match stdin.next_line().await? {
            Some(line) if line.trim() == "go" => break,
            Some(_) => continue,
            None => return Ok(()),
        }
    }
    let recorder = Arc::new(Recorder::default());
    let handle = args.worker.worker(jobs, recorder.clone(), false).spawn();
    let mut reported = u64::MAX;
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tokio::select! {
            line = stdin.next_line() => match line {
                Ok(Some(_)) => continue,
                _ => break,
            },
            _ = tick.tick() => {
                let done = recorder.done();
                if done != reported {
                    say("progress", json!({ "runs": done }));
                    reported = done;
                }
            }
        }
    }
    let counters = handle.counters();
    handle.stop().await?;
    let run_records = recorder.take_runs();
    runs::write(&args.runs_file, &run_records)?;
    if let Some(path) = &args.latency_file {
        let (short, long) = recorder.take_latencies();
        runs::write_samples(&path.with_extension("short"), &short)?;
        runs::write_samples(&path.with_extension("long"), &long)?;
    }
    say(
        "done",
        json!({
            "runs": run_records.len(),
            "claims": counters.claims,
            "short_claims": counters.short_claims,
            "empty_claims": counters.empty_claims,
            "claimed": counters.claimed,
            "cpu_s": crate::cpu::this_process().as_secs_f64(),
        }),
    );
    Ok(())
}
