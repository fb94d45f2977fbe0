//! The faults: each one is injected, then the orchestrator waits (bounded) for the system to
//! recover from it and records how long that took.

use std::time::{Duration, Instant};

use anyhow::Context;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use sqlx::PgPool;

use crate::cluster::Cluster;
use crate::fleet::Fleet;
use crate::probe::{self, poll_until};
use crate::worker::TIMINGS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A worker process SIGKILLed mid-run (then a new one started in its place).
    Sigkill,
    /// A worker frozen with SIGSTOP past the heartbeat timeout, then woken with SIGCONT.
    Sigstop,
    /// A worker stopped gracefully with SIGTERM (short jobs finish, long ones are cancelled).
    Sigterm,
    /// `pg_terminate_backend` on the sessions of one worker, of the enqueuers, or of all.
    TerminateBackends,
    /// `pg_ctl restart -m fast`.
    PgRestart,
    /// `pg_ctl restart -m immediate`: every backend killed, WAL replayed (a server crash).
    PgCrash,
}

impl FaultKind {
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Sigkill,
        FaultKind::Sigstop,
        FaultKind::Sigterm,
        FaultKind::TerminateBackends,
        FaultKind::PgRestart,
        FaultKind::PgCrash,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Sigkill => "sigkill",
            FaultKind::Sigstop => "sigstop",
            FaultKind::Sigterm => "sigterm",
            FaultKind::TerminateBackends => "terminate_backends",
            FaultKind::PgRestart => "pg_restart",
            FaultKind::PgCrash => "pg_crash",
        }
    }

    /// How often each kind is drawn after the first round.
    pub fn weight(self) -> u32 {
        match self {
            FaultKind::Sigkill | FaultKind::TerminateBackends => 3,
            FaultKind::Sigstop => 2,
            FaultKind::Sigterm | FaultKind::PgRestart | FaultKind::PgCrash => 1,
        }
    }
}

/// One injected fault and what followed.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    pub kind: FaultKind,
    /// Seconds since the run started.
    pub at_s: f64,
    /// Wall-clock microseconds since the Unix epoch, to compare with result times.
    pub at_us: i64,
    pub target: String,
    /// The worker process it hit, for the worker faults.
    pub pid: Option<u32>,
    /// Worker faults: until a peer had rescued the worker (its heartbeat row and processes
    /// gone); SIGTERM: until the worker had exited; database faults: until every worker had
    /// heartbeated again and results were being written again. None: not within the bound.
    pub recovery_ms: Option<u64>,
    /// SIGSTOP: from SIGCONT until the woken worker had registered again.
    pub reregistered_ms: Option<u64>,
}

/// What the faults act on.
pub struct Lab<'a> {
    pub fleet: &'a mut Fleet,
    pub cluster: &'a Cluster,
    pub db: &'a PgPool,
    pub started: Instant,
}

const RESCUE_BOUND: Duration = Duration::from_secs(30);

pub async fn inject(
    kind: FaultKind,
    lab: &mut Lab<'_>,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<FaultRecord> {
    let mut record = FaultRecord {
        kind,
        at_s: lab.started.elapsed().as_secs_f64(),
        at_us: crate::runlog::now_us(),
        target: String::new(),
        pid: None,
        recovery_ms: None,
        reregistered_ms: None,
    };
    let recovery = match kind {
        FaultKind::Sigkill => sigkill(lab, rng, &mut record).await?,
        FaultKind::Sigstop => sigstop(lab, rng, &mut record).await?,
        FaultKind::Sigterm => sigterm(lab, rng, &mut record).await?,
        FaultKind::TerminateBackends => terminate(lab, rng, &mut record).await?,
        FaultKind::PgRestart | FaultKind::PgCrash => {
            record.target = "postgres".into();
            restart(lab, kind == FaultKind::PgCrash).await?
        }
    };
    record.recovery_ms = recovery.map(|d| d.as_millis() as u64);
    Ok(record)
}

fn pick_worker(lab: &Lab<'_>, rng: &mut ChaCha8Rng, record: &mut FaultRecord) -> usize {
    let slot = rng.gen_range(0..lab.fleet.procs.len());
    let p = &lab.fleet.procs[slot];
    record.target = p.name.clone();
    record.pid = Some(p.pid);
    slot
}

