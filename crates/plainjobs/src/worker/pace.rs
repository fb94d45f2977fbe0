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

/// What the worker did, for the stats line and [`WorkerHandle::counters`](super::WorkerHandle::counters).
#[derive(Default)]
pub(crate) struct Counters {
    pub claimed: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub deferred: AtomicU64,
    claims: AtomicU64,
    short_claims: AtomicU64,
    empty_claims: AtomicU64,
}

/// A snapshot of what a running worker has done so far ([`WorkerHandle::counters`](super::WorkerHandle::counters)),
/// for benchmarks and monitoring. Counts only; reading them changes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerCounters {
    /// Claim statements that succeeded.
    pub claims: u64,
    /// Claims that came back with fewer jobs than they asked for, but some.
    pub short_claims: u64,
    /// Claims that came back with no job at all.
    pub empty_claims: u64,
    /// Jobs taken, by claims and by local dispatch.
    pub claimed: u64,
    /// Jobs that ended successfully.
    pub succeeded: u64,
    /// Jobs that ended in failure (errored, cancelled).
    pub failed: u64,
    /// Jobs that asked to be deferred.
    pub deferred: u64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A claim that asked for `wanted` jobs got `got`.
    pub fn record_claim(&self, wanted: usize, got: usize) {
        Counters::add(&self.claims, 1);
        Counters::add(&self.claimed, got as u64);
        if got == 0 {
            Counters::add(&self.empty_claims, 1);
        } else if got < wanted {
            Counters::add(&self.short_claims, 1);
        }
    }

    /// Everything counted so far.
    pub fn report(&self) -> WorkerCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WorkerCounters {
            claims: get(&self.claims),
            short_claims: get(&self.short_claims),
            empty_claims: get(&self.empty_claims),
            claimed: get(&self.claimed),
            succeeded: get(&self.succeeded),
            failed: get(&self.failed),
            deferred: get(&self.deferred),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_counted_as_full_short_or_empty() {
        let c = Counters::default();
        c.record_claim(10, 10);
        c.record_claim(10, 4);
        c.record_claim(10, 0);
        let r = c.report();
        assert_eq!(
            (r.claims, r.short_claims, r.empty_claims, r.claimed),
            (3, 1, 1, 14)
        );
    }
}
