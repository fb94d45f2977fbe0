//! `load`: jobs arrive open loop at fractions (25 %, 50 %, 75 %) of the maximum drain rate
//! measured first in the same run, for 30 s each; enqueue-to-start p50/p99/p99.9 through the
//! queue (a producer process apart from the worker processes) and by local dispatch (the
//! producer enqueues through the worker's own handle, in one process).

use serde_json::json;

use crate::drain::drain;
use crate::job::Shape;
use crate::many::work_dir;
use crate::open_loop::{in_process, through_queue};
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
    /// Fractions of the maximum drain rate.
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,0.75")]
    pub fractions: Vec<f64>,
    /// How long jobs arrive at each.
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    /// The maximum drain rate (jobs/s); measured first when not given.
    #[arg(long)]
    pub max_rate: Option<f64>,
    /// Backlog of the drain that measures the maximum rate.
    #[arg(long, default_value_t = 20_000)]
    pub calibration_jobs: u64,
    /// Worker processes on the queue path.
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// Paths to measure: queue, local.
    #[arg(long, value_delimiter = ',', default_value = "queue,local")]
    pub paths: Vec<String>,
    /// The producer's pool.
    #[arg(long, default_value_t = 16)]
    pub producer_connections: u32,
}

pub async fn main(args: Args) -> anyhow::Result<()> {
    args.target.check()?;
    let max = match args.max_rate {
        Some(r) => r,
        None => {
            let row = drain(
                &args.target,
                &args.worker,
                args.calibration_jobs,
                Shape::default(),
                600,
            )
            .await?;
            let rate = row["jobs_per_s"].as_f64().unwrap_or(1000.0);
            Row::new("load", &args.target, "max drain rate")
                .with(row)
                .emit();
            rate
        }
    };
    let dir = work_dir(None, "load")?;
    for &f in &args.fractions {
        let arrivals = Arrivals {
            rate: max * f,
            seconds: args.seconds,
            long_every: 0,
            long_ms: 1000,
            sleep_ms: 0,
            pad_bytes: 0,
            max_in_flight: 1024,
            seed: 42,
        };
        for path in &args.paths {
            log(format!(
                "load {path} at {:.0}% of {max:.0} jobs/s",
                f * 100.0
            ));
            let mut row = match path.as_str() {
                "queue" => {
                    through_queue(
                        &args.target,
                        &args.worker,
                        args.processes,
                        &arrivals,
                        args.producer_connections,
                        &dir,
                    )
                    .await?
                }
                "local" => {
                    in_process(
                        &args.target,
                        &args.worker,
                        &arrivals,
                        args.producer_connections,
                    )
                    .await?
                }
                other => anyhow::bail!("unknown path {other:?} (queue, local)"),
            };
            row["fraction"] = json!(f);
            row["max_rate"] = json!(max.round());
            Row::new("load", &args.target, &format!("{path} {:.0}%", f * 100.0))
                .with(row)
                .emit();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
