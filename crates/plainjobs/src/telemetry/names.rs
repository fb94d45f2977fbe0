//! The names plain.jobs gives its spans, attributes and instruments (its `otel.py`, `jobs.py`
//! and `models.py`, 0.57.5), and the OpenTelemetry messaging conventions where it is silent.
//! One list, so that a dashboard built on either side reads the other's data.

/// The instrumentation scope of every span and instrument: plain.jobs' own.
pub const SCOPE: &str = "plain.jobs";
/// `messaging.system`: always [`SYSTEM`].
pub const MESSAGING_SYSTEM: &str = "messaging.system";
/// The value of `messaging.system`.
pub const SYSTEM: &str = "plain.jobs";
/// `messaging.operation.type`: `send` on enqueue, `process` on a run.
pub const MESSAGING_OPERATION_TYPE: &str = "messaging.operation.type";
/// `messaging.operation.name`: `send` or `process` (spans only).
pub const MESSAGING_OPERATION_NAME: &str = "messaging.operation.name";
/// `messaging.destination.name`: the queue.
pub const MESSAGING_DESTINATION_NAME: &str = "messaging.destination.name";
/// `messaging.message.id`: the request's uuid on `send`, the process's on `process`.
pub const MESSAGING_MESSAGE_ID: &str = "messaging.message.id";
/// `messaging.consumer.group.name`: the queue (on `process`).
pub const MESSAGING_CONSUMER_GROUP_NAME: &str = "messaging.consumer.group.name";
/// `code.function.name`: `{job_class}.run_in_worker` on send, `{job_class}.run` on process.
pub const CODE_FUNCTION_NAME: &str = "code.function.name";
/// `code.file.path`: where the enqueue was written (the caller's file).
pub const CODE_FILE_PATH: &str = "code.file.path";
/// `code.line.number`: the caller's line.
pub const CODE_LINE_NUMBER: &str = "code.line.number";
/// `error.type`: what failed (a Rust type name, `panic`, `timeout`).
pub const ERROR_TYPE: &str = "error.type";
/// On a `send` span whose job `should_enqueue` refused.
pub const ENQUEUE_SKIPPED: &str = "job.enqueue.skipped";
/// On a `process` span whose deferral `should_enqueue` refused.
pub const DEFER_SKIPPED: &str = "plain.jobs.defer.skipped";
/// The result's status, lower case, on `messaging.client.consumed.messages`.
pub const OUTCOME: &str = "plain.jobs.outcome";
/// `active` or `stale` on `plain.jobs.workers`.
pub const WORKER_STATE: &str = "plain.jobs.worker.state";
/// The job's request uuid on a `process` span (ours: plain.jobs has only the process's).
pub const JOB_REQUEST_UUID: &str = "plain.jobs.job_request.uuid";
/// Which attempt a run is (0 for the first) on a `process` span (ours).
pub const RETRY_ATTEMPT: &str = "plain.jobs.retry_attempt";

/// Counter: jobs enqueued (on commit; a failed enqueue counts with `error.type`).
pub const SENT_MESSAGES: &str = "messaging.client.sent.messages";
/// Counter: results written, by `plain.jobs.outcome`.
pub const CONSUMED_MESSAGES: &str = "messaging.client.consumed.messages";
/// Histogram, seconds: one enqueue, or one run.
pub const OPERATION_DURATION: &str = "messaging.client.operation.duration";
/// Histogram, seconds: from the request's creation to its start.
pub const QUEUE_WAIT_DURATION: &str = "plain.jobs.queue.wait.duration";
/// Gauge: ready requests per queue.
pub const QUEUE_DEPTH: &str = "plain.jobs.queue.depth";
/// Gauge: requests with a start in the future, per queue.
pub const QUEUE_SCHEDULED: &str = "plain.jobs.queue.scheduled";
/// Gauge, seconds: age of the oldest ready request, per queue.
pub const QUEUE_OLDEST_AGE: &str = "plain.jobs.queue.oldest.age";
/// Gauge: running processes per queue.
pub const RUNNING: &str = "plain.jobs.running";
/// Gauge: worker heartbeats by `plain.jobs.worker.state`.
pub const WORKERS: &str = "plain.jobs.workers";

/// The one-off span of a claim that failed (plain.jobs' `error_consumer_span`).
pub const CLAIM_ERROR_SPAN: &str = "claim job";
/// The one-off span of a heartbeat that failed.
pub const HEARTBEAT_ERROR_SPAN: &str = "worker heartbeat";
