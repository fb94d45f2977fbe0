//! The worker's own vacuum of the request and process tables.
//!
//! Claims leave a dead entry per job at the head of the claim index; each later claim walks over
//! them until vacuum removes them, which autovacuum does once a minute at best. So after every
//! [`VACUUM_EVERY`] claimed jobs, and as soon as the queue runs dry after [`VACUUM_WHEN_DRY`]
//! (so the first job after a burst does not walk over the burst's dead entries), the worker
//! vacuums them itself, in the background.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::core::Core;

const VACUUM_EVERY: u64 = 50_000;
const VACUUM_WHEN_DRY: u64 = 1_000;

#[derive(Default)]
pub(crate) struct VacuumSchedule {
    claimed_since: AtomicU64,
    running: AtomicBool,
}

/// Counts `claimed` jobs and starts a vacuum when one is due (`dry`: the claim came back short).
pub(crate) fn vacuum_when_due(core: &Arc<Core>, claimed: usize, dry: bool) {
    let v = &core.vacuum;
    let since = v.claimed_since.fetch_add(claimed as u64, Ordering::Relaxed) + claimed as u64;
    let due = since >= VACUUM_EVERY || (dry && since >= VACUUM_WHEN_DRY);
    if !due || v.running.swap(true, Ordering::AcqRel) {
        return;
    }
    v.claimed_since.store(0, Ordering::Relaxed);
    let core = core.clone();
    tokio::spawn(async move {
        let began = Instant::now();
        match core.store().vacuum_requests().await {
            Ok(()) => tracing::debug!(
                took_ms = began.elapsed().as_millis() as u64,
                "vacuumed the request table"
            ),
            Err(e) => {
                tracing::debug!(error = %e, "could not vacuum the request table (autovacuum will)")
            }
        }
        core.vacuum.running.store(false, Ordering::Release);
    });
}