/// The worker holding the most claimed-ahead jobs, else one at random: a frozen worker with
/// jobs it has claimed but not started is the case where, woken after the rescue, it might
/// start jobs that are no longer its own.
async fn pick_busy_worker(lab: &Lab<'_>, rng: &mut ChaCha8Rng, record: &mut FaultRecord) -> usize {
    let random = pick_worker(lab, rng, record);
    let Ok(Some((pid, ahead))) = probe::most_claimed_ahead(lab.db).await else {
        return random;
    };
    let Some(slot) = lab.fleet.procs.iter().position(|p| p.pid == pid) else {
        return random;
    };
    record.target = format!("{} ({ahead} claimed ahead)", lab.fleet.procs[slot].name);
    record.pid = Some(pid);
    slot
}

async fn sigkill(
    lab: &mut Lab<'_>,
    rng: &mut ChaCha8Rng,
    record: &mut FaultRecord,
) -> anyhow::Result<Option<Duration>> {
    let slot = pick_worker(lab, rng, record);
    // Not registered yet (or the lookup failed): nothing is known to wait for.
    let worker = probe::worker_id_of(lab.db, lab.fleet.procs[slot].pid)
        .await
        .ok()
        .flatten();
    let started = Instant::now();
    lab.fleet.kill_and_restart(slot).await?;
    let Some(worker) = worker else {
        return Ok(Some(started.elapsed())); // killed before it registered: nothing to rescue
    };
    let db = lab.db;
    Ok(poll_until(RESCUE_BOUND, || probe::rescued(db, worker))
        .await
        .map(|_| started.elapsed()))
}

async fn sigstop(
    lab: &mut Lab<'_>,
    rng: &mut ChaCha8Rng,
    record: &mut FaultRecord,
) -> anyhow::Result<Option<Duration>> {
    let slot = pick_busy_worker(lab, rng, record).await;
    let pid = lab.fleet.procs[slot].pid;
    let worker = probe::worker_id_of(lab.db, pid).await.ok().flatten();
    let started = Instant::now();
    lab.fleet.signal(slot, libc::SIGSTOP)?;
    let db = lab.db;
    let rescued = match worker {
        Some(w) => poll_until(RESCUE_BOUND, || probe::rescued(db, w)).await,
        None => {
            tokio::time::sleep(TIMINGS.heartbeat_timeout).await;
            None
        }
    };
    let recovery = rescued.map(|_| started.elapsed());
    // Frozen a while longer than the rescue took, so the woken worker finds its jobs gone.
    tokio::time::sleep(Duration::from_millis(rng.gen_range(0..1_000))).await;
    lab.fleet.signal(slot, libc::SIGCONT)?;
    record.reregistered_ms = poll_until(RESCUE_BOUND, || probe::registered(db, pid))
        .await
        .map(|d| d.as_millis() as u64);
    Ok(recovery)
}

async fn sigterm(
    lab: &mut Lab<'_>,
    rng: &mut ChaCha8Rng,
    record: &mut FaultRecord,
) -> anyhow::Result<Option<Duration>> {
    let slot = pick_worker(lab, rng, record);
    let bound = TIMINGS.shutdown_timeout + Duration::from_secs(15);
    let took = lab.fleet.terminate(slot, bound).await;
    lab.fleet.restart(slot)?;
    match took {
        Ok(took) => Ok(Some(took)),
        Err(e) => {
            record.target = format!("{} ({e:#})", record.target);
            Ok(None)
        }
    }
}

async fn terminate(
    lab: &mut Lab<'_>,
    rng: &mut ChaCha8Rng,
    record: &mut FaultRecord,
) -> anyhow::Result<Option<Duration>> {
    let pattern = match rng.gen_range(0..3) {
        0 => format!(
            "{}%",
            lab.fleet.procs[rng.gen_range(0..lab.fleet.procs.len())].name
        ),
        1 => "chaos-enqueue%".to_string(),
        _ => "chaos-%".to_string(),
    };
    let mark = probe::mark(lab.db).await?;
    let started = Instant::now();
    let ended = probe::terminate_backends(lab.db, &pattern).await?;
    record.target = format!("{pattern} ({ended} sessions)");
    let db = lab.db;
    Ok(
        poll_until(RESCUE_BOUND, || probe::recovered_since(db, mark))
            .await
            .map(|_| started.elapsed()),
    )
}

async fn restart(lab: &mut Lab<'_>, crash: bool) -> anyhow::Result<Option<Duration>> {
    let mark = probe::mark(lab.db).await?;
    let started = Instant::now();
    let cluster = lab.cluster;
    tokio::task::block_in_place(|| cluster.restart(crash)).context("restart the server")?;
    let db = lab.db;
    Ok(
        poll_until(Duration::from_secs(60), || probe::recovered_since(db, mark))
            .await
            .map(|_| started.elapsed()),
    )
}
