//! The observable gauges' values: a snapshot a running worker fills from the database at most
//! once per interval ([`Gauges::claim_refresh`]), which the SDK's callbacks only read — so a
//! collection never queries the database, makes no span, and costs a lock and a copy.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;

use super::names::*;

/// One queue's gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct QueueGauge {
    pub ready: u64,
    pub scheduled: u64,
    pub running: u64,
    /// Seconds since the oldest ready request became ready; 0 with none.
    pub oldest_age: f64,
}

#[derive(Debug, Default)]
struct Snapshot {
    queues: BTreeMap<String, QueueGauge>,
    /// Heartbeats (active, stale); none until a worker has looked.
    workers: Option<(u64, u64)>,
}

/// The gauges' last readings and when they were taken.
pub(crate) struct Gauges {
    snapshot: Mutex<Snapshot>,
    interval_ms: AtomicU64,
    last: Mutex<Option<Instant>>,
}

impl Gauges {
    pub(crate) fn new(interval: Duration) -> Gauges {
        let gauges = Gauges {
            snapshot: Mutex::default(),
            interval_ms: AtomicU64::new(0),
            last: Mutex::new(None),
        };
        gauges.set_interval(interval);
        gauges
    }

    pub(crate) fn set_interval(&self, interval: Duration) {
        let ms = u64::try_from(interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.interval_ms.store(ms, Ordering::Relaxed);
    }

    pub(crate) fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.load(Ordering::Relaxed))
    }

    /// True for the one caller that should read the database now: none has in the last
    /// interval. Several workers of one process share one reading.
    pub(crate) fn claim_refresh(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let due = last.is_none_or(|at| at.elapsed() >= self.interval());
        if due {
            *last = Some(Instant::now());
        }
        due
    }

    /// A worker's readings: its queues (each one, zero when empty, so that dashboards do not
    /// keep a drained queue's last value) and the heartbeats.
    pub(crate) fn publish(&self, queues: Vec<(String, QueueGauge)>, workers: (u64, u64)) {
        let mut snapshot = self.snapshot.lock().unwrap_or_else(PoisonError::into_inner);
        snapshot.queues.extend(queues);
        snapshot.workers = Some(workers);
    }

    fn read<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        f(&self.snapshot.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Registers the five gauges on `meter`; their callbacks read this snapshot.
    pub(crate) fn register(self: &Arc<Self>, meter: &Meter) {
        let per_queue = |name: &'static str, what: &'static str, pick: fn(&QueueGauge) -> u64| {
            let gauges = self.clone();
            meter
                .u64_observable_gauge(name)
                .with_unit("{job}")
                .with_description(what)
                .with_callback(move |observer| {
                    gauges.read(|s| {
                        for (queue, g) in &s.queues {
                            observer.observe(pick(g), &[queue_attr(queue)]);
                        }
                    })
                })
                .build()
        };
        // The SDK keeps the callbacks for the provider's life; the handles need not be kept.
        per_queue(
            QUEUE_DEPTH,
            "Pending JobRequests ready to run, per queue.",
            |g| g.ready,
        );
        per_queue(
            QUEUE_SCHEDULED,
            "JobRequests with start_at in the future, per queue.",
            |g| g.scheduled,
        );
        per_queue(
            RUNNING,
            "JobProcess rows currently running, per queue.",
            |g| g.running,
        );
        let gauges = self.clone();
        meter
            .f64_observable_gauge(QUEUE_OLDEST_AGE)
            .with_unit("s")
            .with_description("Age of the oldest ready-to-run JobRequest, per queue.")
            .with_callback(move |observer| {
                gauges.read(|s| {
                    for (queue, g) in &s.queues {
                        observer.observe(g.oldest_age, &[queue_attr(queue)]);
                    }
                })
            })
            .build();
        let gauges = self.clone();
        meter
            .u64_observable_gauge(WORKERS)
            .with_unit("{worker}")
            .with_description(
                "WorkerHeartbeat row count, split by liveness state (active=within the heartbeat timeout, stale=past it).",
            )
            .with_callback(move |observer| {
                if let Some((active, stale)) = gauges.read(|s| s.workers) {
                    observer.observe(active, &[KeyValue::new(WORKER_STATE, "active")]);
                    observer.observe(stale, &[KeyValue::new(WORKER_STATE, "stale")]);
                }
            })
            .build();
    }
}

fn queue_attr(queue: &str) -> KeyValue {
    KeyValue::new(MESSAGING_DESTINATION_NAME, queue.to_string())
}
