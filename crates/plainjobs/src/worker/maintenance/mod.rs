//! The worker's periodic duties, one file each: the heartbeat (a task of its own), and in the
//! maintenance task — rescue, the retry pass, retention and the schedules, each at its own
//! interval — and the stats line.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::core::Core;

#[cfg(feature = "otel")]
mod gauges;
mod heartbeat;
mod rescue;
mod retention;
mod retries;
mod schedules;
mod stats;

#[cfg(feature = "otel")]
pub(crate) use gauges::gauges_loop;
pub(crate) use heartbeat::heartbeat_loop;
pub(crate) use schedules::{Clock, ScheduledJob};
pub(crate) use stats::stats_loop;

/// When each duty last ran, and what it carries over to the next tick.
struct Due {
    last_rescue: Option<Instant>,
    last_retry: Instant,
    retry_cursor: i64,
    last_retention: Option<Instant>,
    retention_left: bool,
}

/// Runs rescue, the retry pass, retention and the scheduling pass, each at its own interval,
/// until `done`.
pub(crate) async fn maintenance_loop(
    core: Arc<Core>,
    mut schedules: Vec<ScheduledJob>,
    clock: Option<Clock>,
    done: CancellationToken,
) {
    let cfg = &core.config;
    let queues: HashSet<String> = core.queues().iter().cloned().collect();
    for s in schedules.iter_mut().filter(|s| s.zone_from_config) {
        s.schedule = s.schedule.clone().with_timezone(cfg.timezone);
    }
    let tick = cfg
        .rescue_interval
        .min(cfg.retry_interval)
        .min(Duration::from_secs(10))
        .max(Duration::from_millis(50));
    let mut due = Due {
        last_rescue: None,
        last_retry: Instant::now(),
        retry_cursor: 0,
        last_retention: None,
        retention_left: false,
    };
    loop {
        run_due(&core, &mut due).await;
        if !schedules.is_empty() && !core.shutdown.is_stopping() {
            if let Some(now) = schedule_now(&core, clock.as_ref()).await {
                schedules::schedule_pass(&core.jobs, &queues, &mut schedules, now).await;
            }
        }
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

/// Rescue, the retry pass and retention, those whose interval has passed.
async fn run_due(core: &Core, due: &mut Due) {
    let cfg = &core.config;
    if due
        .last_rescue
        .is_none_or(|t| t.elapsed() >= cfg.rescue_interval)
    {
        rescue::rescue(core).await;
        due.last_rescue = Some(Instant::now());
    }
    if due.last_retry.elapsed() >= cfg.retry_interval {
        let queues = core.queues();
        retries::retry_pass(&core.jobs, &core.registry, queues, &mut due.retry_cursor).await;
        due.last_retry = Instant::now();
    }
    let retention_due = due
        .last_retention
        .is_none_or(|t| t.elapsed() >= cfg.retention_interval);
    if due.retention_left || retention_due {
        due.retention_left =
            retention::retention_pass(core.store(), cfg.retention, &core.shutdown).await;
        due.last_retention = Some(Instant::now());
    }
}

/// "Now" for the scheduling pass: the database's clock decides which occurrence is next, like
/// every other time (a test's clock when given).
async fn schedule_now(core: &Core, clock: Option<&Clock>) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Some(c) = clock {
        return Some(c());
    }
    match core.store().now().await {
        Ok(now) => Some(now),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the database clock; scheduling next tick");
            None
        }
    }
}
