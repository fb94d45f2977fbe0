//! What the dashboard's overview reads: the depth of each queue, and results counted per
//! minute as they are written.

use chrono::{DateTime, Utc};

/// One queue's pending and claimed jobs.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct QueueDepth {
    /// The queue.
    pub queue: String,
    /// Requests ready to run.
    pub ready: i64,
    /// Requests scheduled for later.
    pub scheduled: i64,
    /// Claimed, not started.
    pub waiting: i64,
    /// Running.
    pub running: i64,
    /// When the oldest ready request became ready (its `start_at`, else its `created_at`).
    pub oldest_ready: Option<DateTime<Utc>>,
}

/// Results written in one minute, of one queue and status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(feature = "admin"), allow(dead_code))] // the dashboard's alone
pub(crate) struct MinuteCount {
    /// The minute, as Unix seconds (a multiple of 60).
    pub minute: i64,
    pub queue: String,
    /// The status as stored.
    pub status: String,
    pub count: i64,
    /// How many of them were retried or are retries.
    pub retried: i64,
}

/// Results counted by [`Inspect::count_results_after`](super::Inspect::count_results_after).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(not(feature = "admin"), allow(dead_code))] // the dashboard's alone
pub(crate) struct CountedResults {
    pub counts: Vec<MinuteCount>,
    /// Every result with an id up to this one is counted (or settled when counted in a
    /// previous call): the next call starts after it.
    pub through_id: i64,
}
