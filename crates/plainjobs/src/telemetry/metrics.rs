//! [`Metrics`]: plain.jobs' instruments on one meter provider — counters and histograms recorded
//! as jobs are enqueued and run, and the observable gauges read from a [`Gauges`] snapshot.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider};
use opentelemetry::{InstrumentationScope, KeyValue};

use super::gauges::Gauges;
use super::names::*;
use super::pending::PendingSends;

/// Bucket bounds, in seconds, for both duration histograms: the messaging conventions'
/// advice (the SDK's default bounds, 0 to 10,000, are meant for milliseconds).
const SECONDS_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// plain.jobs' metrics, recorded by a [`Jobs`](crate::Jobs) handle given them with
/// [`Jobs::with_metrics`](crate::Jobs::with_metrics) and by the workers made from it. Cheap to
/// clone. Without it nothing is recorded and nothing is computed for it.
///
/// The gauges (`plain.jobs.queue.depth`, `…scheduled`, `…oldest.age`, `plain.jobs.running`,
/// `plain.jobs.workers`) are read from the database by a running worker at most once per
/// [`refresh_every`](Metrics::refresh_every) (default: `OTEL_METRIC_EXPORT_INTERVAL`, else
/// 60 s), whatever the number of workers sharing these metrics and of readers collecting them.
///
/// # Example
/// ```no_run
/// # async fn demo() -> plainjobs::Result<()> {
/// use opentelemetry_sdk::metrics::SdkMeterProvider;
/// let provider = SdkMeterProvider::builder().build(); // with your exporter's reader
/// let metrics = plainjobs::telemetry::Metrics::new(&provider);
/// let jobs = plainjobs::Jobs::connect("sqlite://jobs.sqlite3").await?.with_metrics(metrics);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Instruments>,
}

struct Instruments {
    sent: Counter<u64>,
    consumed: Counter<u64>,
    operation: Histogram<f64>,
    queue_wait: Histogram<f64>,
    gauges: Arc<Gauges>,
    pending: PendingSends,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// The instruments on `provider`, in the `plain.jobs` scope.
    pub fn new<P: MeterProvider + ?Sized>(provider: &P) -> Metrics {
        let scope = InstrumentationScope::builder(SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Metrics::on(provider.meter_with_scope(scope))
    }

    /// The instruments on the global meter provider (`opentelemetry::global`) as it is now:
    /// set the provider first.
    pub fn global() -> Metrics {
        Metrics::new(&*opentelemetry::global::meter_provider())
    }

    /// How often a worker reads the gauges from the database (at most).
    pub fn refresh_every(self, interval: Duration) -> Metrics {
        self.inner.gauges.set_interval(interval);
        self
    }

    fn on(meter: Meter) -> Metrics {
        let gauges = Arc::new(Gauges::new(default_interval()));
        gauges.register(&meter);
        let messages = |name: &'static str, what: &'static str| {
            meter
                .u64_counter(name)
                .with_unit("{message}")
                .with_description(what)
                .build()
        };
        let seconds = |name: &'static str, what: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(what)
                .with_boundaries(SECONDS_BOUNDS.to_vec())
                .build()
        };
        Metrics {
            inner: Arc::new(Instruments {
                sent: messages(
                    SENT_MESSAGES,
                    "Number of messages producer attempted to send to the broker.",
                ),
                consumed: messages(
                    CONSUMED_MESSAGES,
                    "Number of messages that were delivered to the application.",
                ),
                operation: seconds(
                    OPERATION_DURATION,
                    "Duration of messaging operation initiated by a producer or consumer client.",
                ),
                queue_wait: seconds(
                    QUEUE_WAIT_DURATION,
                    "Time a job spent waiting in the queue before a worker picked it up.",
                ),
                gauges,
                pending: PendingSends::default(),
            }),
        }
    }

    pub(crate) fn pending(&self) -> &PendingSends {
        &self.inner.pending
    }

    pub(crate) fn gauges(&self) -> &Arc<Gauges> {
        &self.inner.gauges
    }

    /// One enqueue that committed (or failed, with `error_type`) and how long it took.
    pub(crate) fn sent(
        &self,
        queue: &str,
        job_class: &str,
        error_type: Option<&str>,
        took: Duration,
    ) {
        let mut attrs = base("send", queue, format!("{job_class}.run_in_worker"));
        if let Some(error_type) = error_type {
            attrs.push(KeyValue::new(ERROR_TYPE, error_type.to_string()));
        }
        self.inner.sent.add(1, &attrs);
        self.inner.operation.record(took.as_secs_f64(), &attrs);
    }

    /// Many enqueues of one job type on one queue, committed together.
    pub(crate) fn sent_many(&self, queue: &str, job_class: &str, count: u64, took: Duration) {
        let attrs = base("send", queue, format!("{job_class}.run_in_worker"));
        self.inner.sent.add(count, &attrs);
        self.inner.operation.record(took.as_secs_f64(), &attrs);
    }

    /// A run's wait in the queue, from the request's creation to its start.
    pub(crate) fn queue_wait(&self, queue: &str, job_class: &str, waited: Duration) {
        let attrs = process_attrs(queue, job_class);
        self.inner.queue_wait.record(waited.as_secs_f64(), &attrs);
    }

    /// A run's duration, with `error_type` when it failed.
    pub(crate) fn processed(
        &self,
        queue: &str,
        job_class: &str,
        error_type: Option<&str>,
        took: Duration,
    ) {
        let mut attrs = process_attrs(queue, job_class);
        if let Some(error_type) = error_type {
            attrs.push(KeyValue::new(ERROR_TYPE, error_type.to_string()));
        }
        self.inner.operation.record(took.as_secs_f64(), &attrs);
    }

    /// Results written without a run to see them (LOST by a rescue, CANCELLED): counted by
    /// their status, with no span.
    pub(crate) fn results(&self, results: &[crate::model::JobResult]) {
        for r in results {
            self.consumed(&r.queue, &r.job_class, r.status.as_str(), None);
        }
    }

    /// A result written: `status` as plain.jobs stores it (`SUCCESSFUL`, `LOST`…).
    pub(crate) fn consumed(
        &self,
        queue: &str,
        job_class: &str,
        status: &str,
        error_type: Option<&str>,
    ) {
        let mut attrs = process_attrs(queue, job_class);
        attrs.push(KeyValue::new(OUTCOME, status.to_ascii_lowercase()));
        if let Some(error_type) = error_type {
            attrs.push(KeyValue::new(ERROR_TYPE, error_type.to_string()));
        }
        self.inner.consumed.add(1, &attrs);
    }
}

fn base(operation: &'static str, queue: &str, function: String) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(6);
    attrs.push(KeyValue::new(MESSAGING_SYSTEM, SYSTEM));
    attrs.push(KeyValue::new(MESSAGING_OPERATION_TYPE, operation));
    attrs.push(KeyValue::new(MESSAGING_DESTINATION_NAME, queue.to_string()));
    attrs.push(KeyValue::new(CODE_FUNCTION_NAME, function));
    attrs
}

/// plain.jobs' `process_metric_attributes`.
fn process_attrs(queue: &str, job_class: &str) -> Vec<KeyValue> {
    base("process", queue, format!("{job_class}.run"))
}

/// `OTEL_METRIC_EXPORT_INTERVAL` (milliseconds), as the SDK's periodic reader reads it; 60 s.
fn default_interval() -> Duration {
    std::env::var("OTEL_METRIC_EXPORT_INTERVAL")
        .ok()
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map_or(Duration::from_secs(60), Duration::from_millis)
}
