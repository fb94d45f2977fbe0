//! `many-workers`: K worker processes (each with concurrency C) drain one backlog together.
//! Throughput as K grows, claims that came back short or empty (the workers' own counters),
//! lock waits (sampled on the server), and the exact run-twice check (each process's run
//! records).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::backlog;
use crate::children::{wait_runs, Process};
use crate::hist::merge;
use crate::job::Shape;
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
    #[arg(long, default_value_t = 100_000)]
    pub jobs: u64,
    /// Worker process counts, one row each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    pub processes: Vec<usize>,
    /// Give up on one drain after this long.
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
    /// Where the processes write their run records (default: a temporary folder).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

pub async fn main(args: Args) -> anyhow::Result<()> {
    args.target.check()?;
    let dir = work_dir(args.work_dir.as_deref(), "many")?;
    let mut one_rate = None;
    for &k in &args.processes {
        let mut row = drain_by_processes(&args, k, &dir).await?;
        let rate = row["jobs_per_s"].as_f64().unwrap_or(0.0);
        if k == 1 {
            one_rate = Some(rate);
        }
        row["vs_one_process"] = json!(one_rate.map(|r| r3(rate / r.max(1e-9))));
        Row::new("many-workers", &args.target, &format!("K={k}"))
            .with(row)
            .emit();
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A folder for run records and samples, emptied first.
pub fn work_dir(given: Option<&Path>, name: &str) -> anyhow::Result<PathBuf> {
    let dir = given.map(Path::to_path_buf).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("plainjobs-bench-{name}-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Starts `k` worker processes, each told to write its records under `dir`.
pub async fn start_workers(
    target: &Target,
    spec: &WorkerSpec,
    k: usize,
    dir: &Path,
    latency: bool,
) -> anyhow::Result<Vec<Process>> {
    let pool = pool_per_process(target, k).await?;
    let mut procs = Vec::with_capacity(k);
    for i in 0..k {
        let mut a = vec!["worker".to_string()];
        a.extend(spec.to_args());
        a.extend(["--pool".into(), pool.to_string()]);
        a.extend([
            "--runs-file".into(),
            runs_file(dir, i).display().to_string(),
        ]);
        if latency {
            a.extend([
                "--latency-file".into(),
                latency_file(dir, i).display().to_string(),
            ]);
        }
        procs.push(Process::spawn(&format!("worker {i}"), target, &a)?);
    }
    for p in &mut procs {
        p.ready(Duration::from_secs(60)).await?;
    }
    Ok(procs)
}

/// Connections each of `k` worker processes may pool: [`WorkerSpec::PROCESS_POOL`], or fewer
/// when `k` such pools would not fit in the server's `max_connections` (stock: 100) beside the
/// producer, the meter and the reserved ones — as an operator running 16 processes against a
/// stock server must configure them. At least 2 (heartbeat and maintenance, control).
async fn pool_per_process(target: &Target, k: usize) -> anyhow::Result<u32> {
    if target.backend() != crate::target::Backend::Postgres {
        return Ok(WorkerSpec::PROCESS_POOL);
    }
    let mut probe = crate::server::connect(&target.jobs_url()).await?;
    let free: i64 = sqlx::query_scalar(
        "SELECT current_setting('max_connections')::int8
              - current_setting('superuser_reserved_connections')::int8",
    )
    .fetch_one(&mut probe)
    .await?;
    // The producer, the meter's sampler and probe, headroom.
    const OTHERS: i64 = 12;
    // Each process also holds its LISTEN connection and the sessions of its claim and its
    // result writer, outside the pool (detached from it to keep their plan settings).
    const OUTSIDE_THE_POOL: i64 = 3;
    let each = (free - OTHERS) / k.max(1) as i64 - OUTSIDE_THE_POOL;
    Ok(each.clamp(2, i64::from(WorkerSpec::PROCESS_POOL)) as u32)
}

pub fn runs_file(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("runs-{i}"))
}

pub fn latency_file(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("latency-{i}"))
}

/// Stops the processes; their `done` reports summed (claims, short, empty, claimed, CPU), and
/// (distinct jobs run, runs beyond the first) from their run records.
pub async fn stop_workers(procs: Vec<Process>, dir: &Path) -> anyhow::Result<(Value, u64, u64)> {
    let k = procs.len();
    let mut sums = [0u64; 4];
    let mut cpu_s = 0.0;
    for p in procs {
        let done = p.finish(Duration::from_secs(60)).await?;
        for (i, key) in ["claims", "short_claims", "empty_claims", "claimed"]
            .iter()
            .enumerate()
        {
            sums[i] += done[key].as_u64().unwrap_or(0);
        }
        cpu_s += done["cpu_s"].as_f64().unwrap_or(0.0);
    }
    let mut all = Vec::new();
    for i in 0..k {
        all.extend(runs::read(&runs_file(dir, i))?);
    }
    let (distinct, twice) = runs::tally(&all);
    let [claims, short, empty, claimed] = sums;
    let fields = json!({
        "claims": claims,
        "short_claims": short,
        "empty_claims": empty,
        "jobs_per_claim": r3(claimed as f64 / claims.max(1) as f64),
        "worker_processes_cpu_s": r3(cpu_s),
    });
    Ok((fields, distinct, twice))
}

async fn drain_by_processes(args: &Args, k: usize, dir: &Path) -> anyhow::Result<Value> {
    let (target, n) = (&args.target, args.jobs);
    target.reset().await?;
    let producer = target.connect(2).await?;
    let enqueue = backlog::enqueue(&producer, n, Shape::default(), backlog::CHUNK).await?;
    backlog::settle(target).await?;
    let mut procs = start_workers(target, &args.worker, k, dir, false).await?;
    let workers = Workers::Children(procs.iter().map(|p| p.pid).collect());
    let meter = Meter::start(target, &workers).await?;
    let t0 = Instant::now();
    for p in &mut procs {
        p.go().await?;
    }
    let timeout = Duration::from_secs(args.timeout_s);
    if !wait_runs(&mut procs, n, timeout).await {
        bail!("K={k}: not all {n} jobs ran within {timeout:?} (or a worker ended)");
    }
    if !backlog::wait_empty(target, &producer, timeout).await? {
        bail!("K={k}: all handlers ran but rows remain");
    }
    let drain_s = t0.elapsed().as_secs_f64();
    let metrics = meter.finish(n, &workers).await?;
    let (claims, distinct, twice) = stop_workers(procs, dir).await?;
    let (successful, _) = backlog::results(&producer).await?;
    crate::target::close(&producer).await;
    log(format!(
        "K={k}: drained {n} jobs in {drain_s:.3}s ({:.0} jobs/s), {twice} ran twice",
        n as f64 / drain_s
    ));
    let mut row = args.worker.fields();
    merge(
        &mut row,
        json!({
            "processes": k,
            "jobs": n,
            "enqueue_per_s": (n as f64 / enqueue.as_secs_f64().max(1e-9)).round(),
            "drain_s": r3(drain_s),
            "jobs_per_s": (n as f64 / drain_s).round(),
            "ran": distinct,
            "ran_twice": twice,
            "missing": n.saturating_sub(distinct),
            "successful_results": successful,
        }),
    );
    merge(&mut row, claims);
    merge(&mut row, metrics);
    Ok(row)
}
