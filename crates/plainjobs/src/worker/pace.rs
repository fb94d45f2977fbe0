//! How fast jobs run, and so how many may be claimed ahead of a free slot; counters for the
//! stats line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Jobs claimed ahead should start within this long.
pub(crate) const START_SOON: Duration = Duration::from_millis(50);

/// A moving average of how long jobs take.
#[derive(Default)]
pub(crate) struct Pace {
    /// In microseconds (0: no job ran yet).
    avg_run_us: AtomicU64,
}

impl Pace {
    pub fn record_run(&self, took: Duration) {
        let took = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let old = self.avg_run_us.load(Ordering::Relaxed);
        let new = if old == 0 { took } else { (old * 7 + took) / 8 };
        self.avg_run_us.store(new, Ordering::Relaxed);
    }

    /// How many jobs may wait locally so that each starts within [`START_SOON`]: with `slots`
    /// running jobs of the average duration, at most `max_pending`, and none before a job ran.
    pub fn claim_ahead(&self, max_pending: usize, slots: usize) -> usize {
        let avg = self.avg_run_us.load(Ordering::Relaxed);
        if avg == 0 || max_pending == 0 {
            return 0;
        }
        let soon = u64::try_from(START_SOON.as_micros()).unwrap_or(u64::MAX);
        let fits = (soon / avg).saturating_mul(slots as u64);
        usize::try_from(fits).unwrap_or(usize::MAX).min(max_pending)
    }
}

/// What the worker did, for the stats line.
#[derive(Default)]
pub(crate) struct Counters {
    pub claimed: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub deferred: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// (claimed, succeeded, failed, deferred) now.
    pub fn snapshot(&self) -> [u64; 4] {
        [
            self.claimed.load(Ordering::Relaxed),
            self.succeeded.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.deferred.load(Ordering::Relaxed),
        ]
    }
}
