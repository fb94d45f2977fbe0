//! One chaos run: a throwaway cluster, a fleet of worker processes, producers, faults drawn
//! from the seed; then quiescence, a graceful stop, and the checks.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use plainjobs::Jobs;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::task::JoinHandle;

use crate::check::{self, Evidence};
use crate::cluster::{Cluster, ClusterOptions};
use crate::faults::{self, FaultRecord, Lab};
use crate::fleet::{pid_exists, Fleet, FleetSpec};
use crate::load::{self, EnqueueLog, SharedLog};
use crate::plan::{Plan, Size};
use crate::report::{summarize_faults, Report};
use crate::sampler::{self, KeySamples};
use crate::worker::TIMINGS;
use crate::{facts, probe, runlog};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Config {
    pub seed: u64,
    pub size: Size,
    pub workers: usize,
    pub concurrency: usize,
    /// The producers spread their enqueues over this long; faults go on at least as long.
    pub load: Duration,
    pub min_faults: usize,
    /// Pause before each fault, drawn from this range (ms).
    pub gap_ms: (u64, u64),
    /// How long to wait, after the load, for every job to be finished.
    pub quiesce_timeout: Duration,
    /// The run's directory (cluster, run logs, worker stderr, summary.json).
    pub dir: PathBuf,
    /// The plainjobs-chaos binary (started as `worker`).
    pub exe: PathBuf,
    pub listen: bool,
}

impl Config {
    /// The form CI runs: ~1,900 jobs, 4 workers, every fault kind at least once (~1.5–2 min).
    pub fn short(seed: u64, dir: PathBuf, exe: PathBuf) -> Config {
        Config {
            seed,
            size: Size {
                jobs: 1_500,
                key_rounds: 120,
                racers: 3,
                keys: 8,
            },
            workers: 4,
            concurrency: 6,
            load: Duration::from_secs(40),
            min_faults: 8,
            gap_ms: (300, 1_500),
            quiesce_timeout: Duration::from_secs(90),
            dir,
            exe,
            listen: true,
        }
    }

    /// The long form (`scripts/chaos --long`): ~14,000 jobs over six minutes.
    pub fn long(seed: u64, dir: PathBuf, exe: PathBuf) -> Config {
        Config {
            size: Size {
                jobs: 12_000,
                key_rounds: 800,
                racers: 3,
                keys: 20,
            },
            workers: 6,
            concurrency: 8,
            load: Duration::from_secs(360),
            min_faults: 40,
            gap_ms: (500, 3_000),
            quiesce_timeout: Duration::from_secs(180),
            ..Config::short(seed, dir, exe)
        }
    }
}

struct Producers {
    tasks: Vec<JoinHandle<()>>,
    log: SharedLog,
}

impl Producers {
    fn start(jobs: &Jobs, plan: &Plan, period: Duration) -> Producers {
        let log: SharedLog = Arc::default();
        let half = plan.jobs.len() / 2;
        let tasks = vec![
            tokio::spawn(load::spread(
                jobs.clone(),
                plan.jobs[..half].to_vec(),
                period,
                log.clone(),
            )),
            tokio::spawn(load::burst(
                jobs.clone(),
                plan.jobs[half..].to_vec(),
                period,
                8,
                log.clone(),
            )),
            tokio::spawn(load::race(
                jobs.clone(),
                plan.key_rounds.clone(),
                period,
                log.clone(),
            )),
        ];
        Producers { tasks, log }
    }

    fn finished(&self) -> bool {
        self.tasks.iter().all(JoinHandle::is_finished)
    }

    /// Waits for the producers (normally already done), aborting them after `bound`.
    async fn finish(&mut self, bound: Duration) {
        for task in &mut self.tasks {
            if tokio::time::timeout(bound, &mut *task).await.is_err() {
                task.abort();
            }
        }
    }

