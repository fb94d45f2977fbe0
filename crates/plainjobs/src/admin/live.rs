//! The overview's one shared refresh: a task per dashboard reads the queues, the workers and
//! the results written since its last pass, every `interval` while anyone watches, and
//! publishes a [`Snapshot`]. Pages and their live updates read the latest snapshot, so any
//! number of browsers cost one set of queries per interval; with nobody watching, the task
//! sleeps.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{watch, Notify};

use super::trend::Trend;
use crate::model::WorkerHeartbeat;
use crate::store::QueueDepth;
use crate::Jobs;

/// How long ago a result must have been written to be counted (see `count_results_after`).
const SETTLE: Duration = Duration::from_secs(2);
/// Result ids read per statement when catching up.
const SPAN: i64 = 100_000;
/// Statements per pass at most when catching up (a backlog of counts is read over passes).
const SPANS_PER_PASS: usize = 50;
/// The queue depths read the whole request and process tables (no index counts them), which
/// takes a while on a big backlog; a read that took `d` is not repeated for `DEPTHS_BUDGET × d`
/// (at most 1 % of one core), nor sooner than the next pass.
const DEPTHS_BUDGET: u32 = 100;

/// What the overview shows, as of `taken_at`.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub taken_at: DateTime<Utc>,
    pub depths: Vec<QueueDepth>,
    /// When `depths` were read (older than `taken_at` on a big backlog: see [`DEPTHS_BUDGET`]).
    pub depths_taken_at: Option<DateTime<Utc>>,
    pub workers: Vec<WorkerHeartbeat>,
    /// The paused queues' names.
    pub paused: Vec<String>,
    pub trend: Trend,
    /// The last pass failed: why (details are logged, not shown).
    pub failed: bool,
}

/// The refresh task's shared state.
pub(crate) struct Live {
    jobs: Jobs,
    interval: Duration,
    window: Duration,
    latest: watch::Sender<Option<Arc<Snapshot>>>,
    wake: Notify,
    last_demand: Mutex<Instant>,
    started: OnceLock<()>,
}

/// Where counting results has got to.
struct Counting {
    trend: Trend,
    /// Results up to this id are counted.
    through_id: Option<i64>,
    last_pass: Option<Instant>,
}

/// The queue depths last read, and when they may be read again.
#[derive(Default)]
struct Depths {
    last: Option<(Vec<QueueDepth>, DateTime<Utc>)>,
    due: Option<Instant>,
}

/// How long to wait before reading the depths again after a read that took `took`.
fn depths_pause(took: Duration) -> Duration {
    took * DEPTHS_BUDGET
}

impl Live {
    pub(crate) fn new(jobs: Jobs, interval: Duration, window: Duration) -> Arc<Live> {
        Arc::new(Live {
            jobs,
            interval,
            window,
            latest: watch::Sender::new(None),
            wake: Notify::new(),
            last_demand: Mutex::new(Instant::now()),
            started: OnceLock::new(),
        })
    }

    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// The latest snapshot, waiting (up to 10 s) for a fresh one when the last is older than
    /// two intervals (the task was asleep). Counts as someone watching.
    pub(crate) async fn latest(self: &Arc<Self>) -> Option<Arc<Snapshot>> {
        *self.last_demand.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.started.get_or_init(|| {
            tokio::spawn(run(Arc::downgrade(self)));
        });
        self.wake.notify_one();
        let mut rx = self.latest.subscribe();
        let fresh = |s: &Option<Arc<Snapshot>>| {
            s.as_ref().is_some_and(|s| {
                let age = (Utc::now() - s.taken_at).to_std().unwrap_or_default();
                age <= self.interval * 2 + Duration::from_secs(1)
            })
        };
        let waited = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(fresh))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|snapshot| snapshot.clone());
        match waited {
            Some(snapshot) => snapshot,
            None => rx.borrow().clone(),
        }
    }

    /// Whether someone asked within the last three intervals.
    fn watched(&self) -> bool {
        let last = *self.last_demand.lock().unwrap_or_else(|e| e.into_inner());
        last.elapsed() < self.interval * 3
    }
}

