//! `shapes`: real work shapes.
//! - `noop` and `params 1 kB`: the same backlog drained with empty and with 1 kB parameters;
//! - `sleep 10 ms, C=100`: jobs that each sleep 10 ms, one worker with 100 slots; the ideal is
//!   100 / 10 ms = 10,000 jobs/s, and the row reports the fraction reached;
//! - `mix 1% of 1 s`: open-loop arrivals through the queue where every 100th job sleeps 1 s,
//!   beside the same arrivals with no long jobs: short jobs must not wait behind long ones.

use serde_json::json;

use crate::drain::drain;
use crate::job::Shape;
use crate::many::work_dir;
use crate::meter::r3;
use crate::open_loop::through_queue;
use crate::out::{log, Row};
use crate::producer::Arrivals;
use crate::target::Target;
use crate::worker_setup::WorkerSpec;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub worker: WorkerSpec,
    /// Backlog of each drain.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: u64,
    /// Parameter padding of the large-parameters drain.
    #[arg(long, default_value_t = 1000)]
    pub pad_bytes: usize,
    /// Slots of the sleeping-jobs drain.
    #[arg(long, default_value_t = 100)]
    pub sleep_concurrency: usize,
    /// How long each sleeping job sleeps.
    #[arg(long, default_value_t = 10)]
    pub sleep_ms: u32,
    /// Arrival rate of the mix (jobs/s): 1 % of them at 1 s keep ~this/100 slots busy.
    #[arg(long, default_value_t = 200.0)]
    pub mix_rate: f64,
    /// How long jobs of the mix arrive.
    #[arg(long, default_value_t = 30.0)]
    pub mix_seconds: f64,
    /// Which shapes: noop, params, sleep, mix.
    #[arg(long, value_delimiter = ',', default_value = "noop,params,sleep,mix")]
    pub only: Vec<String>,
}

pub async fn main(args: Args) -> anyhow::Result<()> {
    args.target.check()?;
    let (t, w, n) = (&args.target, &args.worker, args.jobs);
    let wants = |s: &str| args.only.iter().any(|o| o == s);
    if wants("noop") {
        let row = drain(t, w, n, Shape::default(), 600).await?;
        Row::new("shapes", t, "noop").with(row).emit();
    }
    if wants("params") {
        let shape = Shape {
            sleep_ms: 0,
            pad_bytes: args.pad_bytes,
        };
        let row = drain(t, w, n, shape, 600).await?;
        Row::new("shapes", t, &format!("params {} B", args.pad_bytes))
            .with(row)
            .emit();
    }
    if wants("sleep") {
        let spec = w.with_concurrency(args.sleep_concurrency);
        let shape = Shape {
            sleep_ms: args.sleep_ms,
            pad_bytes: 0,
        };
        let mut row = drain(t, &spec, n, shape, 600).await?;
        let ideal = args.sleep_concurrency as f64 * 1000.0 / f64::from(args.sleep_ms.max(1));
        let rate = row["jobs_per_s"].as_f64().unwrap_or(0.0);
        row["ideal_per_s"] = json!(ideal);
        row["of_ideal"] = json!(r3(rate / ideal));
        let label = format!("sleep {} ms, C={}", args.sleep_ms, args.sleep_concurrency);
        Row::new("shapes", t, &label).with(row).emit();
    }
    if wants("mix") {
        mix(&args).await?;
    }
    Ok(())
}

/// The mix and its baseline, through the queue, one worker process.
async fn mix(args: &Args) -> anyhow::Result<()> {
    let dir = work_dir(None, "mix")?;
    for long_every in [0, 100] {
        let arrivals = Arrivals {
            rate: args.mix_rate,
            seconds: args.mix_seconds,
            long_every,
            long_ms: 1000,
            sleep_ms: 0,
            pad_bytes: 0,
            max_in_flight: 1024,
            seed: 42,
        };
        let label = if long_every == 0 {
            "mix baseline: no long jobs".to_string()
        } else {
            "mix: 1% of jobs take 1 s".to_string()
        };
        log(format!("shapes: {label} at {} jobs/s", args.mix_rate));
        let row = through_queue(&args.target, &args.worker, 1, &arrivals, 16, &dir).await?;
        Row::new("shapes", &args.target, &label).with(row).emit();
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
