//! The benchmark's one job type and what its handler records.
//!
//! A job's parameters say what it does (nothing, sleep, carry padding) and, for timed jobs,
//! when the producer was about to enqueue it (see [`crate::clock`]). The handler records the
//! run — the request's uuid, so that a job run twice is caught exactly — and, for timed jobs,
//! the enqueue-to-start latency. Nothing is written to the database by the handler.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use plainjobs::{Job, JobContext, JobError, Outcome};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::now_ns;

/// Jobs that sleep at least this long count as "long" in the latency records (the 1 % of 1 s
/// jobs of the mixed shape); the rest are "short".
pub const LONG_JOB_MS: u32 = 100;

/// Parameters stay as small as the old no-op's when the optional fields are unused.
#[derive(Serialize, Deserialize, Clone, Default)]
pub struct BenchJob {
    pub seq: i64,
    /// `CLOCK_MONOTONIC` ns just before the enqueue call; present on timed jobs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_ns: Option<u64>,
    /// How long the handler sleeps (0: returns at once).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sleep_ms: u32,
    /// Padding, to give the parameters a size.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pad: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What a job of each shape looks like; `seq` and `sent_ns` are filled per job.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shape {
    pub sleep_ms: u32,
    pub pad_bytes: usize,
}

impl Shape {
    pub fn job(&self, seq: i64, sent_ns: Option<u64>) -> BenchJob {
        BenchJob {
            seq,
            sent_ns,
            sleep_ms: self.sleep_ms,
            pad: "x".repeat(self.pad_bytes),
        }
    }
}

impl Job for BenchJob {
    // The old benchmark's name, so the prefilled history and earlier runs' rows match.
    const NAME: &'static str = "bench.Noop";

    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let entered = now_ns();
        let recorder = ctx.state::<Arc<Recorder>>()?;
        if let Some(sent) = self.sent_ns {
            recorder.latency(self.sleep_ms >= LONG_JOB_MS, entered.saturating_sub(sent));
        }
        if self.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(u64::from(self.sleep_ms))).await;
        }
        recorder.ran(ctx.process().job_request_uuid);
        Ok(Outcome::Success)
    }
}

/// The handlers' records, shared by every job of one worker (its state).
#[derive(Default)]
pub struct Recorder {
    done: AtomicU64,
    runs: Mutex<Vec<Uuid>>,
    short_ns: Mutex<Vec<u64>>,
    long_ns: Mutex<Vec<u64>>,
}

/// A poisoned lock only means a handler panicked while pushing: the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Recorder {
    fn ran(&self, request: Uuid) {
        lock(&self.runs).push(request);
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    fn latency(&self, long: bool, ns: u64) {
        lock(if long { &self.long_ns } else { &self.short_ns }).push(ns);
    }

    /// Handlers that ran to the end so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// How many timed short jobs have started so far.
    pub fn short_started(&self) -> usize {
        lock(&self.short_ns).len()
    }

    /// Takes the request uuids of every run so far.
    pub fn take_runs(&self) -> Vec<Uuid> {
        std::mem::take(&mut lock(&self.runs))
    }

    /// Takes the latency samples (ns) so far: (short jobs, long jobs).
    pub fn take_latencies(&self) -> (Vec<u64>, Vec<u64>) {
        (
            std::mem::take(&mut lock(&self.short_ns)),
            std::mem::take(&mut lock(&self.long_ns)),
        )
    }
}