/// The refresh loop: a pass every interval while watched, asleep otherwise. Ends once the
/// dashboard is dropped (it holds the only strong reference).
async fn run(live: Weak<Live>) {
    let mut counting = Counting {
        trend: Trend::default(),
        through_id: None,
        last_pass: None,
    };
    let mut depths = Depths::default();
    loop {
        let Some(live) = live.upgrade() else {
            return;
        };
        if !live.watched() {
            // Checks now and then that the dashboard still exists.
            let _ = tokio::time::timeout(Duration::from_secs(30), live.wake.notified()).await;
            continue;
        }
        let snapshot = pass(&live, &mut counting, &mut depths).await;
        live.latest.send_replace(Some(Arc::new(snapshot)));
        let interval = live.interval;
        drop(live);
        tokio::time::sleep(interval).await;
    }
}

/// One refresh: queue depths, workers, and the results written since the last pass. What
/// fails keeps its previous value, and the snapshot says that it failed.
async fn pass(live: &Live, counting: &mut Counting, depths: &mut Depths) -> Snapshot {
    let read = read_depths(live, depths).await;
    let workers = live.jobs.workers().await;
    let counted = count_new_results(live, counting).await;
    let paused = paused_queues(live).await;
    let errors = [
        read.as_ref().err(),
        workers.as_ref().err(),
        counted.as_ref().err(),
    ];
    for e in errors.iter().flatten() {
        tracing::warn!(error = %e, "dashboard refresh failed");
    }
    let failed = errors.iter().any(Option::is_some);
    let previous = live.latest.borrow().clone();
    Snapshot {
        taken_at: Utc::now(),
        depths: depths
            .last
            .as_ref()
            .map(|d| d.0.clone())
            .unwrap_or_default(),
        depths_taken_at: depths.last.as_ref().map(|d| d.1),
        workers: workers
            .ok()
            .or_else(|| previous.as_ref().map(|p| p.workers.clone()))
            .unwrap_or_default(),
        paused: paused
            .or_else(|| previous.as_ref().map(|p| p.paused.clone()))
            .unwrap_or_default(),
        trend: counting.trend.clone(),
        failed,
    }
}

/// Reads the queue depths when they are due (see [`DEPTHS_BUDGET`]); a failed read keeps
/// the last ones.
async fn read_depths(live: &Live, depths: &mut Depths) -> crate::Result<()> {
    if depths.due.is_some_and(|due| Instant::now() < due) {
        return Ok(());
    }
    let started = Instant::now();
    let taken_at = Utc::now();
    let read = live.jobs.queue_depths().await;
    depths.due = Some(started + depths_pause(started.elapsed()));
    depths.last = Some((read?, taken_at));
    Ok(())
}

/// The paused queues; None when they cannot be read (a schema older than pausing is not a
/// failure of the refresh: it has none).
async fn paused_queues(live: &Live) -> Option<Vec<String>> {
    match live.jobs.paused_queues().await {
        Ok(paused) => Some(paused.into_iter().map(|p| p.queue).collect()),
        Err(e) => {
            tracing::debug!(error = %e, "dashboard: could not read the paused queues");
            None
        }
    }
}

/// Adds the results written since the last pass to the trend; after a long sleep (or at
/// first) starts again from the window's first result.
async fn count_new_results(live: &Live, counting: &mut Counting) -> crate::Result<()> {
    let store = live.jobs.store();
    let slept = counting.last_pass.is_none_or(|t| t.elapsed() > live.window);
    if slept || counting.through_id.is_none() {
        counting.trend = Trend::default();
        counting.through_id = Some(store.results_start(live.window).await?);
    }
    counting.last_pass = Some(Instant::now());
    let mut through = counting.through_id.unwrap_or(0);
    for _ in 0..SPANS_PER_PASS {
        let counted = store.count_results_after(through, SPAN, SETTLE).await?;
        counting.trend.add(&counted.counts);
        let advanced = counted.through_id - through;
        through = counted.through_id;
        counting.through_id = Some(through);
        if advanced < SPAN {
            break;
        }
    }
    let window_minutes = i64::try_from(live.window.as_secs() / 60).unwrap_or(i64::MAX);
    let now_minute = Utc::now().timestamp() / 60 * 60;
    counting.trend.keep_from(now_minute - window_minutes * 60);
    Ok(())
}