    fn take_log(&self) -> EnqueueLog {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// One run; the report's `violations` list every broken guarantee.
pub async fn run(cfg: &Config) -> anyhow::Result<Report> {
    eprintln!(
        "plainjobs-chaos: seed {} (replay with CHAOS_SEED={} or --seed {}); run directory {}",
        cfg.seed,
        cfg.seed,
        cfg.seed,
        cfg.dir.display()
    );
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let plan = Plan::draw(&mut rng, &cfg.size);
    if let Some(root) = cfg.dir.parent() {
        crate::cluster::stop_orphaned(root);
    }
    // A replay of a seed reuses its directory: start it afresh.
    if cfg.dir.exists() {
        std::fs::remove_dir_all(&cfg.dir)
            .with_context(|| format!("clear {}", cfg.dir.display()))?;
    }
    std::fs::create_dir_all(&cfg.dir).with_context(|| format!("create {}", cfg.dir.display()))?;
    let dir = cfg.dir.join("pg");
    let mut cluster =
        tokio::task::block_in_place(|| Cluster::start(&dir, &ClusterOptions::default()))?;
    let url = cluster.create_database("chaos").await?;
    let jobs = Jobs::connect(&format!("{url}?application_name=chaos-enqueue")).await?;
    jobs.migrate().await?;
    let db = PgPoolOptions::new()
        .max_connections(4)
        .connect(&format!("{url}?application_name=orchestrator"))
        .await?;
    let spec = FleetSpec {
        exe: cfg.exe.clone(),
        dir: cfg.dir.clone(),
        url,
        concurrency: cfg.concurrency,
        listen: cfg.listen,
        prefix: Vec::new(),
    };
    let mut fleet = Fleet::start(spec, cfg.workers)?;
    let mut producers = Producers::start(&jobs, &plan, cfg.load);
    let stop_sampler = Arc::new(AtomicBool::new(false));
    let bound = cfg.load * 3 + cfg.quiesce_timeout + Duration::from_secs(600);
    let sampler = tokio::spawn(sampler::watch_keys(db.clone(), stop_sampler.clone(), bound));

    let fault_log = {
        let mut lab = Lab {
            fleet: &mut fleet,
            cluster: &cluster,
            db: &db,
            started,
        };
        inject_faults(cfg, &plan, &producers, &mut lab, &mut rng).await?
    };
    producers.finish(Duration::from_secs(120)).await;
    let quiesced = quiesce(&db, &mut fleet, cfg.quiesce_timeout).await?;
    stop_sampler.store(true, Ordering::Relaxed);
    let key_samples = sampler.await.unwrap_or_default();
    let workers_killed_at_shutdown = fleet.shutdown(Duration::from_secs(30)).await?;
    let facts = facts::read(&db).await?;
    let events = runlog::read_dir(&cfg.dir)?;
    let enqueued = producers.take_log();
    let findings = check::check(&Evidence {
        facts: &facts,
        events: &events,
        enqueued: &enqueued,
        faults: &fault_log,
    });
    db.close().await;
    drop(jobs);
    let postmaster = cluster.postmaster_pid();
    cluster.stop()?;
    let mut violations = findings.violations.clone();
    violations.extend(run_violations(quiesced, &key_samples, &fleet, postmaster));
    let report = Report {
        seed: cfg.seed,
        config: serde_json::to_value(cfg)?,
        duration_s: started.elapsed().as_secs_f64(),
        quiesced_after_s: quiesced.map(|d| d.as_secs_f64()),
        faults: summarize_faults(&fault_log),
        findings,
        key_samples,
        unexpected_worker_exits: fleet.unexpected_exits.clone(),
        workers_killed_at_shutdown,
        violations,
        fault_log,
    };
    std::fs::write(
        cfg.dir.join("summary.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    Ok(report)
}

/// Faults one after another, each once the previous one was recovered from (or its bound
/// passed), until the producers are done and at least `min_faults` were injected.
async fn inject_faults(
    cfg: &Config,
    plan: &Plan,
    producers: &Producers,
    lab: &mut Lab<'_>,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<Vec<FaultRecord>> {
    let hard_stop = cfg.load * 3 + Duration::from_secs(300);
    let mut log = Vec::new();
    for kind in plan.faults.iter().copied() {
        let enough = producers.finished() && log.len() >= cfg.min_faults;
        if enough || lab.started.elapsed() > hard_stop {
            break;
        }
        let gap = rng.gen_range(cfg.gap_ms.0..=cfg.gap_ms.1);
        tokio::time::sleep(Duration::from_millis(gap)).await;
        lab.fleet.restart_exited()?;
        let record = faults::inject(kind, lab, rng).await?;
        eprintln!(
            "plainjobs-chaos: {:>6.1}s {:<18} {:<28} recovered in {}",
            record.at_s,
            kind.name(),
            record.target,
            record
                .recovery_ms
                .map_or("(not within the bound)".into(), |ms| format!("{ms} ms"))
        );
        log.push(record);
    }
    Ok(log)
}

/// Waits until nothing is left to do, restarting workers that exited on their own meanwhile.
async fn quiesce(
    db: &PgPool,
    fleet: &mut Fleet,
    bound: Duration,
) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    while started.elapsed() < bound {
        fleet.restart_exited()?;
        if let Ok(true) = probe::quiet(db, TIMINGS.heartbeat_timeout).await {
            return Ok(Some(started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(None)
}

fn run_violations(
    quiesced: Option<Duration>,
    keys: &KeySamples,
    fleet: &Fleet,
    postmaster: Option<i32>,
) -> Vec<String> {
    let mut v = Vec::new();
    if quiesced.is_none() {
        v.push("jobs were still pending or owed a retry when the quiescence bound passed".into());
    }
    for (key, rows) in &keys.shared {
        v.push(format!(
            "key {key} held by {rows} requests/processes at once"
        ));
    }
    let left: Vec<u32> = fleet
        .all_pids
        .iter()
        .copied()
        .filter(|p| pid_exists(*p))
        .collect();
    if !left.is_empty() {
        v.push(format!(
            "worker processes still running after shutdown: {left:?}"
        ));
    }
    if let Some(pid) = postmaster.and_then(|p| u32::try_from(p).ok()) {
        if pid_exists(pid) {
            v.push(format!("the cluster's postmaster ({pid}) is still running"));
        }
    }
    v
}
