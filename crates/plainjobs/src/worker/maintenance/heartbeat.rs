//! The heartbeat: this worker's row refreshed every `heartbeat_interval`; while it cannot be
//! written, claiming pauses (and the rescue of others waits).

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::store::{NewHeartbeat, Store};
use crate::telemetry::hooks as otel;
use crate::worker::core::Health;

/// While the heartbeat fails, try again this often at most.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Refreshes `registration`'s row until `done`, recording what it learns in `health`.
pub(crate) async fn heartbeat_loop(
    store: &dyn Store,
    registration: &NewHeartbeat,
    every: Duration,
    health: &Health,
    done: CancellationToken,
) {
    let mut next = every;
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(next) => {}
        }
        let sent_at = Instant::now();
        next = match store.heartbeat(registration).await {
            Ok(recreated) => {
                health.written(sent_at);
                if recreated {
                    // Our row was gone: a rescuer may have turned our jobs LOST (and retried
                    // them). Jobs claimed ahead and not started go back rather than run twice.
                    tracing::warn!("this worker's heartbeat row was gone; re-registered");
                    health.note_reregistered();
                }
                if !health.set_ok(true) {
                    tracing::info!("heartbeat written again; claiming resumes");
                }
                every
            }
            Err(e) => {
                let first = health.set_ok(false);
                otel::error_span(otel::HEARTBEAT_ERROR_SPAN, &e, || {
                    if first {
                        tracing::warn!(error = %e, "cannot write the heartbeat; claiming paused until it can");
                    }
                });
                every.min(RETRY_EVERY)
            }
        };
    }
}
