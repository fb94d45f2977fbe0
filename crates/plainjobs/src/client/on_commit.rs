//! Counting enqueues made in the caller's transaction once it commits: their rows are looked
//! up a moment later, by a task that runs only while some wait, and those found are counted
//! (`messaging.client.sent.messages`); a rolled-back enqueue is never found, never counted, and
//! forgotten after [`GIVE_UP`].

use std::time::Duration;

use uuid::Uuid;

use crate::store::NewRequest;
use crate::telemetry::hooks::Metrics;
use crate::Jobs;

/// How often waiting enqueues are looked up.
#[cfg(feature = "otel")]
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// A transaction open longer than this is taken for rolled back.
#[cfg(feature = "otel")]
const GIVE_UP: Duration = Duration::from_secs(3600);

/// Counts the `uuids` (all of one transaction, of `req`'s queue and job) once they commit.
#[cfg(feature = "otel")]
pub(crate) fn count_on_commit(
    jobs: &Jobs,
    metrics: &Metrics,
    uuids: Vec<Uuid>,
    req: &NewRequest,
    took: Duration,
) {
    let Some(&probe) = uuids.first() else {
        return;
    };
    let send = crate::telemetry::pending::PendingSend {
        probe,
        count: uuids.len() as u64,
        queue: req.queue.clone(),
        job_class: req.job_class.clone(),
        took,
        since: std::time::Instant::now(),
    };
    if metrics.pending().push(send) {
        tokio::spawn(look_up(jobs.clone(), metrics.clone()));
    }
}

#[cfg(not(feature = "otel"))]
pub(crate) fn count_on_commit(
    _: &Jobs,
    metrics: &Metrics,
    _: Vec<Uuid>,
    _: &NewRequest,
    _: Duration,
) {
    match *metrics {}
}

#[cfg(feature = "otel")]
async fn look_up(jobs: Jobs, metrics: Metrics) {
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        let sends = metrics.pending().take();
        if sends.is_empty() {
            if metrics.pending().done_if_empty() {
                return;
            }
            continue;
        }
        let probes: Vec<Uuid> = sends.iter().map(|s| s.probe).collect();
        let found = match jobs.store().locate_requests(&probes).await {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(error = %e, "cannot look up enqueues made in transactions; looking again");
                metrics.pending().give_back(sends);
                continue;
            }
        };
        let mut waiting = Vec::new();
        for send in sends {
            if found.iter().any(|(uuid, _)| *uuid == send.probe) {
                metrics.sent_many(&send.queue, &send.job_class, send.count, send.took);
            } else if send.since.elapsed() < GIVE_UP {
                waiting.push(send);
            }
        }
        metrics.pending().give_back(waiting);
    }
}
