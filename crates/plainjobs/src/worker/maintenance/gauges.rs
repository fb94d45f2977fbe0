//! The observable gauges' readings (feature `otel`): queue depth, scheduled, oldest age,
//! running, and heartbeats active or stale, read from the database at most once per
//! interval for the whole process (workers sharing metrics share one reading) and only while
//! metrics are on. No span: a reading is not work anyone asked for.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::telemetry::gauges::QueueGauge;
use crate::telemetry::Metrics;
use crate::worker::core::Core;
use crate::Result;

/// Reads the gauges every interval until `done`.
pub(crate) async fn gauges_loop(core: &Core, metrics: Metrics, done: CancellationToken) {
    loop {
        if metrics.gauges().claim_refresh() {
            if let Err(e) = read(core, &metrics).await {
                tracing::debug!(error = %e, "could not read the queue gauges; trying at the next interval");
            }
        }
        // A little past the interval, so the next claim finds it elapsed.
        let wait = metrics.gauges().interval() + Duration::from_millis(5);
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn read(core: &Core, metrics: &Metrics) -> Result<()> {
    let store = core.store();
    let now = store.now().await?;
    let depths = store.queue_depths().await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let queues = core
        .queues()
        .iter()
        .map(|queue| {
            let gauge = depths
                .iter()
                .find(|d| &d.queue == queue)
                .map(|d| QueueGauge {
                    ready: count(d.ready),
                    scheduled: count(d.scheduled),
                    running: count(d.running),
                    oldest_age: d.oldest_ready.map_or(0.0, |at| {
                        ((now - at).num_milliseconds() as f64 / 1000.0).max(0.0)
                    }),
                })
                .unwrap_or_default();
            (queue.clone(), gauge)
        })
        .collect();
    let timeout =
        chrono::Duration::from_std(core.config.heartbeat_timeout).unwrap_or(chrono::Duration::MAX);
    let workers = store.workers().await?;
    let active = workers
        .iter()
        .filter(|w| now - w.last_heartbeat_at <= timeout)
        .count() as u64;
    let stale = workers.len() as u64 - active;
    metrics.gauges().publish(queues, (active, stale));
    Ok(())
}
