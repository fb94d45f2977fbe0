//! The `tracing` spans of an enqueue and of a run, with or without the `otel` feature: the job's
//! log lines carry their fields, and `tracing-opentelemetry` reads their `otel.*` fields.

use tracing::Span;

use crate::model::JobProcess;

/// The PRODUCER span around one enqueue (or one bulk enqueue), named `send {queue}` once
/// its queue is known (`describe_send`).
pub(crate) fn send_span() -> Span {
    tracing::info_span!(
        target: "plainjobs::send",
        "send",
        otel.name = tracing::field::Empty,
        otel.kind = "producer",
    )
}

/// The CONSUMER span a job runs in. Every log line of the job carries its fields: the job's
/// uuids and queue, and (filled by `describe_process`) the trace and span ids.
pub(crate) fn process_span(process: &JobProcess) -> Span {
    tracing::info_span!(
        "process",
        otel.name = %format!("process {}", process.queue),
        otel.kind = "consumer",
        job_class = %process.job_class,
        job_process_uuid = %process.uuid,
        job_request_uuid = %process.job_request_uuid,
        queue = %process.queue,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    )
}
