//! The peer harness's mode (no subcommand): `plainjobs-bench --jobs N --concurrency C --lat-n L
//! --lat-gap-ms G` prints ONE JSON line with the harness's fields (`system, concurrency, jobs,
//! drain_s, jobs_per_s, lat_p50_ms, lat_p95_ms, lat_p99_ms, lat_n, lat_timeouts`) and ours.
//!
//! Single enqueues are timed first; then the backlog is bulk-enqueued and drained by an
//! in-process worker (see [`crate::drain`]); then, with that worker idle, the idle latency
//! (see [`crate::latency`]) through the worker's own handle — local dispatch — unless
//! `--no-local-dispatch`, which enqueues through a handle no worker shares.

use std::time::Instant;

use anyhow::Context;
use serde_json::json;

use crate::backlog::Backlog;
use crate::drain::drain_and_keep;
use crate::job::Shape;
use crate::latency::{idle, Idle};
use crate::meter::r3;
use crate::target::Target;
use crate::worker_setup::WorkerSpec;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub worker: WorkerSpec,
    #[command(flatten)]
    pub idle: Idle,
    /// Jobs to bulk-enqueue and drain.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: u64,
    /// Single enqueues timed for `single_enqueue_per_s` (0: skip).
    #[arg(long, default_value_t = 500)]
    pub single_n: u64,
    /// Skip the latency phase (its fields are null).
    #[arg(long)]
    pub skip_latency: bool,
    /// First fill the result table with this many finished jobs of the past 6 days.
    #[arg(long, default_value_t = 0)]
    pub prefill_results: u64,
    /// The latency phase enqueues through a handle no worker shares (through the queue).
    #[arg(long)]
    pub no_local_dispatch: bool,
    /// Give up on the drain after this long.
    #[arg(long, default_value_t = 600)]
    pub drain_timeout_s: u64,
}

pub async fn main(args: Args) -> anyhow::Result<()> {
    args.target.check()?;
    let single = single_enqueue_rate(&args.target, args.single_n).await?;
    let backlog = Backlog {
        jobs: args.jobs,
        shape: Shape::default(),
        prefill_results: args.prefill_results,
    };
    let (mut out, running) =
        drain_and_keep(&args.target, &args.worker, &backlog, args.drain_timeout_s).await?;
    let (samples, timeouts) = if args.skip_latency {
        (Vec::new(), 0)
    } else if args.no_local_dispatch {
        idle(&running.producer, &running.recorder, &args.idle).await?
    } else {
        idle(&running.jobs, &running.recorder, &args.idle).await?
    };
    running.stop().await?;
    let mut ms: Vec<f64> = samples.iter().map(|ns| *ns as f64 / 1e6).collect();
    ms.sort_by(f64::total_cmp);
    let p = |q: f64| nearest_rank(&ms, q).map(r3);
    out["system"] = json!(system_name(&args));
    out["single_enqueue_per_s"] = json!(single);
    out["lat_p50_ms"] = json!(p(50.0));
    out["lat_p95_ms"] = json!(p(95.0));
    out["lat_p99_ms"] = json!(p(99.0));
    out["lat_n"] = json!(ms.len());
    out["lat_timeouts"] = json!(timeouts);
    out["peak_rss_kb"] = json!(peak_rss_kb());
    println!("{out}");
    Ok(())
}

/// Single enqueues per second, one call at a time, through a handle no worker shares.
async fn single_enqueue_rate(target: &Target, n: u64) -> anyhow::Result<Option<f64>> {
    if n == 0 {
        return Ok(None);
    }
    target.reset().await?;
    let jobs = target.connect(2).await?;
    let t = Instant::now();
    for i in 0..n {
        jobs.enqueue(Shape::default().job(i as i64, None))
            .await
            .context("single enqueue")?;
    }
    let s = t.elapsed().as_secs_f64();
    crate::target::close(&jobs).await;
    Ok(Some((n as f64 / s).round()))
}

/// Nearest-rank percentile of sorted samples (as the peers compute it).
fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[idx])
}

/// The row's label: the system and every non-default setting.
fn system_name(args: &Args) -> String {
    let mut labels = vec![match args.target.backend() {
        crate::target::Backend::Postgres => "Rust".to_string(),
        crate::target::Backend::Sqlite => "Rust, SQLite".to_string(),
    }];
    if let Some(n) = args.worker.max_pending {
        labels.push(format!("max_pending={n}"));
    }
    if args.worker.asynchronous_claims {
        labels.push("asynchronous claims".to_string());
    }
    if args.no_local_dispatch {
        labels.push("no local dispatch".to_string());
    }
    format!("plainjobs ({})", labels.join(", "))
}

/// Peak resident set size of this process (VmHWM), in kB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
