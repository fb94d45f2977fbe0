//! plain.jobs' spans on the `tracing` spans the code makes: `tracing-opentelemetry` turns them
//! into OpenTelemetry spans when its layer is installed, and these helpers add what only
//! OpenTelemetry reads (attributes, links, status, the exception event) through that layer.
//! Without the layer each call finds no OpenTelemetry data and does nothing; on a span no
//! subscriber wants (`is_disabled`) nothing is even computed.

use std::panic::Location;

use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::{KeyValue, Value};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::context::{format_context, parse_context};
use super::names::*;
use crate::model::JobProcess;

/// Names the `send` span after `queue` and gives it plain.jobs' attributes.
pub(crate) fn describe_send(
    span: &Span,
    queue: &str,
    job_class: &str,
    request_uuid: uuid::Uuid,
    caller: Option<&Location<'_>>,
    batch: Option<usize>,
) {
    if span.is_disabled() {
        return;
    }
    span.record("otel.name", format!("send {queue}"));
    set(span, MESSAGING_SYSTEM, SYSTEM);
    set(span, MESSAGING_OPERATION_TYPE, "send");
    set(span, MESSAGING_OPERATION_NAME, "send");
    set(span, MESSAGING_DESTINATION_NAME, queue.to_string());
    set(
        span,
        CODE_FUNCTION_NAME,
        format!("{job_class}.run_in_worker"),
    );
    if let Some(caller) = caller {
        set(span, CODE_FILE_PATH, caller.file().to_string());
        set(span, CODE_LINE_NUMBER, i64::from(caller.line()));
    }
    match batch {
        None => set(span, MESSAGING_MESSAGE_ID, request_uuid.to_string()),
        Some(count) => {
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            set(span, "messaging.batch.message_count", count);
        }
    }
}

/// The context to store in the row, as plain.jobs stores it: the `send` span's own, when it is
/// sampled (so jobs link only to traces that are collected).
pub(crate) fn sampled_context(span: &Span) -> Option<(String, String)> {
    if span.is_disabled() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    (sc.is_valid() && sc.is_sampled()).then(|| format_context(&sc))
}

/// plain.jobs' attributes and the link to the enqueue's stored context (an invalid one is
/// logged and ignored), then the ids log lines carry: the span's own when it is exported,
/// else the stored context.
pub(crate) fn describe_process(span: &Span, process: &JobProcess) {
    if span.is_disabled() {
        return;
    }
    set(span, MESSAGING_SYSTEM, SYSTEM);
    set(span, MESSAGING_OPERATION_TYPE, "process");
    set(span, MESSAGING_OPERATION_NAME, "process");
    set(span, MESSAGING_DESTINATION_NAME, process.queue.clone());
    set(span, MESSAGING_CONSUMER_GROUP_NAME, process.queue.clone());
    set(span, MESSAGING_MESSAGE_ID, process.uuid.to_string());
    set(
        span,
        CODE_FUNCTION_NAME,
        format!("{}.run", process.job_class),
    );
    set(span, JOB_REQUEST_UUID, process.job_request_uuid.to_string());
    set(span, RETRY_ATTEMPT, i64::from(process.retry_attempt));
    if let (Some(trace_id), Some(span_id)) = (&process.trace_id, &process.span_id) {
        match parse_context(trace_id, span_id) {
            Some(link) => span.add_link(link),
            None => tracing::warn!(
                job_process_uuid = %process.uuid,
                trace_id, span_id, "invalid trace context for job; not linked"
            ),
        }
    }
    let cx = span.context();
    let own = cx.span().span_context().clone();
    if own.is_valid() {
        let (trace_id, span_id) = format_context(&own);
        span.record("trace_id", trace_id);
        span.record("span_id", span_id);
    } else if let (Some(trace_id), Some(span_id)) = (&process.trace_id, &process.span_id) {
        span.record("trace_id", trace_id.as_str());
        span.record("span_id", span_id.as_str());
    }
}

/// Marks `span` failed as plain.jobs' `record_span_error` does: `error.type`, an ERROR status
/// and an `exception` event.
pub(crate) fn record_error(span: &Span, error_type: &str, message: &str) {
    if span.is_disabled() {
        return;
    }
    set(span, ERROR_TYPE, error_type.to_string());
    span.set_status(Status::error(message.to_string()));
    span.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", error_type.to_string()),
            KeyValue::new("exception.message", message.to_string()),
            KeyValue::new("exception.escaped", true),
        ],
    );
}

/// Sets a boolean flag attribute (`job.enqueue.skipped`, `plain.jobs.defer.skipped`).
pub(crate) fn flag(span: &Span, key: &'static str) {
    if !span.is_disabled() {
        set(span, key, true);
    }
}

/// A one-off CONSUMER span that carries a worker failure no job span owns (a claim, a
/// heartbeat), as plain.jobs' `error_consumer_span`; `log` runs inside it so its lines carry
/// the span's ids.
pub(crate) fn error_span(name: &'static str, error: &crate::Error, log: impl FnOnce()) {
    let span = tracing::error_span!("worker error", otel.name = name, otel.kind = "consumer",);
    let text = error.to_string();
    record_error(&span, error_type_of(error), &text);
    span.in_scope(log);
}

/// The `error.type` of a library error: its kind, as the enum names it.
pub(crate) fn error_type_of(error: &crate::Error) -> &'static str {
    error.kind_name()
}

fn set(span: &Span, key: &'static str, value: impl Into<Value>) {
    span.set_attribute(key, value);
}
