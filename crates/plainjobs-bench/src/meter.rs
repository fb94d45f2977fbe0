//! One phase's cost, read around it: statements and WAL from the server, CPU from /proc (the
//! worker processes and every process of the cluster), lock waits sampled meanwhile.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cpu;
use crate::server::{statements_between, ServerProbe, Statements};
use crate::target::{Backend, Target};
use crate::waits::{WaitProfile, WaitSampler};

/// How often lock waits are sampled.
const WAIT_SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// Statements listed one by one in a row (the rest are in the total).
const TOP_STATEMENTS: usize = 8;

/// Whose CPU counts as the worker's.
pub enum Workers {
    /// This process (an in-process worker).
    ThisProcess,
    /// Child processes, by pid.
    Children(Vec<u32>),
}

struct ServerStart {
    statements: Option<Statements>,
    wal: i64,
    cpu: Option<Duration>,
    sampler: WaitSampler,
    exclude: Vec<i32>,
    log: Option<(PathBuf, u64)>,
}

pub struct Meter {
    probe: Option<ServerProbe>,
    server: Option<ServerStart>,
    began: Instant,
    self_cpu: Duration,
    children_cpu: Vec<(u32, Duration)>,
}

impl Meter {
    /// Connects (PostgreSQL), checkpoints, and takes the first readings. Call it right before
    /// the phase starts.
    pub async fn start(target: &Target, workers: &Workers) -> anyhow::Result<Meter> {
        let mut probe = None;
        let mut server = None;
        if target.backend() == Backend::Postgres {
            let mut p = ServerProbe::connect(&target.jobs_url()).await?;
            p.checkpoint().await?;
            let mut sampler_conn = crate::server::connect(&target.jobs_url()).await?;
            let sampler_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut sampler_conn)
                .await?;
            let exclude = vec![p.backend_pid, sampler_pid];
            let cpu = p.postmaster.and_then(|pm| cpu::cluster(pm, &exclude));
            server = Some(ServerStart {
                statements: p.statements().await?,
                wal: p.wal_position().await?,
                cpu,
                sampler: WaitSampler::start(sampler_conn, WAIT_SAMPLE_EVERY),
                exclude,
                log: target
                    .server_log
                    .clone()
                    .filter(|f| !f.as_os_str().is_empty())
                    .map(|f| {
                        let len = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
                        (f, len)
                    }),
            });
            probe = Some(p);
        }
        let children_cpu = match workers {
            Workers::ThisProcess => Vec::new(),
            Workers::Children(pids) => pids
                .iter()
                .map(|&pid| (pid, cpu::process(pid).unwrap_or_default()))
                .collect(),
        };
        Ok(Meter {
            probe,
            server,
            began: Instant::now(),
            self_cpu: cpu::this_process(),
            children_cpu,
        })
    }

    /// The last readings, as row fields per job. Call it right after the phase, while the
    /// worker processes are still alive.
    pub async fn finish(mut self, jobs: u64, workers: &Workers) -> anyhow::Result<Value> {
        let wall = self.began.elapsed();
        let per_job = |x: f64| {
            if jobs > 0 {
                Some(x / jobs as f64)
            } else {
                None
            }
        };
        let worker_cpu = match workers {
            Workers::ThisProcess => cpu::this_process().saturating_sub(self.self_cpu),
            Workers::Children(pids) => pids
                .iter()
                .map(|&pid| {
                    let before = self
                        .children_cpu
                        .iter()
                        .find(|(p, _)| *p == pid)
                        .map(|(_, d)| *d)
                        .unwrap_or_default();
                    cpu::process(pid).unwrap_or_default().saturating_sub(before)
                })
                .sum(),
        };
        let mut row = json!({
            "phase_s": r3(wall.as_secs_f64()),
            "worker_cpu_us_per_job": per_job(worker_cpu.as_secs_f64() * 1e6).map(r1),
        });
        if let (Some(p), Some(s)) = (self.probe.as_mut(), self.server.take()) {
            server_fields(&mut row, p, s, jobs, worker_cpu).await?;
        }
        Ok(row)
    }
}

async fn server_fields(
    row: &mut Value,
    p: &mut ServerProbe,
    s: ServerStart,
    jobs: u64,
    worker_cpu: Duration,
) -> anyhow::Result<()> {
    let waits = s.sampler.finish().await;
    let n = jobs.max(1) as f64;
    let wal = p.wal_position().await? - s.wal;
    row["wal_bytes_per_job"] = json!((wal as f64 / n).round());
    let server_cpu = p
        .postmaster
        .and_then(|pm| cpu::cluster(pm, &s.exclude))
        .zip(s.cpu)
        .map(|(after, before)| after.saturating_sub(before));
    if let Some(cpu) = server_cpu {
        row["server_cpu_us_per_job"] = json!(r1(cpu.as_secs_f64() * 1e6 / n));
        row["cpu_us_per_job"] = json!(r1((cpu + worker_cpu).as_secs_f64() * 1e6 / n));
    }
    if let (Some(before), Some(after)) = (s.statements, p.statements().await?) {
        let (total, per) = statements_between(&before, &after);
        row["statements_per_job"] = json!(r3(total as f64 / n));
        row["top_statements"] = per
            .iter()
            .take(TOP_STATEMENTS)
            .map(|st| {
                json!({
                    "per_job": r3(st.calls as f64 / n),
                    "ms_per_call": r3(st.exec_ms / st.calls.max(1) as f64),
                    "rows_per_call": r1(st.rows as f64 / st.calls.max(1) as f64),
                    "query": st.query,
                })
            })
            .collect();
    }
    wait_fields(row, &waits);
    if let Some((file, from)) = s.log {
        row["long_lock_waits"] = json!(long_lock_waits(&file, from));
    }
    Ok(())
}

fn wait_fields(row: &mut Value, waits: &WaitProfile) {
    row["wait_samples"] = json!(waits.samples);
    row["lock_waits"] = json!(r3(waits.of_type("Lock")));
    row["lwlock_waits"] = json!(r3(waits.of_type("LWLock")));
    row["top_waits"] = waits
        .events
        .iter()
        .take(6)
        .map(|(e, avg)| json!({ "event": e, "avg_backends": r3(*avg) }))
        .collect();
}

/// Lock waits longer than `deadlock_timeout` the server logged (`log_lock_waits`) since `from`.
fn long_lock_waits(file: &PathBuf, from: u64) -> Option<usize> {
    let text = std::fs::read(file).ok()?;
    let start = usize::try_from(from).ok()?.min(text.len());
    Some(
        String::from_utf8_lossy(&text[start..])
            .lines()
            .filter(|l| l.contains("still waiting for"))
            .count(),
    )
}

pub fn r1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
