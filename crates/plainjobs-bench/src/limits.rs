//! `limits`: each figure beside its limit, both measured in this run on this cluster.
//! - drains at C=10 and C=1 against the SQL ceiling (≥ 0.85) and the best peer (≥ 4×);
//! - idle enqueue-to-start against one durable single-row commit (p50 within 1.5×, p99 < 2 ms);
//! - bulk enqueue against `COPY` of the same rows into the same table (≥ 0.9×);
//! - CPU per job (worker process plus the cluster's processes), against a baseline if given.
//!
//! On SQLite: the drains against the SQLite ceiling (≥ 0.7) and the idle latency.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::drain::drain;
use crate::hist::summary;
use crate::job::{Recorder, Shape};
use crate::latency::{idle, Idle};
use crate::many::work_dir;
use crate::meter::r3;
use crate::out::{log, Row};
use crate::target::{Backend, Target};
use crate::worker_setup::WorkerSpec;
use crate::{ceiling, commit_rt, copy, peers};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub worker: WorkerSpec,
    #[command(flatten)]
    pub idle: Idle,
    /// Backlog of the drains and of the ceiling.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: u64,
    /// Jobs of the bulk-enqueue-vs-COPY comparison.
    #[arg(long, default_value_t = 100_000)]
    pub bulk_jobs: u64,
    /// How long pgbench measures the commit round trip.
    #[arg(long, default_value_t = 10)]
    pub commit_seconds: u64,
    /// The shared harness's ceiling folder (its run.sh).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/bench/ceiling"))]
    pub ceiling_dir: PathBuf,
    /// The SQLite ceiling script.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/ceiling-sqlite/run.sh"))]
    pub sqlite_ceiling: PathBuf,
    /// The harness's writable copy, where `scripts/bench setup` installed the peers.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/peer-bench"))]
    pub peer_dir: PathBuf,
    /// Peers to run beside our drains ("" for none).
    #[arg(long, default_value = peers::DEFAULT)]
    pub peers: String,
    /// Leave out the labelled extra row with asynchronous claims.
    #[arg(long)]
    pub no_async_row: bool,
    /// CPU per job (µs, drain at C=10) of the code before this work, for the "25 % below" check.
    #[arg(long, env = "BENCH_CPU_BASELINE_US")]
    pub cpu_baseline_us: Option<f64>,
}

/// What the checks need from the measurements.
#[derive(Default)]
struct Seen {
    drain: [Option<Value>; 2],
    ceiling: Option<f64>,
    best_peer: [Option<(String, f64)>; 2],
    idle_local: Option<Value>,
    idle_queue: Option<Value>,
    commit: Option<Value>,
    copy: Option<Value>,
}

const CS: [usize; 2] = [10, 1];

pub async fn main(args: Args) -> anyhow::Result<()> {
    args.target.check()?;
    let t = &args.target;
    let mut seen = Seen::default();
    for (i, c) in CS.into_iter().enumerate() {
        let row = drain(
            t,
            &args.worker.with_concurrency(c),
            args.jobs,
            Shape::default(),
            600,
        )
        .await?;
        seen.drain[i] = Some(row.clone());
        Row::new("limits", t, &format!("drain C={c}"))
            .with(row)
            .emit();
    }
    if !args.no_async_row && t.backend() == Backend::Postgres {
        let mut spec = args.worker.with_concurrency(10);
        spec.asynchronous_claims = true;
        let row = drain(t, &spec, args.jobs, Shape::default(), 600).await?;
        Row::new("limits", t, "extra: drain C=10, asynchronous claims")
            .with(row)
            .emit();
    }
    let ceiling = match t.backend() {
        Backend::Postgres => ceiling::postgres(t, &args.ceiling_dir, args.jobs).await,
        Backend::Sqlite => ceiling::sqlite(t, &args.sqlite_ceiling, args.jobs).await,
    };
    match ceiling {
        Ok(row) => {
            seen.ceiling = row["jobs_per_s"].as_f64();
            Row::new("limits", t, "SQL ceiling").with(row).emit();
        }
        Err(e) => Row::new("limits", t, "SQL ceiling")
            .with(json!({ "error": e.to_string() }))
            .emit(),
    }
    if t.backend() == Backend::Postgres {
        run_peers(&args, &mut seen).await;
    }
    idle_latency(&args, &mut seen).await?;
    if t.backend() == Backend::Postgres {
        let dir = work_dir(None, "commit")?;
        let row = commit_rt::measure(t, args.idle.lat_gap_ms, args.commit_seconds, &dir).await?;
        let _ = std::fs::remove_dir_all(&dir);
        seen.commit = Some(row.clone());
        Row::new("limits", t, "durable single-row commit (pgbench, 1 client)")
            .with(row)
            .emit();
        let row = copy::measure(t, args.bulk_jobs).await?;
        seen.copy = Some(row.clone());
        Row::new("limits", t, "bulk enqueue vs COPY")
            .with(row)
            .emit();
    }
    for check in checks(&args, &seen) {
        let label = check["row"].as_str().unwrap_or_default().to_string();
        Row::new("limits", t, &label).with(check).emit();
    }
    Ok(())
}

