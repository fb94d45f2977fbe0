//! Idle enqueue-to-start latency: with a worker running and idle, single jobs enqueued open
//! loop about `gap` apart (jittered 0.5×–1.5×, fixed seed), after warm-ups, each timed from just
//! before its enqueue call to its handler being entered.

use std::time::{Duration, Instant};

use anyhow::Context;
use plainjobs::Jobs;

use crate::clock::now_ns;
use crate::job::{Recorder, Shape};
use crate::rng::Lcg;

/// Jobs not started this long after the last enqueue count as timeouts.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(clap::Args, Debug, Clone)]
pub struct Idle {
    /// Latency samples.
    #[arg(long, default_value_t = 200)]
    pub lat_n: u64,
    /// Mean gap between enqueues, ms.
    #[arg(long, default_value_t = 20.0)]
    pub lat_gap_ms: f64,
    /// Warm-up jobs first (not counted).
    #[arg(long, default_value_t = 20)]
    pub lat_warmup: u64,
}

/// Enqueues through `jobs` (the worker's own handle for local dispatch, another for the
/// queue); returns the samples (ns) and how many never started. `recorder` is the worker's.
pub async fn idle(
    jobs: &Jobs,
    recorder: &Recorder,
    idle: &Idle,
) -> anyhow::Result<(Vec<u64>, u64)> {
    let mut rng = Lcg(42);
    paced(jobs, recorder, idle.lat_warmup, idle.lat_gap_ms, &mut rng).await?;
    recorder.take_latencies();
    tokio::time::sleep(Duration::from_millis(500)).await;
    paced(jobs, recorder, idle.lat_n, idle.lat_gap_ms, &mut rng).await?;
    let (samples, _) = recorder.take_latencies();
    let timeouts = idle.lat_n.saturating_sub(samples.len() as u64);
    Ok((samples, timeouts))
}

/// `n` timed enqueues, then waits (up to the timeout) for them all to start.
async fn paced(
    jobs: &Jobs,
    recorder: &Recorder,
    n: u64,
    gap_ms: f64,
    rng: &mut Lcg,
) -> anyhow::Result<()> {
    let already = recorder.short_started();
    let mut next = Instant::now();
    for seq in 0..n {
        next += Duration::from_secs_f64((0.5 + rng.next_f64()) * gap_ms / 1000.0);
        tokio::time::sleep_until(next.into()).await;
        let job = Shape::default().job(-1 - seq as i64, Some(now_ns()));
        jobs.enqueue(job).await.context("latency enqueue")?;
    }
    let deadline = Instant::now() + TIMEOUT;
    while recorder.short_started() < already + n as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}
