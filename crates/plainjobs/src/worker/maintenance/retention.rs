//! Retention: results older than `retention` are deleted, in batches, a bounded time per tick.

use std::time::{Duration, Instant};

use crate::store::Store;
use crate::worker::core::Shutdown;

/// Results deleted per statement.
const BATCH: i64 = 5_000;

/// The longest one pass deletes before it lets the next tick carry on: a table with millions of
/// results past retention (a first run, a lowered retention) is worked off a second per tick
/// instead of keeping the database busy until it is done.
const BUDGET: Duration = Duration::from_secs(1);

/// Deletes results past `retention` for at most [`BUDGET`]. Returns whether more are left.
pub(crate) async fn retention_pass(
    store: &dyn Store,
    retention: Duration,
    shutdown: &Shutdown,
) -> bool {
    let began = Instant::now();
    let mut deleted = 0u64;
    let more = loop {
        if shutdown.is_stopping() {
            break false;
        }
        match store.delete_results_before(retention, BATCH).await {
            Ok(n) => {
                deleted += n;
                if n < BATCH as u64 {
                    break false;
                }
                if began.elapsed() >= BUDGET {
                    break true;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not delete old results");
                break false;
            }
        }
    };
    if deleted > 0 {
        tracing::info!(deleted, more, "deleted results past retention");
    }
    more
}
