//! `drain`: a backlog of N jobs, bulk-enqueued first, drained by one in-process worker —
//! the harness's drain, with the server's own counts around it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use plainjobs::{Jobs, WorkerHandle};
use serde_json::{json, Value};

use crate::backlog::{self, Backlog};
use crate::hist::merge;
use crate::job::{Recorder, Shape};
use crate::meter::{r3, Meter, Workers};
use crate::out::{log, Row};
use crate::runs;
use crate::target::Target;
use crate::worker_setup::WorkerSpec;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub worker: WorkerSpec,
    /// Jobs in the backlog.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: u64,
    /// Each handler sleeps this long.
    #[arg(long, default_value_t = 0)]
    pub sleep_ms: u32,
    /// Padding in each job's parameters, in bytes.
    #[arg(long, default_value_t = 0)]
    pub pad_bytes: usize,
    /// Give up after this long.
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
}

pub async fn main(args: Args) -> anyhow::Result<()> {
    args.target.check()?;
    let shape = Shape {
        sleep_ms: args.sleep_ms,
        pad_bytes: args.pad_bytes,
    };
    let fields = drain(&args.target, &args.worker, args.jobs, shape, args.timeout_s).await?;
    Row::new("drain", &args.target, "drain").with(fields).emit();
    Ok(())
}

/// Resets, enqueues `n` jobs of `shape`, drains them with an in-process worker, stops it; the
/// row's fields: enqueue and drain rates, claims, the run-twice check, and the meter's figures.
pub async fn drain(
    target: &Target,
    spec: &WorkerSpec,
    n: u64,
    shape: Shape,
    timeout_s: u64,
) -> anyhow::Result<Value> {
    let backlog = Backlog {
        jobs: n,
        shape,
        prefill_results: 0,
    };
    let (mut row, running) = drain_and_keep(target, spec, &backlog, timeout_s).await?;
    let (distinct, twice) = running.stop().await?;
    merge(
        &mut row,
        json!({ "ran": distinct, "ran_twice": twice, "missing": n.saturating_sub(distinct) }),
    );
    Ok(row)
}

/// A drained worker still running (idle), for a latency phase after the drain.
pub struct Running {
    pub handle: WorkerHandle,
    /// The worker's own handle (enqueues through it may be dispatched locally).
    pub jobs: Jobs,
    /// Another handle, which no worker shares (enqueues through it go through the queue).
    pub producer: Jobs,
    pub recorder: Arc<Recorder>,
}

impl Running {
    /// Stops the worker; (distinct jobs that ran, runs beyond the first).
    pub async fn stop(self) -> anyhow::Result<(u64, u64)> {
        self.handle.stop().await?;
        crate::target::close(&self.producer).await;
        crate::target::close(&self.jobs).await;
        Ok(runs::tally(&self.recorder.take_runs()))
    }
}

/// As [`drain`], but leaves the worker running.
pub async fn drain_and_keep(
    target: &Target,
    spec: &WorkerSpec,
    backlog: &Backlog,
    timeout_s: u64,
) -> anyhow::Result<(Value, Running)> {
    let (n, shape) = (backlog.jobs, backlog.shape);
    target.reset().await?;
    if backlog.prefill_results > 0 {
        backlog::prefill_results(target, backlog.prefill_results).await?;
    }
    let producer = target.connect(2).await?;
    let enqueue = backlog::enqueue(&producer, n, shape, backlog::CHUNK).await?;
    backlog::settle(target).await?;
    let recorder = Arc::new(Recorder::default());
    let jobs = target.connect(WorkerSpec::IN_PROCESS_POOL).await?;
    let meter = Meter::start(target, &Workers::ThisProcess).await?;
    let t0 = Instant::now();
    let handle = spec.worker(jobs.clone(), recorder.clone(), true).spawn();
    let deadline = t0 + Duration::from_secs(timeout_s);
    while recorder.done() < n {
        if Instant::now() > deadline {
            handle.abort();
            bail!("drain timed out: {}/{n} handlers ran", recorder.done());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if !backlog::wait_empty(target, &producer, Duration::from_secs(timeout_s)).await? {
        handle.abort();
        bail!("all handlers ran but rows remain");
    }
    let drain_s = t0.elapsed().as_secs_f64();
    let counters = handle.counters();
    let metrics = meter.finish(n, &Workers::ThisProcess).await?;
    let (successful, _) = backlog::results(&producer).await?;
    log(format!(
        "drained {n} jobs in {drain_s:.3}s, C={} ({:.0} jobs/s)",
        spec.concurrency,
        n as f64 / drain_s
    ));
    let mut row = spec.fields();
    merge(
        &mut row,
        json!({
            "jobs": n,
            "prefilled_results": backlog.prefill_results,
            "sleep_ms": shape.sleep_ms,
            "pad_bytes": shape.pad_bytes,
            "enqueue_per_s": (n as f64 / enqueue.as_secs_f64().max(1e-9)).round(),
            "drain_s": r3(drain_s),
            "jobs_per_s": (n as f64 / drain_s).round(),
            "claims": counters.claims,
            "short_claims": counters.short_claims,
            "empty_claims": counters.empty_claims,
            "jobs_per_claim": r3(counters.claimed as f64 / counters.claims.max(1) as f64),
            "successful_results": successful,
        }),
    );
    merge(&mut row, metrics);
    let running = Running {
        handle,
        jobs,
        producer,
        recorder,
    };
    Ok((row, running))
}
