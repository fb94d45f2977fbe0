//! Results per minute, queue and status, kept in memory by the dashboard's refresh task: each
//! refresh adds the results written since the last one (`Inspect::count_results_after`), and
//! minutes older than the window fall off. The overview's cards, chart and throughputs are
//! read from here, never from the result table.

use std::collections::{BTreeMap, BTreeSet};

use crate::store::MinuteCount;

/// The statuses in the order the chart stacks them (bottom first), with their CSS names.
pub(crate) const STATUSES: [(&str, &str); 5] = [
    ("SUCCESSFUL", "successful"),
    ("DEFERRED", "deferred"),
    ("CANCELLED", "cancelled"),
    ("LOST", "lost"),
    ("ERRORED", "errored"),
];

/// Results counted by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// By [`STATUSES`] position.
    pub by_status: [i64; 5],
    /// Retried or retries.
    pub retried: i64,
}

impl Tally {
    pub(crate) fn total(&self) -> i64 {
        self.by_status.iter().sum()
    }

    /// The count of a status by its stored name.
    pub(crate) fn of(&self, status: &str) -> i64 {
        STATUSES
            .iter()
            .position(|(s, _)| *s == status)
            .map_or(0, |i| self.by_status[i])
    }

    fn add(&mut self, other: &Tally) {
        for (mine, theirs) in self.by_status.iter_mut().zip(other.by_status) {
            *mine += theirs;
        }
        self.retried += other.retried;
    }
}

/// Per-minute tallies per queue over a window of minutes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trend {
    minutes: BTreeMap<i64, BTreeMap<String, Tally>>,
}

impl Trend {
    /// Adds counted results.
    pub(crate) fn add(&mut self, counts: &[MinuteCount]) {
        for c in counts {
            let tally = self
                .minutes
                .entry(c.minute)
                .or_default()
                .entry(c.queue.clone())
                .or_default();
            if let Some(i) = STATUSES.iter().position(|(s, _)| *s == c.status) {
                tally.by_status[i] += c.count;
            }
            tally.retried += c.retried;
        }
    }

    /// Forgets the minutes before `first_minute`.
    pub(crate) fn keep_from(&mut self, first_minute: i64) {
        self.minutes = self.minutes.split_off(&first_minute);
    }

    /// Everything from `first_minute` on.
    pub(crate) fn total_since(&self, first_minute: i64) -> Tally {
        let mut total = Tally::default();
        for queues in self.minutes.range(first_minute..).map(|(_, q)| q) {
            queues.values().for_each(|t| total.add(t));
        }
        total
    }

    /// `n` buckets of `size` minutes each, the first starting at `first_minute` (Unix seconds),
    /// all queues together or one.
    pub(crate) fn buckets(
        &self,
        first_minute: i64,
        size: i64,
        n: usize,
        queue: Option<&str>,
    ) -> Vec<(i64, Tally)> {
        let size = size.max(1);
        let mut out: Vec<(i64, Tally)> = (0..n as i64)
            .map(|i| (first_minute + i * size * 60, Tally::default()))
            .collect();
        let end = first_minute + n as i64 * size * 60;
        for (minute, queues) in self.minutes.range(first_minute..end) {
            let i = usize::try_from((minute - first_minute) / (size * 60)).unwrap_or(0);
            let Some((_, bucket)) = out.get_mut(i) else {
                continue;
            };
            for (name, tally) in queues {
                if queue.is_none_or(|q| q == name) {
                    bucket.add(tally);
                }
            }
        }
        out
    }

    /// The queues that wrote results in the window.
    pub(crate) fn queues(&self) -> BTreeSet<String> {
        self.minutes
            .values()
            .flat_map(|q| q.keys().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(minute: i64, queue: &str, status: &str, n: i64) -> MinuteCount {
        MinuteCount {
            minute,
            queue: queue.into(),
            status: status.into(),
            count: n,
            retried: 1,
        }
    }

    #[test]
    fn tallies_fill_buckets_by_minute_and_queue() {
        let mut trend = Trend::default();
        trend.add(&[
            count(0, "a", "SUCCESSFUL", 3),
            count(60, "a", "ERRORED", 2),
            count(60, "b", "SUCCESSFUL", 1),
            count(180, "b", "LOST", 4),
        ]);
        let buckets = trend.buckets(0, 2, 2, None);
        assert_eq!(buckets[0].0, 0);
        assert_eq!(buckets[1].0, 120);
        assert_eq!(buckets[0].1.total(), 6);
        assert_eq!(buckets[0].1.of("ERRORED"), 2);
        assert_eq!(buckets[1].1.of("LOST"), 4);
        assert_eq!(trend.buckets(0, 1, 4, Some("b"))[1].1.total(), 1);
        assert_eq!(trend.total_since(60).total(), 7);
        assert_eq!(trend.total_since(0).retried, 4);
        trend.keep_from(120);
        assert_eq!(trend.total_since(0).total(), 4);
        assert_eq!(trend.queues().into_iter().collect::<Vec<_>>(), ["b"]);
    }
}
