//! One clock for every process on this machine: enqueue-to-start latency is measured from a
//! timestamp the producer puts in the job's parameters to the moment the worker — maybe
//! another process — enters the handler. `Instant` cannot cross a process boundary;
//! `CLOCK_MONOTONIC` can (it is the same clock in every process, and never steps).

use nix::time::{clock_gettime, ClockId};

/// Nanoseconds on `CLOCK_MONOTONIC`.
pub fn now_ns() -> u64 {
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is always readable");
    let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec()).unwrap_or(0);
    secs * 1_000_000_000 + nanos
}
