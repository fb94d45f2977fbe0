//! Without the `otel` feature: the same calls as `spans.rs` and `Metrics`, doing nothing, so
//! the job path has one shape in both builds.

use std::panic::Location;
use std::time::Duration;

use tracing::Span;

use crate::model::JobProcess;

/// No metrics exist without the feature: `Option<Metrics>` is always `None`.
#[derive(Debug, Clone)]
pub(crate) enum Metrics {}

#[allow(clippy::unused_self)]
impl Metrics {
    pub(crate) fn sent(&self, _: &str, _: &str, _: Option<&str>, _: Duration) {
        match *self {}
    }
    pub(crate) fn sent_many(&self, _: &str, _: &str, _: u64, _: Duration) {
        match *self {}
    }
    pub(crate) fn queue_wait(&self, _: &str, _: &str, _: Duration) {
        match *self {}
    }
    pub(crate) fn processed(&self, _: &str, _: &str, _: Option<&str>, _: Duration) {
        match *self {}
    }
    pub(crate) fn results(&self, _: &[crate::model::JobResult]) {
        match *self {}
    }
    pub(crate) fn consumed(&self, _: &str, _: &str, _: &str, _: Option<&str>) {
        match *self {}
    }
}

pub(crate) fn describe_send(
    _: &Span,
    _: &str,
    _: &str,
    _: uuid::Uuid,
    _: Option<&Location<'_>>,
    _: Option<usize>,
) {
}

pub(crate) fn sampled_context(_: &Span) -> Option<(String, String)> {
    None
}

/// The stored context is all a log line can carry without OpenTelemetry.
pub(crate) fn describe_process(span: &Span, process: &JobProcess) {
    if let (Some(trace_id), Some(span_id)) = (&process.trace_id, &process.span_id) {
        span.record("trace_id", trace_id.as_str());
        span.record("span_id", span_id.as_str());
    }
}

pub(crate) fn record_error(_: &Span, _: &str, _: &str) {}

pub(crate) fn flag(_: &Span, _: &'static str) {}

pub(crate) fn error_span(_: &'static str, _: &crate::Error, log: impl FnOnce()) {
    log();
}