async fn run_peers(args: &Args, seen: &mut Seen) {
    let names: Vec<&str> = args
        .peers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for (i, c) in CS.into_iter().enumerate() {
        for name in &names {
            log(format!("peer {name} C={c}"));
            let row = peers::run_peer(&args.target, &args.peer_dir, name, args.jobs, c).await;
            if let Some(rate) = row["jobs_per_s"].as_f64() {
                if seen.best_peer[i]
                    .as_ref()
                    .is_none_or(|(_, best)| rate > *best)
                {
                    seen.best_peer[i] = Some((name.to_string(), rate));
                }
            }
            Row::new("limits", &args.target, &format!("peer {name} C={c}"))
                .with(row)
                .emit();
        }
    }
}

/// An idle in-process worker; samples through its own handle (local dispatch) and through a
/// handle no worker shares (the queue).
async fn idle_latency(args: &Args, seen: &mut Seen) -> anyhow::Result<()> {
    let t = &args.target;
    t.reset().await?;
    let jobs = t.connect(WorkerSpec::IN_PROCESS_POOL).await?;
    let other = t.connect(2).await?;
    let recorder = Arc::new(Recorder::default());
    let handle = args
        .worker
        .with_concurrency(10)
        .worker(jobs.clone(), recorder.clone(), true)
        .spawn();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (path, via) in [("local dispatch", &jobs), ("through the queue", &other)] {
        let (samples, timeouts) = idle(via, &recorder, &args.idle).await?;
        let mut row = summary("lat", &samples);
        row["lat_timeouts"] = json!(timeouts);
        row["lat_gap_ms"] = json!(args.idle.lat_gap_ms);
        if path == "local dispatch" {
            seen.idle_local = Some(row.clone());
        } else {
            seen.idle_queue = Some(row.clone());
        }
        Row::new("limits", t, &format!("idle latency, {path}"))
            .with(row)
            .emit();
    }
    handle.stop().await?;
    crate::target::close(&jobs).await;
    crate::target::close(&other).await;
    Ok(())
}

/// One row per target of the issue: the measured figure, its limit, their ratio, and whether
/// it is met.
fn checks(args: &Args, s: &Seen) -> Vec<Value> {
    let sqlite = args.target.backend() == Backend::Sqlite;
    let mut out = Vec::new();
    let mut check = |row: String,
                     measured: Option<f64>,
                     limit: Option<f64>,
                     target: &str,
                     met: Option<bool>| {
        let ratio = measured.zip(limit).map(|(m, l)| r3(m / l.max(1e-9)));
        out.push(json!({ "row": row, "measured": measured, "limit": limit, "ratio": ratio, "target": target, "met": met }));
    };
    let want_ceiling = if sqlite { 0.7 } else { 0.85 };
    for (i, c) in CS.into_iter().enumerate() {
        let rate = s.drain[i].as_ref().and_then(|r| r["jobs_per_s"].as_f64());
        let r = rate.zip(s.ceiling).map(|(m, l)| m / l);
        check(
            format!("check: drain C={c} vs SQL ceiling"),
            rate,
            s.ceiling,
            &format!("≥ {want_ceiling}"),
            r.map(|r| r >= want_ceiling),
        );
        if !sqlite {
            let peer = s.best_peer[i].as_ref();
            let r = rate.zip(peer.map(|p| p.1)).map(|(m, l)| m / l);
            let name = peer.map_or("no peer ran".to_string(), |p| p.0.clone());
            check(
                format!("check: drain C={c} vs best peer ({name})"),
                rate,
                peer.map(|p| p.1),
                "≥ 4",
                r.map(|r| r >= 4.0),
            );
        }
        let cpu = s.drain[i].as_ref().and_then(|r| {
            r["cpu_us_per_job"]
                .as_f64()
                .or(r["worker_cpu_us_per_job"].as_f64())
        });
        let base = if c == 10 { args.cpu_baseline_us } else { None };
        check(
            format!("check: CPU µs per job, C={c} (vs the baseline)"),
            cpu,
            base,
            "≤ 0.75",
            cpu.zip(base).map(|(m, l)| m / l <= 0.75),
        );
    }
    let commit_p50 = s.commit.as_ref().and_then(|r| r["commit_p50_ms"].as_f64());
    for (path, row) in [
        ("local dispatch", &s.idle_local),
        ("through the queue", &s.idle_queue),
    ] {
        let p50 = row.as_ref().and_then(|r| r["lat_p50_ms"].as_f64());
        let p99 = row.as_ref().and_then(|r| r["lat_p99_ms"].as_f64());
        if !sqlite {
            let r = p50.zip(commit_p50).map(|(m, l)| m / l);
            check(
                format!("check: idle p50, {path}, vs one commit's p50"),
                p50,
                commit_p50,
                "≤ 1.5",
                r.map(|r| r <= 1.5),
            );
        }
        check(
            format!("check: idle p99 ms, {path}"),
            p99,
            Some(2.0),
            "< 2 ms",
            p99.map(|p| p < 2.0),
        );
    }
    if let Some(c) = &s.copy {
        let (b, l) = (c["bulk_per_s"].as_f64(), c["copy_per_s"].as_f64());
        let r = b.zip(l).map(|(m, l)| m / l);
        check(
            "check: bulk enqueue vs COPY".to_string(),
            b,
            l,
            "≥ 0.9",
            r.map(|r| r >= 0.9),
        );
    }
    out
}
