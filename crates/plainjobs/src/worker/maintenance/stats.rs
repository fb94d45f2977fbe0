//! The periodic stats line (`WorkerConfig::stats_interval`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::worker::ledger::Ledger;
use crate::worker::pace::Counters;

/// Logs throughput every `every` until `done`; a period in which nothing was claimed or
/// finished logs nothing (an idle worker's log stays quiet).
pub(crate) async fn stats_loop(
    counters: &Counters,
    ledger: &Ledger,
    every: Duration,
    done: CancellationToken,
) {
    let mut last = [0u64; 4];
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let now = counters.snapshot();
        let [claimed, succeeded, failed, deferred] = std::array::from_fn(|i| now[i] - last[i]);
        if claimed + succeeded + failed + deferred == 0 {
            continue;
        }
        let secs = every.as_secs_f64().max(0.001);
        tracing::info!(
            claimed,
            succeeded,
            failed,
            deferred,
            per_second = format!("{:.1}", (succeeded + failed + deferred) as f64 / secs),
            holding = ledger.held_count(),
            "worker stats"
        );
        last = now;
    }
}
